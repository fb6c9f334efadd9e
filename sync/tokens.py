"""Microsoft's rotated OAuth refresh token, kept in the state schema's `oauth_tokens` table:
each refresh makes the previous token stop working, and scheduled jobs run on throwaway
machines, so the next run must find the newest one there, not in its environment."""

from __future__ import annotations

import hashlib

from sync.state import State, utcnow


def _fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def stored_refresh_token(state: State, env_token: str | None) -> str | None:
    """The rotated refresh token saved by an earlier run, unless the environment now
    holds a different token than the one it descended from (an operator re-authorised)."""
    row = state.wh.fetch(
        f"select refresh_token, source_fingerprint from {state.s}.oauth_tokens "
        "where name = 'bing' order by updated_at desc limit 1"
    )
    if row.is_empty():
        return None
    token, source = row.row(0)
    if env_token and _fingerprint(env_token) != source:
        return None
    return token


def save_refresh_token(state: State, token: str, env_token: str | None) -> None:
    """Persist Microsoft's rotated refresh token (the old one stops working)."""
    source = _fingerprint(env_token or "")
    with state.wh.transaction():
        state.wh.execute(f"delete from {state.s}.oauth_tokens where name = 'bing'")
        state.wh.execute(
            f"insert into {state.s}.oauth_tokens values ('bing', ?, ?, ?)",
            [token, source, utcnow()],
        )
