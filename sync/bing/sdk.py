"""Every use of the bingads SDK's private internals, in one place, with `check()` saying
loudly when an SDK upgrade changed one of them (tests/test_bing.py runs it).

- `BulkUploadOperation` / `BulkDownloadOperation._get_status_with_retry`: overridden so a
  status poll is one call (the SDK's own sleeps 15-25 s on 117); waiting and retrying are
  decided by sync.bing.retry.
- `BulkServiceManager._upload_file_by_url`: the file POST to an upload URL we asked for
  (the public `upload_file` renames files and leaves temporaries behind).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from bingads.v13.bulk import BulkDownloadOperation, BulkServiceManager, BulkUploadOperation


class UploadOperation(BulkUploadOperation):
    """An upload operation whose status poll is one call."""

    def _get_status_with_retry(self, retry_times: int) -> Any:
        # One call; waiting and retrying are decided by Bing/RetryPolicy.
        return self.service_client.GetBulkUploadStatus(RequestId=self.request_id)


class DownloadOperation(BulkDownloadOperation):
    """A download operation whose status poll is one call."""

    def _get_status_with_retry(self, retry_times: int) -> Any:
        return self.service_client.GetBulkDownloadStatus(RequestId=self.request_id)


def post_file(bulk: BulkServiceManager, url: str, path: Path, timeout_ms: int) -> Any:
    """POST one (already zipped) bulk file to an upload URL, with a timeout."""
    return bulk._upload_file_by_url(
        url=url,
        upload_file_path=str(path),
        compress_upload_file=False,
        timeout_in_milliseconds=timeout_ms,
    )


#: What this module relies on: (class, private method, the parameters it is called with).
RELIED_ON = (
    (BulkUploadOperation, "_get_status_with_retry", ("retry_times",)),
    (BulkDownloadOperation, "_get_status_with_retry", ("retry_times",)),
    (
        BulkServiceManager,
        "_upload_file_by_url",
        ("url", "upload_file_path", "compress_upload_file", "timeout_in_milliseconds"),
    ),
)


def check() -> list[str]:
    """What of RELIED_ON the installed SDK no longer offers (empty: all is there)."""
    problems = []
    for cls, name, params in RELIED_ON:
        method = getattr(cls, name, None)
        if method is None:
            problems.append(f"{cls.__name__}.{name} is gone")
            continue
        have = set(inspect.signature(method).parameters)
        missing = [p for p in params if p not in have]
        if missing:
            problems.append(f"{cls.__name__}.{name} lost parameter(s) {', '.join(missing)}")
    return problems
