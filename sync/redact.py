"""Remove identifiers from text before it reaches a log line or an error message.

Microsoft's faults, DuckDB's conversion errors and HTTP libraries quote what they were given;
that can be an email, a SHA-256 of one, a token or a signed URL. Everything the sync prints
about a failure goes through `scrub` first.
"""

from __future__ import annotations

import re

_URL_RE = re.compile(r"\b(?:https?|ftp)://\S+", re.IGNORECASE)
_EMAIL_RE = re.compile(r"[^\s@<>()\[\]\"',;:]+@[^\s@<>()\[\]\"',;:]+\.[A-Za-z]{2,}")
_HEX64_RE = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])")
_DIGIT_RE = re.compile(r"\d")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-_.~+/]{32,}={0,2}")


def scrub(text: str, tokens: bool = True) -> str:
    """Remove URLs, emails, SHA-256 hashes and token-like strings from ``text``.

    ``tokens=False`` keeps long runs with digits (list names such as
    ``CIO__Cart_Abandon_High_AOV_0-1d__NoPurchase`` look like tokens): for text that holds
    no secret, such as the report's names and Microsoft's row messages."""
    text = _URL_RE.sub("<url>", str(text))
    text = _EMAIL_RE.sub("<email>", text)
    text = _HEX64_RE.sub("<hash>", text)
    if not tokens:
        return text
    # Long runs with a digit look like tokens; long words (error symbols) stay.
    return _TOKEN_RE.sub(lambda m: "<redacted>" if _DIGIT_RE.search(m[0]) else m[0], text)
