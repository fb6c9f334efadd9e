"""Microsoft Advertising (Bing) Customer Match through the Bulk service: the only module that
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
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import random
import tempfile
import time
import urllib.error
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax import SAXException

import polars as pl
import requests
from bingads.authorization import (
    AuthorizationData,
    OAuthDesktopMobileAuthCodeGrant,
    OAuthTokens,
    OAuthWebAuthCodeGrant,
)
from bingads.exceptions import OAuthTokenRequestException, TimeoutException
from bingads.v13.bulk import (
    BulkDownloadOperation,
    BulkFileReader,
    BulkServiceManager,
    BulkUploadOperation,
    SubmitDownloadParameters,
)
from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem
from bingads.v13.bulk.enums import ResultFileType
from bingads.v13.bulk.exceptions import (
    BulkException,
    EntityReadException,
)
from bingads.v13.internal.bulk.entities.single_record_bulk_entity import _SingleRecordBulkEntity
from suds import WebFault

from . import bulkfile
from .errors import ConfigError
from .redact import scrub

log = logging.getLogger("sync.bing")

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

ENVIRONMENTS = ("production", "sandbox")
#: Redirect URI placeholder for OAuthWebAuthCodeGrant: unused by the refresh-token grant.
_REDIRECT_URI = "https://login.microsoftonline.com/common/oauth2/nativeclient"

# Microsoft operation error codes (guides/operation-error-codes).
CODE_INTERNAL_ERROR = 0
CODE_INVALID_CREDENTIALS = 105
CODE_USER_NOT_AUTHORIZED = 106
CODE_TOKEN_EXPIRED = 109
CODE_CALL_RATE_EXCEEDED = 117
CODE_BULK_NO_MORE_CALLS = 4204
CODE_INVALID_AUDIENCE_ID = 4835
CODE_INVALID_CUSTOMER_LIST_ID = 8000
CODE_SUB_TYPE_NOT_SUPPORTED = 8002
CODE_TERMS_NOT_ACCEPTED = 8003
CODE_EMAIL_MUST_BE_HASHED = 8004

THROTTLE_CODES = frozenset({CODE_CALL_RATE_EXCEEDED, CODE_BULK_NO_MORE_CALLS})
TRANSIENT_CODES = THROTTLE_CODES | {CODE_INTERNAL_ERROR}
#: Item-level codes that really mean "this list cannot be used".
LIST_LEVEL_CODES = frozenset(
    {CODE_INVALID_AUDIENCE_ID, CODE_INVALID_CUSTOMER_LIST_ID, CODE_TERMS_NOT_ACCEPTED}
)

_ADVICE = {
    CODE_INVALID_CREDENTIALS: (
        "Microsoft rejected the credentials (InvalidCredentials). Check BING_DEVELOPER_TOKEN and "
        "the access/refresh token, and that both belong to BING_ENVIRONMENT (production "
        "credentials do not work in the sandbox and vice versa)."
    ),
    CODE_USER_NOT_AUTHORIZED: (
        "The signed-in user may not act on this account (UserIsNotAuthorized). Check "
        "BING_CUSTOMER_ID and BING_ACCOUNT_ID and the user's role in Microsoft Advertising."
    ),
    CODE_TOKEN_EXPIRED: (
        "The access token has expired (AuthenticationTokenExpired). Provide a fresh "
        "BING_ACCESS_TOKEN, or use BING_REFRESH_TOKEN so the sync can renew it."
    ),
    CODE_TERMS_NOT_ACCEPTED: (
        "The Customer Match terms are not accepted for this customer "
        "(CustomerListTermsAndConditionsNotAccepted). Accept them once in the Microsoft "
        "Advertising UI (Tools > Audiences > create a customer list > 'I accept'), then run again."
    ),
    CODE_INVALID_AUDIENCE_ID: (
        "Microsoft does not know this customer list (InvalidAudienceId); it may have been "
        "deleted. Remove the pinned/stored list id so the sync can find or create the list."
    ),
    CODE_INVALID_CUSTOMER_LIST_ID: (
        "Microsoft does not accept items for this customer list (InvalidCustomerListId); it may "
        "have been deleted. Remove the pinned/stored list id so the sync can find or create it."
    ),
    1011: (
        "Microsoft refused the operation (1011); this is what it answers when the account lacks "
        "the Customer Match feature. Ask Microsoft Advertising support to enable it."
    ),
}


# ---------------------------------------------------------------------------------------------
# Settings


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


# ---------------------------------------------------------------------------------------------
# Results and errors


@dataclass(frozen=True)
class RemoteList:
    list_id: int
    name: str
    membership_duration: int | None
    description: str = ""


@dataclass(frozen=True, eq=False)
class UploadOutcome:
    """One finished upload file."""

    action: str  # "Add" | "Remove" | "Replace" (the first file of a Replace)
    sent: pl.DataFrame  # email_sha256: the hashes in this upload file
    rejected: pl.DataFrame  # email_sha256 (str), error_code (int), error_message (str)
    request_id: str | None
    tracking_id: str | None
    seconds: float


class BingError(Exception):
    """A failed step. ``str()`` never contains a hash, email, token or URL.

    ``code``, ``error_name`` and ``microsoft_message`` are Microsoft's own OperationError
    (or row/list error) when it sent one: what an operator quotes to Microsoft's support.
    """

    def __init__(
        self,
        step: str,
        message: str,
        code: int | None = None,
        *,
        error_name: str | None = None,
        microsoft_message: str | None = None,
    ):
        self.step = step
        self.code = code
        self.error_name = error_name or None
        self.microsoft_message = scrub(microsoft_message) if microsoft_message else None
        self.message = scrub(message)
        super().__init__(str(self))

    def microsoft_error(self) -> dict[str, Any] | None:
        """Microsoft's error as {code, name, message}, or None when it sent none."""
        if self.code is None and not self.error_name:
            return None
        return {"code": self.code, "name": self.error_name, "message": self.microsoft_message}

    def __str__(self) -> str:
        said = [str(self.code)] if self.code is not None else []
        said += [self.error_name] if self.error_name else []
        suffix = f" (Microsoft error {' '.join(said)}" if said else ""
        if said and self.microsoft_message:
            suffix += f": {self.microsoft_message}"
        return f"{self.step}: {self.message}{suffix}{')' if said else ''}"


class TransientBingError(BingError):
    """Worth retrying (network, 5xx, throttling, a Failed upload); retried within the run."""

    def __init__(
        self,
        step: str,
        message: str,
        code: int | None = None,
        *,
        retry_in_run: bool = True,
        error_name: str | None = None,
        microsoft_message: str | None = None,
    ):
        super().__init__(
            step, message, code, error_name=error_name, microsoft_message=microsoft_message
        )
        self.retry_in_run = retry_in_run


class PermanentBingError(BingError):
    """Retrying will not help until someone acts; the message says what to do."""


class UploadInFlight(TransientBingError):
    """Microsoft is still processing an upload when the run's wait for it ends: a normal
    state, not a failure. The upload is known by ``request_id``; a later run collects it
    (:meth:`Bing.collect_upload`) instead of sending the file again."""

    def __init__(self, step: str, request_id: str, tracking_id: str | None, waited: float):
        super().__init__(
            step,
            f"Microsoft is still processing it after {waited:.0f} s; the next run collects "
            "its result",
            retry_in_run=False,
        )
        self.request_id = request_id
        self.tracking_id = tracking_id


class UploadFailed(TransientBingError):
    """Microsoft reports an upload as Failed (or Expired, Aborted): nothing of it applied."""


@dataclass(frozen=True)
class UploadHooks:
    """What the caller records around each member file, so an upload survives the run:
    ``recorded(action, hashes, request_id, tracking_id)`` once Microsoft gave the file its
    request id and before the file is sent (it must be durable when it returns);
    ``sent(request_id)`` once Microsoft has the file."""

    recorded: Callable[[str, pl.Series, str, str | None], None]
    sent: Callable[[str], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, per step.

    ``max_attempts`` tries per upload file (or per lookup) in total; ``upload_timeout`` bounds
    the file POST and the wait for Microsoft to process one file (about a minute per 10k rows);
    ``request_timeout`` bounds each SOAP call and the result file download.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    upload_timeout: float = 600.0
    request_timeout: float = 120.0
    #: How long to wait for Microsoft to process a file before leaving it in flight (its
    #: result is then collected by a later run); None: upload_timeout. 0: submit and return.
    processing_wait: float | None = None

    @property
    def wait(self) -> float:
        return self.upload_timeout if self.processing_wait is None else self.processing_wait

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.base_delay, self.max_delay) < 0:
            raise ValueError("delays must be >= 0")
        if self.upload_timeout <= 0 or self.request_timeout <= 0:
            raise ValueError("timeouts must be > 0")

    def backoff(self, failures: int, throttled: bool = False) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        if throttled:
            ceiling = self.max_delay
        else:
            ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))
        return random.uniform(ceiling / 2, ceiling)


# ---------------------------------------------------------------------------------------------
# Result files


@dataclass(frozen=True)
class ResultList:
    """A ``Customer List`` record of a result file (with its errors, if any)."""

    list_id: int | None
    name: str | None
    client_id: str | None
    action: str | None
    membership_duration: int | None
    errors: tuple[tuple[int, str], ...] = ()


_REJECTED_SCHEMA = {
    "email_sha256": pl.String,
    "error_code": pl.Int64,
    "error_message": pl.String,
    "list_id": pl.Int64,
}


@dataclass(frozen=True, eq=False)
class UploadResult:
    """A parsed upload result file.

    ``rejected`` has one row per failed ``Customer List Item`` (first error only):
    email_sha256 (the Text as sent), error_code, error_message (Microsoft's symbolic error,
    e.g. ``EmailMustBeHashed``) and list_id (the item's Parent Id).
    """

    lists: tuple[ResultList, ...]
    rejected: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_REJECTED_SCHEMA))

    @property
    def list_errors(self) -> list[tuple[int | None, int, str]]:
        return [(rl.list_id, code, name) for rl in self.lists for code, name in rl.errors]


def _errors_of(entity: _SingleRecordBulkEntity) -> tuple[tuple[int, str], ...]:
    out = []
    for err in entity.errors or ():
        code = err.number if err.number is not None else -1
        out.append((int(code), err.error or f"Error{code}"))
    return tuple(out)


def parse_upload_result(path: str | os.PathLike[str], workdir: Path | None = None) -> UploadResult:
    """Read a bulk upload result file (CSV, or a zip of one) with the SDK's ``BulkFileReader``.

    Columns are read by header name, so Microsoft's ever-growing layouts (438, 474, ...
    columns) and the short layout all work. A zip is extracted into ``workdir`` (default: a
    private temporary directory) and the extracted copy is deleted afterwards.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        with contextlib.ExitStack() as stack:
            target_dir = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
            extracted = target_dir / f"result-{uuid.uuid4().hex}.csv"
            stack.callback(extracted.unlink, missing_ok=True)
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                if not names:
                    raise ValueError("the result zip is empty")
                with zf.open(names[0]) as src, open(extracted, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            return _parse_result_csv(extracted)
    return _parse_result_csv(path)


def _parse_result_csv(path: Path) -> UploadResult:
    lists: list[ResultList] = []
    texts: list[str] = []
    codes: list[int] = []
    messages: list[str] = []
    parents: list[int | None] = []
    with BulkFileReader(str(path), result_file_type=ResultFileType.upload) as reader:
        for entity in reader:
            if isinstance(entity, BulkCustomerList):
                audience = entity.customer_list
                lists.append(
                    ResultList(
                        list_id=getattr(audience, "Id", None),
                        name=getattr(audience, "Name", None),
                        client_id=entity.client_id or None,
                        action=entity.action_type or None,
                        membership_duration=getattr(audience, "MembershipDuration", None),
                        errors=_errors_of(entity),
                    )
                )
            elif isinstance(entity, BulkCustomerListItem) and entity.has_errors:
                code, name = _errors_of(entity)[0]
                texts.append(entity.text or "")
                codes.append(code)
                messages.append(name)
                parents.append(entity.parent_id)
    rejected = pl.DataFrame(
        {"email_sha256": texts, "error_code": codes, "error_message": messages, "list_id": parents},
        schema=_REJECTED_SCHEMA,
    )
    return UploadResult(lists=tuple(lists), rejected=rejected)


# ---------------------------------------------------------------------------------------------
# SDK operations without the SDK's internal sleeping retries


class _UploadOperation(BulkUploadOperation):
    def _get_status_with_retry(self, retry_times: int) -> Any:
        # One call; waiting and retrying are decided by Bing/RetryPolicy.
        return self.service_client.GetBulkUploadStatus(RequestId=self.request_id)


class _DownloadOperation(BulkDownloadOperation):
    def _get_status_with_retry(self, retry_times: int) -> Any:
        return self.service_client.GetBulkDownloadStatus(RequestId=self.request_id)


_IN_PROGRESS = frozenset({"InProgress", "FileUploaded", "PendingFileUpload"})
_UPLOAD_DONE = frozenset({"Completed", "CompletedWithErrors"})
_UPLOAD_RETRYABLE = frozenset({"Failed", "Expired", "Aborted"})


class _RefreshCallbackError(Exception):
    """Wraps an exception raised by ``on_refresh_token`` so it is not mistaken for Bing's."""

    def __init__(self, original: BaseException):
        super().__init__("on_refresh_token failed")
        self.original = original


# ---------------------------------------------------------------------------------------------
# Error classification


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def _operation_errors(errors: Any) -> list[tuple[int | None, str, str]]:
    """(code, symbolic code, message) of the SDK's OperationError objects (a bulk status,
    a BulkException)."""
    return [
        (_int_or_none(e.code), str(e.error_code or ""), str(e.message or ""))
        for e in (errors or [])
    ]


def _fault_errors(exc: WebFault) -> list[tuple[int | None, str, str]]:
    """(code, symbolic code, message) of every error in a SOAP fault's detail."""
    out: list[tuple[int | None, str, str]] = []
    detail = getattr(getattr(exc, "fault", None), "detail", None)
    if detail is None:
        return out
    ad = getattr(detail, "AdApiFaultDetail", None)
    if ad is not None:
        for e in _as_list(getattr(getattr(ad, "Errors", None), "AdApiError", None)):
            out.append(
                (
                    _int_or_none(getattr(e, "Code", None)),
                    str(getattr(e, "ErrorCode", "") or ""),
                    str(getattr(e, "Message", "") or ""),
                )
            )
    api = getattr(detail, "ApiFaultDetail", None)
    if api is not None:
        for group, item in (("OperationErrors", "OperationError"), ("BatchErrors", "BatchError")):
            for e in _as_list(getattr(getattr(api, group, None), item, None)):
                out.append(
                    (
                        _int_or_none(getattr(e, "Code", None)),
                        str(getattr(e, "ErrorCode", "") or ""),
                        str(getattr(e, "Message", "") or ""),
                    )
                )
    return out


def _from_codes(step: str, errors: list[tuple[int | None, str, str]]) -> BingError:
    if not errors:
        return TransientBingError(step, "Microsoft answered with a SOAP fault without details")
    # A permanent error anywhere wins over transient ones.
    for code, symbol, message in errors:
        if code not in TRANSIENT_CODES:
            advice = _ADVICE.get(code) if code is not None else None
            text = advice or "Microsoft refused the request"
            return PermanentBingError(
                step, text, code, error_name=symbol, microsoft_message=message
            )
    code, symbol, message = errors[0]
    if code in THROTTLE_CODES:
        text = "Microsoft is throttling; waiting before the next try"
    else:
        text = "Microsoft reported a temporary problem"
    return TransientBingError(step, text, code, error_name=symbol, microsoft_message=message)


def _http_error(step: str, status: int | None) -> BingError:
    if status in (401, 403):
        return PermanentBingError(
            step,
            f"HTTP {status}: Microsoft refused the credentials. Check BING_DEVELOPER_TOKEN and "
            "the access/refresh token for BING_ENVIRONMENT.",
        )
    if status is None or status >= 500 or status in (404, 408, 409, 429):
        return TransientBingError(step, f"HTTP {status} from the Bulk service")
    return PermanentBingError(step, f"HTTP {status} from the Bulk service")


def _classify(step: str, exc: BaseException) -> BingError:
    """Translate an SDK/transport exception into a BingError (never copying its text)."""
    if isinstance(exc, BingError):
        return exc
    if isinstance(exc, WebFault):
        return _from_codes(step, _fault_errors(exc))
    if isinstance(exc, BulkException):
        return _from_codes(step, _operation_errors(exc.errors))
    if isinstance(exc, OAuthTokenRequestException):
        if exc.error_code in ("temporarily_unavailable", "server_error"):
            return TransientBingError(step, f"the OAuth service is unavailable ({exc.error_code})")
        return PermanentBingError(
            step,
            f"Microsoft's OAuth service refused the refresh token ({exc.error_code}). Run the "
            "consent flow again for BING_CLIENT_ID and store the new BING_REFRESH_TOKEN.",
        )
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return _http_error(step, status)
    if (
        isinstance(exc, Exception)
        and len(exc.args) == 1
        and isinstance(exc.args[0], tuple)
        and len(exc.args[0]) == 2
        and isinstance(exc.args[0][0], int)
    ):
        # suds: Exception((status, description)) for a non-SOAP HTTP error reply.
        return _http_error(step, exc.args[0][0])
    if isinstance(
        exc,
        requests.Timeout
        | TimeoutError
        | TimeoutException
        | requests.ConnectionError
        | ConnectionError
        | urllib.error.URLError
        | http.client.HTTPException
        | requests.exceptions.ChunkedEncodingError
        | requests.exceptions.ContentDecodingError,
    ):
        return TransientBingError(step, f"network error ({type(exc).__name__})")
    name = type(exc).__name__
    if name in ("FileUploadException", "FileDownloadException"):  # SDK wrappers of timeouts
        return TransientBingError(step, f"the file transfer timed out ({name})")
    if isinstance(exc, SAXException | zipfile.BadZipFile | EOFError):
        return TransientBingError(step, f"unreadable reply from the Bulk service ({name})")
    if isinstance(exc, EntityReadException):
        return PermanentBingError(step, "the result file could not be read by the SDK")
    return PermanentBingError(step, f"unexpected error from the SDK ({name})")


class _Attempts:
    """Counts transient failures of one unit of work and sleeps between tries."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.failures = 0

    def failed(self, err: TransientBingError) -> None:
        self.failures += 1
        if not err.retry_in_run or self.failures >= self.policy.max_attempts:
            raise err
        delay = self.policy.backoff(self.failures, throttled=err.code in THROTTLE_CODES)
        log.warning(
            "%s; retrying in %.1f s (try %d of %d)",
            err,
            delay,
            self.failures + 1,
            self.policy.max_attempts,
        )
        time.sleep(delay)


# ---------------------------------------------------------------------------------------------
# The client


class Bing:
    """Customer Match operations for one Microsoft Advertising account.

    ``workdir`` must be an absolute, private directory owned by the caller: upload files,
    zips and result files are created there and deleted as soon as they are not needed.
    """

    def __init__(
        self,
        settings: BingSettings,
        workdir: Path,
        *,
        on_refresh_token: Callable[[str], None] | None = None,
        refresh_token_override: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        max_rows_per_file: int = 1_000_000,
        poll_interval_ms: int | None = None,
    ):
        workdir = Path(workdir)
        if not workdir.is_absolute():
            raise ValueError("workdir must be an absolute path (the SDK breaks on relative ones)")
        if max_rows_per_file < 1 or max_rows_per_file > bulkfile.MICROSOFT_MAX_ROWS - 2:
            raise ValueError(f"max_rows_per_file must be 1..{bulkfile.MICROSOFT_MAX_ROWS - 2}")
        if poll_interval_ms is not None and poll_interval_ms < 0:
            raise ValueError("poll_interval_ms must be >= 0")
        workdir.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.workdir = workdir
        self.retry = retry
        self.max_rows_per_file = max_rows_per_file
        self.poll_interval_ms = poll_interval_ms
        self._on_refresh_token = on_refresh_token
        self._refresh_token_override = refresh_token_override
        self._authorization: AuthorizationData | None = None
        self._manager: BulkServiceManager | None = None
        self._suds_options: dict[str, Any] = {"timeout": retry.request_timeout}
        if settings.bulk_service_url:
            self._suds_options["location"] = settings.bulk_service_url

    # -- plumbing ------------------------------------------------------------------------------

    def _token_refreshed(self, tokens: OAuthTokens) -> None:
        if self._on_refresh_token is None or not tokens.refresh_token:
            return
        try:
            self._on_refresh_token(tokens.refresh_token)
        except Exception as exc:  # surfaced as is by _call
            raise _RefreshCallbackError(exc) from exc

    def _call(self, step: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call; turn whatever it raises into a BingError."""
        try:
            return fn(*args, **kwargs)
        except _RefreshCallbackError as exc:
            raise exc.original from None
        except BingError:
            raise
        except Exception as exc:
            err = _classify(step, exc)
            log.debug("%s failed: %s", step, type(exc).__name__)
            raise err from None

    def _retrying(self, step: str, fn: Callable[[], Any]) -> Any:
        attempts = _Attempts(self.retry)
        while True:
            try:
                return self._call(step, fn)
            except TransientBingError as err:
                attempts.failed(err)

    def authenticate(self) -> None:
        """Get an access token now (a refresh-token exchange, unless BING_ACCESS_TOKEN is set),
        so a caller can learn that credentials are refused before it records anything."""
        self._authorization_data()

    def _authorization_data(self) -> AuthorizationData:
        if self._authorization is not None:
            return self._authorization
        s = self.settings
        if s.access_token:
            oauth = OAuthDesktopMobileAuthCodeGrant(
                s.client_id or "access-token-only",
                oauth_tokens=OAuthTokens(access_token=s.access_token),
                env=s.environment,
            )
        else:
            if s.client_secret:
                oauth = OAuthWebAuthCodeGrant(
                    s.client_id, s.client_secret, _REDIRECT_URI, env=s.environment
                )
            else:
                oauth = OAuthDesktopMobileAuthCodeGrant(s.client_id, env=s.environment)
            oauth.token_refreshed_callback = self._token_refreshed
            refresh_token = self._refresh_token_override or s.refresh_token
            log.info("requesting an access token from Microsoft's OAuth service")
            self._retrying(
                "authenticate", lambda: oauth.request_oauth_tokens_by_refresh_token(refresh_token)
            )
        self._authorization = AuthorizationData(
            account_id=s.account_id,
            customer_id=s.customer_id,
            developer_token=s.developer_token,
            authentication=oauth,
        )
        return self._authorization

    def _fixed_token(self, client: Any) -> None:
        # With BING_ACCESS_TOKEN there is nothing to refresh: never call OAuth on a 109.
        if self.settings.access_token:
            client.refresh_oauth_tokens_automatically = False

    def _bulk(self) -> BulkServiceManager:
        if self._manager is None:
            manager = BulkServiceManager(
                self._authorization_data(),
                poll_interval_in_milliseconds=self.poll_interval_ms or 5000,
                environment=self.settings.environment,
                working_directory=str(self.workdir),
                **self._suds_options,
            )
            self._fixed_token(manager.service_client)
            self._manager = manager
        return self._manager

    def _operation(self, cls: type, request_id: str, tracking_id: str | None) -> Any:
        op = cls(
            request_id=request_id,
            authorization_data=self._authorization_data(),
            poll_interval_in_milliseconds=self.poll_interval_ms or 5000,
            environment=self.settings.environment,
            tracking_id=tracking_id,
            **self._suds_options,
        )
        self._fixed_token(op.service_client)
        return op

    def _poll_delay(self, polls: int) -> float:
        if self.poll_interval_ms is not None:
            return self.poll_interval_ms / 1000.0
        return 1.0 if polls < 4 else 5.0  # the SDK's schedule: 1 s x4, then 5 s

    def _wait(self, op: Any, deadline: float, step: str, waited_from: float) -> Any:
        """Poll until the operation leaves the in-progress states; return its status. At the
        deadline: :class:`UploadInFlight` (an upload's result is then collected later)."""
        polls = 0
        while True:
            time.sleep(self._poll_delay(polls) if polls or deadline > time.monotonic() else 0)
            polls += 1
            status = self._call(step, op.get_status)
            if status.status not in _IN_PROGRESS:
                return status
            if time.monotonic() > deadline:
                waited = time.monotonic() - waited_from
                raise UploadInFlight(step, str(op.request_id), op.tracking_id, waited)

    def _response_tracking_id(self, client: Any) -> str | None:
        try:
            return client.get_response_header().get("TrackingId")
        except Exception:  # a reply without a SOAP header: no tracking id
            return None

    def _download_result(self, op: Any, step: str) -> Path | None:
        url = op.final_status.result_file_url if op.final_status is not None else None
        if not url:
            return None
        name = f"result-{uuid.uuid4().hex}.csv"
        try:
            path = self._call(
                step,
                op.download_result_file,
                result_file_directory=str(self.workdir),
                result_file_name=name,
                decompress=True,
                overwrite=True,
                timeout_in_milliseconds=int(self.retry.request_timeout * 1000),
            )
        except BingError:
            _unlink(self.workdir / name, self.workdir / (Path(name).stem + ".zip"))
            raise
        return Path(path)

    def _run_upload(
        self,
        zip_path: Path,
        response_mode: str,
        step: str,
        *,
        resubmit: bool,
        recorded: Callable[[str, str | None], None] | None = None,
        sent: Callable[[str], None] | None = None,
        wait: float | None = None,
    ) -> tuple[Path | None, str, str | None]:
        """GetBulkUploadUrl, POST, poll, fetch the result file; retry per RetryPolicy.

        ``resubmit=False``: once the file may have reached Microsoft, a failure is raised
        instead of sending the file again (for uploads that are not idempotent).
        ``recorded(request_id, tracking_id)`` runs before each POST, ``sent(request_id)``
        after it. Still processing after ``wait`` s (default ``upload_timeout``):
        :class:`UploadInFlight`.
        """
        bulk = self._bulk()
        attempts = _Attempts(self.retry)
        phase = "url"
        posted = False
        request_id = ""
        upload_url = ""
        tracking_id: str | None = None
        op: Any = None
        deadline = started = 0.0
        while True:
            try:
                if phase == "url":
                    response = self._call(
                        f"{step}: request an upload URL",
                        bulk.service_client.GetBulkUploadUrl,
                        AccountId=self.settings.account_id,
                        ResponseMode=response_mode,
                    )
                    tracking_id = self._response_tracking_id(bulk.service_client)
                    request_id, upload_url = str(response.RequestId), str(response.UploadUrl)
                    phase = "post"
                if phase == "post":
                    if recorded is not None:
                        recorded(request_id, tracking_id)
                    phase, posted = "url", True  # a URL takes one file: start over on failure
                    self._call(
                        f"{step}: send the file",
                        bulk._upload_file_by_url,
                        url=upload_url,
                        upload_file_path=str(zip_path),
                        compress_upload_file=False,
                        timeout_in_milliseconds=int(self.retry.upload_timeout * 1000),
                    )
                    if sent is not None:
                        sent(request_id)
                    op = self._operation(_UploadOperation, request_id, tracking_id)
                    started = time.monotonic()
                    deadline = started + (self.retry.upload_timeout if wait is None else wait)
                    phase = "poll"
                if phase == "poll":
                    status = self._wait(op, deadline, f"{step}: wait for processing", started)
                    tracking_id = op.tracking_id or tracking_id
                    if status.status in _UPLOAD_DONE:
                        phase = "download"
                    elif status.status in _UPLOAD_RETRYABLE:
                        phase = "url"
                        errors = _operation_errors(status.errors)
                        code, name, said = errors[0] if errors else (None, None, None)
                        if errors and code not in TRANSIENT_CODES:
                            raise _from_codes(f"{step}: wait for processing", errors)
                        raise TransientBingError(
                            f"{step}: wait for processing",
                            f"Microsoft reported the upload as {status.status}",
                            code,
                            error_name=name,
                            microsoft_message=said,
                        )
                    else:
                        raise PermanentBingError(
                            f"{step}: wait for processing",
                            f"Microsoft refused the file ({status.status})",
                        )
                if phase == "download":
                    path = self._download_result(op, f"{step}: fetch the result file")
                    if path is None and op.final_status.status == "CompletedWithErrors":
                        # errors without their rows: nothing of this file can count as confirmed
                        raise TransientBingError(
                            f"{step}: fetch the result file",
                            "Microsoft reported errors but served no result file",
                            retry_in_run=False,
                        )
                    return path, request_id, tracking_id
            except TransientBingError as err:
                if phase == "url" and posted and not resubmit:
                    raise
                attempts.failed(err)

    # -- public API ----------------------------------------------------------------------------

    def find_lists(self) -> list[RemoteList]:
        """All customer lists of the account (bulk download of ``CustomerLists``)."""
        step = "find customer lists"
        attempts = _Attempts(self.retry)
        while True:
            path: Path | None = None
            try:
                bulk = self._bulk()
                submitted = self._call(
                    step,
                    bulk.submit_download,
                    SubmitDownloadParameters(
                        data_scope=["EntityData"],
                        download_entities=["CustomerLists"],
                        file_type="Csv",
                    ),
                )
                op = self._operation(
                    _DownloadOperation, submitted.request_id, submitted.tracking_id
                )
                started = time.monotonic()
                deadline = started + self.retry.upload_timeout
                try:
                    status = self._wait(op, deadline, step, started)
                except UploadInFlight as slow:  # a download is not worth keeping: ask again
                    raise TransientBingError(step, slow.message, retry_in_run=False) from None
                if status.status != "Completed":
                    raise TransientBingError(
                        step, f"Microsoft reported the download as {status.status}"
                    )
                path = self._download_result(op, step)
                if path is None:
                    raise TransientBingError(step, "Microsoft returned no download file")
                lists = self._call(step, _read_lists, path)
                log.info("found %d customer list(s)", len(lists))
                return lists
            except TransientBingError as err:
                attempts.failed(err)
            finally:
                _unlink(path)

    def create_list(
        self, name: str, description: str, membership_duration: int, client_id: str
    ) -> int:
        """Create a customer list (bulk upload, ErrorsAndResults); return its new id.

        Never sends the create twice blindly: when an attempt fails after the file may have
        reached Microsoft, the lists are looked up by name before trying again.
        """
        step = "create customer list"
        stem = self.workdir / f"create-{uuid.uuid4().hex}"
        csv_path, zip_path = stem.with_suffix(".csv"), stem.with_suffix(".zip")
        result_path: Path | None = None
        try:
            bulkfile.write_create_list_file(
                csv_path,
                name=name,
                description=description,
                membership_duration=membership_duration,
                client_id=client_id,
            )
            _zip(csv_path, zip_path)
            attempts = _Attempts(self.retry)
            while True:
                try:
                    result_path, _, _ = self._run_upload(
                        zip_path, "ErrorsAndResults", step, resubmit=False
                    )
                    break
                except TransientBingError as err:
                    existing = self._list_named(name)
                    if existing is not None:
                        log.info("the list was created despite the error; using it")
                        return existing
                    attempts.failed(err)
            _unlink(zip_path)
            if result_path is None:
                raise PermanentBingError(step, "Microsoft returned no result file")
            result = self._call(step, parse_upload_result, result_path, self.workdir)
        finally:
            _unlink(csv_path, zip_path, result_path)
        rows = [r for r in result.lists if r.client_id == client_id] or list(result.lists)
        if not rows:
            raise PermanentBingError(step, "the result file has no Customer List record")
        row = rows[0]
        if row.errors:
            code, symbol = row.errors[0]
            advice = _ADVICE.get(code, "Microsoft refused it")
            raise PermanentBingError(step, advice, code, error_name=symbol)
        if not row.list_id or row.list_id <= 0:
            raise PermanentBingError(step, "the result file carries no list id")
        log.info("created a customer list")
        return int(row.list_id)

    def _list_named(self, name: str) -> int | None:
        ids = [r.list_id for r in self.find_lists() if r.name == name]
        return max(ids) if ids else None

    def upload(
        self,
        list_id: int,
        action: str,
        hashes: pl.DataFrame,
        hooks: UploadHooks | None = None,
    ) -> Iterator[UploadOutcome]:
        """Add or remove ``hashes`` (column ``email_sha256``) on a list, or ``Replace`` the
        list's members with them.

        A Replace wipes the list before its own items, file by file, so only the first file
        is a Replace and the others are Adds (each file waits for the one before it); a
        Replace of no hashes is one file with no items, which empties the list. The hashes
        are split into files of at most ``max_rows_per_file`` item rows (and under
        Microsoft's 100 MB); each file is one upload (ErrorsOnly results), yielded as soon as
        it has finished so the caller can commit it. Rows Microsoft rejected are in
        ``UploadOutcome.rejected``; list-level failures (terms not accepted, unknown list)
        raise :class:`PermanentBingError`; a file still processing when the wait ends raises
        :class:`UploadInFlight` (``hooks`` let the caller record it before it is sent).
        """
        if action not in bulkfile.ACTIONS:
            raise ValueError(f"action must be one of {bulkfile.ACTIONS}")
        list_id = int(list_id)
        if list_id <= 0:
            raise ValueError("list_id must be a positive Microsoft list id")
        chunks = bulkfile.split_hashes(hashes, list_id, self.max_rows_per_file)
        if action == "Replace" and not chunks:
            chunks = [bulkfile.hash_series(hashes)]
        return self._upload_chunks(list_id, action, chunks, hooks)

    def _upload_chunks(
        self, list_id: int, first_action: str, chunks: list[pl.Series], hooks: UploadHooks | None
    ) -> Iterator[UploadOutcome]:
        total = len(chunks)
        for number, chunk in enumerate(chunks, start=1):
            action = first_action if number == 1 or first_action != "Replace" else "Add"
            step = f"{action.lower()} members (file {number} of {total})"
            started = time.monotonic()
            stem = self.workdir / f"upload-{uuid.uuid4().hex}"
            csv_path, zip_path = stem.with_suffix(".csv"), stem.with_suffix(".zip")
            result_path: Path | None = None
            log.info("%s: %d row(s)", step, chunk.len())
            try:
                bulkfile.write_member_file(csv_path, list_id, action, chunk)
                _zip(csv_path, zip_path)
                _unlink(csv_path)
                result_path, request_id, tracking_id = self._run_upload(
                    zip_path,
                    "ErrorsOnly",
                    step,
                    resubmit=True,
                    recorded=(
                        (lambda r, t, c=chunk, a=action: hooks.recorded(a, c, r, t))
                        if hooks
                        else None
                    ),
                    sent=hooks.sent if hooks else None,
                    wait=self.retry.wait,
                )
                _unlink(zip_path)
                rejected = self._read_result(step, result_path)
            finally:
                _unlink(csv_path, zip_path, result_path)
            seconds = time.monotonic() - started
            log.info("%s: done in %.1f s, %d row(s) rejected", step, seconds, rejected.height)
            yield UploadOutcome(
                action=action,
                sent=chunk.to_frame(bulkfile.HASH_COLUMN),
                rejected=rejected,
                request_id=request_id,
                tracking_id=tracking_id,
                seconds=seconds,
            )

    def _read_result(self, step: str, result_path: Path | None) -> pl.DataFrame:
        """A member upload's rejected rows (email_sha256, error_code, error_message);
        list-level failures raise."""
        if result_path is None:
            result = UploadResult(lists=())
        else:
            result = self._call(step, parse_upload_result, result_path, self.workdir)
        _raise_list_errors(step, result)
        return result.rejected.select("email_sha256", "error_code", "error_message")

    def collect_upload(
        self, request_id: str, tracking_id: str | None, *, wait: float
    ) -> pl.DataFrame | None:
        """The outcome of a member upload an earlier run left at Microsoft: its rejected rows
        once processed; None when the file never reached Microsoft (status
        PendingFileUpload); :class:`UploadInFlight` while still processing after ``wait``
        seconds; a Failed upload raises with Microsoft's error (nothing of it applied)."""
        step = "collect an earlier upload"
        op = self._operation(_UploadOperation, request_id, tracking_id)
        started = time.monotonic()
        status = self._retrying(step, op.get_status)
        if status.status == "PendingFileUpload":
            return None
        if status.status in _IN_PROGRESS:
            status = self._wait(op, started + wait, step, started)
        if status.status not in _UPLOAD_DONE:
            errors = _operation_errors(status.errors)
            code, name, said = errors[0] if errors else (None, None, None)
            raise UploadFailed(
                step,
                f"Microsoft reported the upload as {status.status}; its rows are sent again",
                code,
                retry_in_run=False,
                error_name=name,
                microsoft_message=said,
            )
        result_path = self._download_result(op, f"{step}: fetch the result file")
        try:
            if result_path is None and status.status == "CompletedWithErrors":
                raise TransientBingError(
                    step, "Microsoft reported errors but served no result file", retry_in_run=False
                )
            return self._read_result(step, result_path)
        finally:
            _unlink(result_path)


def _raise_list_errors(step: str, result: UploadResult) -> None:
    """List-level failures (the list row failed, or items failed because of the list)."""
    if result.list_errors:
        _, code, symbol = result.list_errors[0]
        advice = _ADVICE.get(code, "Microsoft refused the list")
        raise PermanentBingError(step, advice, code, error_name=symbol)
    if result.rejected.height:
        codes = set(result.rejected.get_column("error_code").to_list()) & LIST_LEVEL_CODES
        if codes:
            code = min(codes)
            names = result.rejected.filter(pl.col("error_code") == code)["error_message"]
            raise PermanentBingError(
                step,
                _ADVICE.get(code, "Microsoft refused the list"),
                code,
                error_name=names[0] if names.len() else None,
            )


def _read_lists(path: Path) -> list[RemoteList]:
    out: list[RemoteList] = []
    with BulkFileReader(str(path), result_file_type=ResultFileType.full_download) as reader:
        for entity in reader:
            if not isinstance(entity, BulkCustomerList):
                continue
            if (entity.status or "Active") == "Deleted":
                continue
            audience = entity.customer_list
            list_id = getattr(audience, "Id", None)
            if list_id is None:
                continue
            out.append(
                RemoteList(
                    list_id=int(list_id),
                    name=getattr(audience, "Name", None) or "",
                    membership_duration=getattr(audience, "MembershipDuration", None),
                    description=getattr(audience, "Description", None) or "",
                )
            )
    return out


def _zip(csv_path: Path, zip_path: Path) -> None:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, arcname="upload.csv")


def _unlink(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
