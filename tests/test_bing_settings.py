"""sync.bing's settings from the environment and its OAuth refresh tokens, against the
stand-in through the real bingads SDK."""

from __future__ import annotations

from pathlib import Path

import pytest
from bingads.authorization import MSADS_MANAGE, PRODUCTION, _UriOAuthService

from sync.bing import Bing, BingSettings, ConfigError, PermanentBingError
from tests.harness.bing import FAST, TOKEN, env_for

# ------------------------------------------------------------------------------------------------
# Settings


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"BING_DEVELOPER_TOKEN": None}, "BING_DEVELOPER_TOKEN"),
        ({"BING_DEVELOPER_TOKEN": "   "}, "BING_DEVELOPER_TOKEN"),
        ({"BING_CUSTOMER_ID": None}, "BING_CUSTOMER_ID"),
        ({"BING_CUSTOMER_ID": "12ab"}, "BING_CUSTOMER_ID"),
        ({"BING_ACCOUNT_ID": "-3"}, "BING_ACCOUNT_ID"),
        ({"BING_ENVIRONMENT": "staging"}, "BING_ENVIRONMENT"),
        ({"BING_ACCESS_TOKEN": None}, "BING_CLIENT_ID"),
        ({"BING_ACCESS_TOKEN": None, "BING_CLIENT_ID": "app"}, "BING_REFRESH_TOKEN"),
        ({"BING_BULK_SERVICE_URL": "localhost:8765"}, "BING_BULK_SERVICE_URL"),
    ],
)
def test_bad_settings_name_the_variable(change, variable):
    env = env_for()
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    with pytest.raises(ConfigError, match=variable) as info:
        BingSettings.from_env(env)
    assert len(str(info.value)) > len(variable) + 20  # says how to fix it


def test_settings_from_env_and_repr_hides_secrets():
    env = env_for(
        BING_ENVIRONMENT=" Sandbox ",
        BING_CLIENT_ID="client-id-secret-ish",
        BING_CLIENT_SECRET="client-secret-value",
        BING_REFRESH_TOKEN="refresh-token-value",
        BING_BULK_SERVICE_URL="http://127.0.0.1:1/x",
    )
    settings = BingSettings.from_env(env)
    assert settings.environment == "sandbox"
    assert (settings.customer_id, settings.account_id) == (250000001, 180000001)
    assert settings.access_token == TOKEN
    text = repr(settings) + str(settings)
    for secret in (TOKEN, "developer-token", "client-secret-value", "refresh-token-value"):
        assert secret not in text
    assert "client-id-secret-ish" not in text


def test_refresh_token_settings_without_access_token():
    env = env_for(BING_ACCESS_TOKEN=None, BING_CLIENT_ID="app", BING_REFRESH_TOKEN="r")
    settings = BingSettings.from_env(env)
    assert settings.access_token is None and settings.client_secret is None
    assert settings.environment == "production"


def test_workdir_must_be_absolute(standin):
    with pytest.raises(ValueError, match="absolute"):
        Bing(BingSettings.from_env(env_for(standin)), Path("relative/dir"))


# ------------------------------------------------------------------------------------------------
# OAuth refresh tokens


@pytest.fixture
def oauth_endpoint(standin, monkeypatch):
    monkeypatch.setitem(
        _UriOAuthService.AUTH_TOKEN_URI, (PRODUCTION, MSADS_MANAGE), standin.refresh_url()
    )
    return standin


def test_refresh_token_is_exchanged_and_rotation_reported(oauth_endpoint, workdir):
    standin = oauth_endpoint
    rotated: list[str] = []
    env = env_for(
        standin, BING_ACCESS_TOKEN=None, BING_CLIENT_ID="app-id", BING_REFRESH_TOKEN="stored"
    )
    bing = Bing(
        BingSettings.from_env(env),
        workdir,
        on_refresh_token=rotated.append,
        refresh_token_override="newer",
        retry=FAST,
        poll_interval_ms=5,
    )
    assert bing.find_lists() == []
    assert rotated == ["standin-refresh-token-1"]
    (request,) = standin.oauth_requests
    assert request["grant_type"] == "refresh_token"
    assert request["refresh_token"] == "newer"  # the override wins over the environment
    assert request["client_id"] == "app-id" and "client_secret" not in request


def test_confidential_client_sends_its_secret(oauth_endpoint, workdir):
    standin = oauth_endpoint
    env = env_for(
        standin,
        BING_ACCESS_TOKEN=None,
        BING_CLIENT_ID="web-app",
        BING_CLIENT_SECRET="s3cret",
        BING_REFRESH_TOKEN="stored",
    )
    bing = Bing(BingSettings.from_env(env), workdir, retry=FAST, poll_interval_ms=5)
    bing.find_lists()
    assert standin.oauth_requests[0]["client_secret"] == "s3cret"


def test_failing_refresh_token_callback_is_not_disguised(oauth_endpoint, workdir):
    def store(token: str) -> None:
        raise OSError("disk full")

    env = env_for(
        oauth_endpoint, BING_ACCESS_TOKEN=None, BING_CLIENT_ID="app", BING_REFRESH_TOKEN="r"
    )
    bing = Bing(BingSettings.from_env(env), workdir, on_refresh_token=store, retry=FAST)
    with pytest.raises(OSError, match="disk full"):
        bing.find_lists()


def test_revoked_refresh_token_is_permanent(oauth_endpoint, workdir):
    env = env_for(
        oauth_endpoint,
        BING_ACCESS_TOKEN=None,
        BING_CLIENT_ID="app-id",
        BING_REFRESH_TOKEN="invalid-and-secret",
    )
    bing = Bing(BingSettings.from_env(env), workdir, retry=FAST, poll_interval_ms=5)
    with pytest.raises(PermanentBingError) as info:
        bing.find_lists()
    assert "BING_REFRESH_TOKEN" in str(info.value)
    assert "invalid-and-secret" not in str(info.value)
    assert oauth_endpoint.calls == []
