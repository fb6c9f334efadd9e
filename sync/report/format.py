"""Text for the report page: every data-derived string is scrubbed by the one redaction
policy (sync/redact.py), then escaped; numbers, UTC times and the colours of the lists."""

from __future__ import annotations

import html as htmlmod
import re
from datetime import UTC, datetime
from typing import Any

from sync.redact import scrub

DASH, MINUS = "\u2013", "\u2212"

# Okabe-Ito (colour-blind safe) without its yellow, then two neutrals; markers vary too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D31", "#555555")
MARKERS = ("circle", "square", "diamond", "triangle", "triangle-down", "cross")
STATUS_CLASS = {
    "in_sync": "ok",
    "in_flight": "ok",
    "partial": "warn",
    "held": "warn",
    "refused": "warn",
}


def _t(value: Any) -> str:
    """Data-derived text for HTML/SVG: scrubbed, then escaped."""
    return htmlmod.escape(scrub("" if value is None else str(value), tokens=False), quote=True)


def _md(value: str) -> str:
    """Like `_t`, with `code` spans set as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _t(value))


def _n(value: int | float | None) -> str:
    return DASH if value is None else f"{int(value):,}"


def _utc(value: datetime | None) -> datetime | None:
    """Naive UTC (the state tables' convention) from naive or aware timestamps."""
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def _when(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    value = _utc(value)
    return DASH if value is None else value.strftime(fmt)
