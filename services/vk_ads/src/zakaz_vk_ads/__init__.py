"""zakaz source `vk_ads`."""
