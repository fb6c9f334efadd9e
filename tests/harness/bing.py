"""What the tests of sync.bing and of the stand-in share: the stand-in's token, member hashes
in the frame the sync uploads, a client wired to the stand-in with quick retries, and the
SDK's reader for upload files (the one parser both Microsoft's and our files go through)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
from bingads.v13.bulk import BulkFileReader
from bingads.v13.bulk.enums import ResultFileType

from sync.bing import Bing, BingSettings, RetryPolicy, UploadOutcome
from sync.standin import StandIn

#: The access token the `standin` fixture accepts; long and hex-like, as a real one is, so a
#: leak of it into a message or log is found by the scrubbing tests.
TOKEN = "access-token-for-tests-0123456789abcdef"
#: Retries in milliseconds, so a fault test does not wait like production would.
FAST = RetryPolicy(
    max_attempts=4, base_delay=0.001, max_delay=0.01, upload_timeout=5.0, request_timeout=2.0
)


def sha(text: str) -> str:
    """The sync's member key: SHA-256 of the trimmed, lower-cased email."""
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


HASHES = [sha(f"customer{i}@example.com") for i in range(7)]


def frame(hashes: list[str]) -> pl.DataFrame:
    """Hashes in the one-column frame the sync hands to `Bing.upload`."""
    return pl.DataFrame({"email_sha256": hashes}, schema={"email_sha256": pl.String})


def env_for(standin: StandIn | None = None, **overrides: str | None) -> dict[str, str]:
    """A complete BING_* environment (pointed at `standin` when given); an override of None
    removes the variable, so a test can leave one out."""
    env = {
        "BING_DEVELOPER_TOKEN": "developer-token",
        "BING_CUSTOMER_ID": "250000001",
        "BING_ACCOUNT_ID": "180000001",
        "BING_ACCESS_TOKEN": TOKEN,
    }
    if standin is not None:
        env["BING_BULK_SERVICE_URL"] = standin.url
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def make_bing(standin: StandIn, workdir: Path, **kwargs: Any) -> Bing:
    """A client of `standin` that retries and polls quickly unless the test says otherwise."""
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("poll_interval_ms", 5)
    return Bing(BingSettings.from_env(env_for(standin)), workdir, **kwargs)


def upload_all(bing: Bing, list_id: int, action: str, hashes: list[str]) -> list[UploadOutcome]:
    """Every outcome of one upload (`Bing.upload` yields them lazily)."""
    return list(bing.upload(list_id, action, frame(hashes)))


def read_upload_file(path: Path) -> list[Any]:
    """The entities of an upload or upload-result file, as the SDK reads them."""
    with BulkFileReader(str(path), result_file_type=ResultFileType.upload) as reader:
        return list(reader)
