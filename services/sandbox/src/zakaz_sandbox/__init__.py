"""Stand-ins for the upstream APIs (Google token + Sheets + Gmail, QTickets, VK Ads, Yandex Direct)."""
