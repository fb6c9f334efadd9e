"""Microsoft Advertising (Bing) Customer Match through the Bulk service: the only package that
talks to Microsoft, and the only one that imports ``bingads``.

Lists are found by a bulk download of ``CustomerLists`` and created and filled by bulk uploads
(``GetBulkUploadUrl`` -> file POST -> ``GetBulkUploadStatus`` -> result file). All calls go
through the real ``bingads`` SDK; ``BING_BULK_SERVICE_URL`` redirects every one of them.

How the SDK's pitfalls are handled here:

- Temporary files (hashed PII) are written only to the caller's private ``workdir`` and each is
  deleted as soon as it is not needed; the SDK's ``upload_file`` / ``upload_entities`` (which
  rename files and leave temporaries behind) are not used.
- The upload POST gets a timeout (the SDK sets none) and SOAP calls get suds' ``timeout``.
- Status polls are made one at a time by this module (the SDK's own poll sleeps 15-25 s on a
  117 and 1 s on any other error); waiting and retrying follow :class:`RetryPolicy`.
- No log line, exception message or ``str(BingError)`` contains a hash, email, token or URL.

One job per module: ``settings`` (BING_* variables), ``errors`` (Microsoft's codes and the
error taxonomy), ``retry`` (the one retry policy), ``results`` (result and download files),
``sdk`` (every private SDK internal, checked by ``sdk.check()``), ``transport`` (credentials,
calls, polls, one upload's trip), ``client`` (the Customer Match operations).
"""

from sync.bing.client import Bing, UploadHooks
from sync.bing.errors import (
    BingError,
    PermanentBingError,
    TransientBingError,
    UploadFailed,
    UploadInFlight,
)
from sync.bing.results import (
    RemoteList,
    ResultList,
    UploadOutcome,
    UploadResult,
    parse_upload_result,
)
from sync.bing.retry import RetryPolicy
from sync.bing.settings import BingSettings
from sync.errors import ConfigError

__all__ = [
    "Bing",
    "BingError",
    "BingSettings",
    "ConfigError",
    "PermanentBingError",
    "RemoteList",
    "ResultList",
    "RetryPolicy",
    "TransientBingError",
    "UploadFailed",
    "UploadHooks",
    "UploadInFlight",
    "UploadOutcome",
    "UploadResult",
    "parse_upload_result",
]
