"""The Bulk service plumbing under the Customer Match client (see Transport)."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bingads.authorization import (
    AuthorizationData,
    OAuthDesktopMobileAuthCodeGrant,
    OAuthTokens,
    OAuthWebAuthCodeGrant,
)
from bingads.v13.bulk import BulkServiceManager

from sync import bulkfile
from sync.bing.errors import (
    TRANSIENT_CODES,
    BingError,
    PermanentBingError,
    TransientBingError,
    UploadInFlight,
    classify,
    from_codes,
    operation_errors,
)
from sync.bing.retry import DEFAULT_RETRY, Attempts, RetryPolicy
from sync.bing.sdk import UploadOperation, post_file
from sync.bing.settings import REDIRECT_URI, BingSettings

log = logging.getLogger("sync.bing")

IN_PROGRESS = frozenset({"InProgress", "FileUploaded", "PendingFileUpload"})
UPLOAD_DONE = frozenset({"Completed", "CompletedWithErrors"})
_UPLOAD_RETRYABLE = frozenset({"Failed", "Expired", "Aborted"})


class _RefreshCallbackError(Exception):
    """Wraps an exception raised by ``on_refresh_token`` so it is not mistaken for Bing's."""

    def __init__(self, original: BaseException):
        super().__init__("on_refresh_token failed")
        self.original = original


class Transport:
    """The Bulk service for one Microsoft Advertising account: credentials, SDK calls turned
    into named errors, status polls, result files, and one upload's trip (URL, POST, poll,
    result) with its retries. :class:`sync.bing.client.Bing` builds Customer Match on it.

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
        retry: RetryPolicy = DEFAULT_RETRY,
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
            err = classify(step, exc)
            log.debug("%s failed: %s", step, type(exc).__name__)
            raise err from None

    def _retrying(self, step: str, fn: Callable[[], Any]) -> Any:
        attempts = Attempts(self.retry)
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
                    s.client_id, s.client_secret, REDIRECT_URI, env=s.environment
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
            if status.status not in IN_PROGRESS:
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
            unlink(self.workdir / name, self.workdir / (Path(name).stem + ".zip"))
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
        attempts = Attempts(self.retry)
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
                        post_file,
                        bulk,
                        upload_url,
                        zip_path,
                        int(self.retry.upload_timeout * 1000),
                    )
                    if sent is not None:
                        sent(request_id)
                    op = self._operation(UploadOperation, request_id, tracking_id)
                    started = time.monotonic()
                    deadline = started + (self.retry.upload_timeout if wait is None else wait)
                    phase = "poll"
                if phase == "poll":
                    status = self._wait(op, deadline, f"{step}: wait for processing", started)
                    tracking_id = op.tracking_id or tracking_id
                    if status.status in UPLOAD_DONE:
                        phase = "download"
                    elif status.status in _UPLOAD_RETRYABLE:
                        phase = "url"
                        errors = operation_errors(status.errors)
                        code, name, said = errors[0] if errors else (None, None, None)
                        if errors and code not in TRANSIENT_CODES:
                            raise from_codes(f"{step}: wait for processing", errors)
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


def zip_file(csv_path: Path, zip_path: Path) -> None:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(csv_path, arcname="upload.csv")


def unlink(*paths: Path | None) -> None:
    for path in paths:
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
