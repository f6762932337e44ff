"""UTM tags of ad links, and the show (city, date) an ad's `utm_content` names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from typing import Final
from urllib.parse import unquote_to_bytes

from zakaz_common.cities import CityDirectory

_FIELDS: Final = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "campaign",
    "utm_content": "content",
    "utm_term": "term",
}
_PLACEHOLDER: Final = re.compile(r"\{\{(\w+)\}\}|\{(\w+)\}", re.ASCII)
"""Direct writes `{ad_id}`; VK Ads writes `{{campaign_id}}`."""

_SHOW_KEY: Final = re.compile(r"(?P<city>.+?)[_-](?P<day>\d{1,2})[_-](?P<month>\d{1,2})", re.ASCII)
_LETTER: Final = re.compile(r"[^\W\d_]")
_NO_SHOW: Final[tuple[str, date | None]] = ("", None)


@dataclass(frozen=True)
class Utm:
    """The five UTM tags of a link; "" for an absent one."""

    source: str = ""
    medium: str = ""
    campaign: str = ""
    content: str = ""
    term: str = ""


def parse_utm(url: str | None) -> Utm:
    """UTM tags from a URL or a bare query text; junk gives empty tags, never an error."""
    if not isinstance(url, str):
        return Utm()
    # No urlsplit: it raises on junk such as "http://[", and VK ad groups hold a bare query.
    text = url.strip()
    query = text.partition("?")[2] if "?" in text else text
    query = query.partition("#")[0]
    found: dict[str, str] = {}
    for pair in query.split("&"):
        raw_key, _, raw_value = pair.partition("=")
        # Hrefs copied out of HTML keep "&amp;" between parameters.
        key = _decode(raw_key).strip().lower().removeprefix("amp;")
        field = _FIELDS.get(key)
        value = _decode(raw_value).strip()
        # A blank first occurrence counts as absent, so a later real value is not lost.
        if field is not None and value and field not in found:
            found[field] = value
    return Utm(**found)


def fill_template(url: str, values: Mapping[str, str]) -> str:
    """Replace `{name}` / `{{name}}` placeholders with values; unknown ones stay as they are."""

    def replace(match: re.Match[str]) -> str:
        return values.get(match[1] or match[2], match[0])

    return _PLACEHOLDER.sub(replace, url)


def parse_show_key(
    content: str, stat_date: date, cities: CityDirectory | None = None
) -> tuple[str, date | None]:
    """`<city>_<dd>_<mm>` to `(canonical city, show date nearest stat_date)`, or `("", None)`."""
    match = _SHOW_KEY.fullmatch(content.strip())
    if match is None or not _LETTER.search(match["city"]):
        return _NO_SHOW
    show_date = _nearest(int(match["day"]), int(match["month"]), stat_date)
    if show_date is None:
        return _NO_SHOW
    directory = cities if cities is not None else CityDirectory.bundled()
    return directory.canonical(match["city"]), show_date


def _nearest(day: int, month: int, around: date) -> date | None:
    candidates: list[date] = []
    for year in (around.year - 1, around.year, around.year + 1):
        # Skips 29.02 outside leap years, 31.02 always, and years beyond 1..9999.
        with suppress(ValueError):
            candidates.append(date(year, month, day))
    if not candidates:
        return None
    # Nearest first; on a tie the later date, since ads run before a show more than after it.
    return min(candidates, key=lambda d: (abs((d - around).days), -d.toordinal()))


def _decode(text: str) -> str:
    raw = unquote_to_bytes(text.replace("+", " "))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Old Russian sites percent-encode in Windows-1251.
        return raw.decode("cp1251", errors="replace")
