"""OAuth through the CLI: the refresh token Microsoft rotates is kept in the warehouse, and the
next scheduled run (a fresh process on a fresh machine) uses it instead of the stale one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bingads.authorization import MSADS_MANAGE, PRODUCTION, _UriOAuthService

from sync.standin import StandIn
from tests.harness.dbt import Build
from tests.harness.sync import TOKEN, env_without, run_sync, sql, sync_env


@pytest.fixture
def bing(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    with StandIn(token=TOKEN) as server:
        # Microsoft's token endpoint is the one thing pointed elsewhere: at the stand-in's.
        monkeypatch.setitem(
            _UriOAuthService.AUTH_TOKEN_URI, (PRODUCTION, MSADS_MANAGE), server.refresh_url()
        )
        yield server


@pytest.fixture
def env(warehouse: Build, bing: StandIn, tmp_path: Path) -> dict[str, str | None]:
    base = sync_env(warehouse, bing.url, str(tmp_path / "work"))
    return {
        **env_without(base, "BING_ACCESS_TOKEN"),
        "BING_CLIENT_ID": "app-id",
        "BING_REFRESH_TOKEN": "consent-token",
    }


def test_rotated_refresh_token_is_persisted_and_used_next_run(
    warehouse: Build, bing: StandIn, env: dict[str, str | None]
) -> None:
    first = run_sync(warehouse, env, "run", "-s", "ltv_high")
    assert first.exit_code == 0, first.stderr
    assert bing.oauth_requests[0]["refresh_token"] == "consent-token"
    stored = sql(warehouse, "select refresh_token from sync_state.oauth_tokens")
    assert stored == [("standin-refresh-token-1",)]

    # new data so the next run has to talk to Microsoft
    sql(warehouse, "insert into audience_ltv_high values (?, 'n', 'high', now())", ["3f" * 32])
    second = run_sync(warehouse, env, "run", "-s", "ltv_high")
    assert second.exit_code == 0
    assert bing.oauth_requests[1]["refresh_token"] == "standin-refresh-token-1"
    assert sql(warehouse, "select refresh_token from sync_state.oauth_tokens") == [
        ("standin-refresh-token-2",)
    ]
    assert "standin-refresh-token" not in first.stderr + second.stderr


def test_a_new_token_in_the_environment_takes_over(
    warehouse: Build, bing: StandIn, env: dict[str, str | None]
) -> None:
    assert run_sync(warehouse, env, "run", "-s", "ltv_high").exit_code == 0
    sql(warehouse, "insert into audience_ltv_high values (?, 'n', 'high', now())", ["4e" * 32])
    reconsented = {**env, "BING_REFRESH_TOKEN": "new-consent-token"}
    assert run_sync(warehouse, reconsented, "run", "-s", "ltv_high").exit_code == 0
    assert bing.oauth_requests[-1]["refresh_token"] == "new-consent-token"


def test_a_revoked_refresh_token_fails_clearly(
    warehouse: Build, bing: StandIn, env: dict[str, str | None]
) -> None:
    result = run_sync(warehouse, {**env, "BING_REFRESH_TOKEN": "invalid-token"}, "run")
    assert result.exit_code == 1
    messages = " ".join(v["message"] or "" for v in result.lists().values())
    assert "BING_REFRESH_TOKEN" in messages or "refresh token" in messages.lower()
    assert "invalid-token" not in result.stderr + messages
    assert len(bing.oauth_requests) == 1  # asked once, not once per list
    assert sql(warehouse, "select count(*) from sync_state.pending") == [(0,)]


def test_refused_credentials_leave_no_hash_uncertain(
    warehouse: Build, bing: StandIn, env: dict[str, str | None]
) -> None:
    """Lists already known (no lookup): the token is checked before anything is marked sent."""
    assert run_sync(warehouse, env, "run", "-s", "ltv_high").exit_code == 0
    sql(warehouse, "insert into audience_ltv_high values (?, 'n', 'high', now())", ["5d" * 32])
    sql(warehouse, "delete from sync_state.oauth_tokens")  # so the revoked env token is used
    result = run_sync(
        warehouse, {**env, "BING_REFRESH_TOKEN": "invalid-token"}, "run", "-s", "ltv_high"
    )
    assert result.exit_code == 1
    assert sql(warehouse, "select count(*) from sync_state.pending") == [(0,)]
