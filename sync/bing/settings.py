"""Microsoft Advertising settings, from the environment only, and the OAuth grant they
make: never printed (their repr says only which secrets are set)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from sync.errors import ConfigError

ENVIRONMENTS = ("production", "sandbox")
#: Redirect URI placeholder for OAuthWebAuthCodeGrant: unused by the refresh-token grant.
REDIRECT_URI = "https://login.microsoftonline.com/common/oauth2/nativeclient"


def _secret(value: str | None) -> str:
    return "<unset>" if not value else "<set>"


@dataclass(frozen=True, repr=False)
class BingSettings:
    """Microsoft Advertising settings, read from the environment only (see :meth:`from_env`)."""

    developer_token: str
    customer_id: int
    account_id: int
    environment: str = "production"
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    bulk_service_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> BingSettings:
        """Read ``BING_*`` variables; raise :class:`ConfigError` naming the first bad one.

        Required: ``BING_DEVELOPER_TOKEN``, ``BING_CUSTOMER_ID``, ``BING_ACCOUNT_ID``, and
        either ``BING_ACCESS_TOKEN`` (used as is, no OAuth call) or ``BING_CLIENT_ID`` +
        ``BING_REFRESH_TOKEN`` (``BING_CLIENT_SECRET`` only for confidential clients).
        Optional: ``BING_ENVIRONMENT`` (production | sandbox), ``BING_BULK_SERVICE_URL``.
        """

        def get(name: str) -> str | None:
            value = env.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        def require(name: str, how: str) -> str:
            value = get(name)
            if value is None:
                raise ConfigError(f"{name} is not set: {how}")
            return value

        def number(name: str, how: str) -> int:
            value = require(name, how)
            if not value.isdigit() or int(value) <= 0:
                raise ConfigError(f"{name} must be a positive whole number: {how}")
            return int(value)

        developer_token = require(
            "BING_DEVELOPER_TOKEN",
            "set it to your Microsoft Advertising developer token "
            "(https://developers.ads.microsoft.com/Account).",
        )
        customer_id = number(
            "BING_CUSTOMER_ID",
            "set it to the customer id (the 'cid' in the Microsoft Advertising web address).",
        )
        account_id = number(
            "BING_ACCOUNT_ID",
            "set it to the ad account id (the 'aid' in the Microsoft Advertising web address).",
        )
        environment = (get("BING_ENVIRONMENT") or "production").lower()
        if environment not in ENVIRONMENTS:
            raise ConfigError(
                "BING_ENVIRONMENT must be 'production' or 'sandbox' (or unset for production)."
            )
        access_token = get("BING_ACCESS_TOKEN")
        client_id = get("BING_CLIENT_ID")
        client_secret = get("BING_CLIENT_SECRET")
        refresh_token = get("BING_REFRESH_TOKEN")
        if access_token is None:
            if client_id is None:
                raise ConfigError(
                    "BING_CLIENT_ID is not set: set it to the application (client) id of your "
                    "Azure app registration, or set BING_ACCESS_TOKEN to use a ready token."
                )
            if refresh_token is None:
                raise ConfigError(
                    "BING_REFRESH_TOKEN is not set: run the OAuth consent flow once for "
                    "BING_CLIENT_ID (scope msads.manage, offline_access) and store the refresh "
                    "token, or set BING_ACCESS_TOKEN to use a ready token."
                )
        bulk_service_url = get("BING_BULK_SERVICE_URL")
        if bulk_service_url is not None and not bulk_service_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(
                "BING_BULK_SERVICE_URL must be an http:// or https:// URL of a Bulk v13 "
                "service endpoint (or unset to use Microsoft's)."
            )
        return cls(
            developer_token=developer_token,
            customer_id=customer_id,
            account_id=account_id,
            environment=environment,
            client_id=client_id,
            client_secret=client_secret,
            refresh_token=refresh_token,
            access_token=access_token,
            bulk_service_url=bulk_service_url,
        )

    def __repr__(self) -> str:
        return (
            f"BingSettings(environment={self.environment!r}, customer_id={self.customer_id}, "
            f"account_id={self.account_id}, developer_token={_secret(self.developer_token)}, "
            f"client_id={_secret(self.client_id)}, client_secret={_secret(self.client_secret)}, "
            f"refresh_token={_secret(self.refresh_token)}, "
            f"access_token={_secret(self.access_token)}, "
            f"bulk_service_url={'<default>' if not self.bulk_service_url else '<set>'})"
        )

    __str__ = __repr__
