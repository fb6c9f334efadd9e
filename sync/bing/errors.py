"""Microsoft's errors, named: its error codes, what to do about each, the error taxonomy
(transient: retried; permanent: someone must act; in flight: a normal state), and the one
translation of whatever the SDK or the network raises into it (never copying raw text)."""

from __future__ import annotations

import http.client
import urllib.error
import zipfile
from typing import Any
from xml.sax import SAXException

import requests
from bingads.exceptions import OAuthTokenRequestException, TimeoutException
from bingads.v13.bulk.exceptions import BulkException, EntityReadException
from suds import WebFault

from sync.redact import scrub

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

ADVICE = {
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


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def operation_errors(errors: Any) -> list[tuple[int | None, str, str]]:
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


def from_codes(step: str, errors: list[tuple[int | None, str, str]]) -> BingError:
    if not errors:
        return TransientBingError(step, "Microsoft answered with a SOAP fault without details")
    # A permanent error anywhere wins over transient ones.
    for code, symbol, message in errors:
        if code not in TRANSIENT_CODES:
            advice = ADVICE.get(code) if code is not None else None
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


def classify(step: str, exc: BaseException) -> BingError:
    """Translate an SDK/transport exception into a BingError (never copying its text)."""
    if isinstance(exc, BingError):
        return exc
    if isinstance(exc, WebFault):
        return from_codes(step, _fault_errors(exc))
    if isinstance(exc, BulkException):
        return from_codes(step, operation_errors(exc.errors))
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
