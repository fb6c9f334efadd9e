"""The Bulk v13 stand-in's credentials and injected faults (throttling, HTTP errors, resets,
delays, failed or pending uploads, rejected rows, terms), driven by the real bingads SDK."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
import requests
from bingads.util import errorcode_of_exception, operation_errorcode_of_exception
from bingads.v13.bulk import SubmitUploadParameters
from suds import WebFault

from sync import bulkfile
from tests.harness.bing import read_upload_file
from tests.harness.sdk import HASHES, hashes_series, manager, upload_short_file

# The SDK's own poll loop (used here directly) waits 1 s per poll by default.
pytestmark = pytest.mark.usefixtures("fast_sdk_polling")


# ------------------------------------------------------------------------------------------------
# Credentials and faults


def test_bad_token_gets_invalid_credentials_fault(standin, tmp_path):
    m = manager(standin, tmp_path, token="wrong")
    with pytest.raises(WebFault) as info:
        m.service_client.GetBulkUploadUrl(AccountId=standin.account_id, ResponseMode="ErrorsOnly")
    assert errorcode_of_exception(info.value) == "105"
    error = info.value.fault.detail.AdApiFaultDetail.Errors.AdApiError
    assert error.ErrorCode == "InvalidCredentials"


def test_bad_token_on_file_post_is_401(standin, tmp_path):
    good = manager(standin, tmp_path)
    response = good.service_client.GetBulkUploadUrl(
        AccountId=standin.account_id, ResponseMode="ErrorsOnly"
    )
    reply = requests.post(
        response.UploadUrl,
        files={"file": ("x.csv", b"Type\r\n")},
        headers={"AuthenticationToken": "wrong"},
        timeout=5,
    )
    assert reply.status_code == 401


def test_throttle_faults_look_like_microsofts(standin, tmp_path):
    m = manager(standin, tmp_path)
    standin.inject(kind="throttle", code=4204)
    standin.inject(kind="throttle", code=117, operation="GetBulkUploadUrl")
    with pytest.raises(WebFault) as info:
        m.service_client.GetBulkUploadUrl(AccountId=standin.account_id, ResponseMode="ErrorsOnly")
    assert (
        operation_errorcode_of_exception(info.value)
        == "BulkServiceNoMoreCallsPermittedForTheTimePeriod"
    )
    error = info.value.fault.detail.ApiFaultDetail.OperationErrors.OperationError
    assert error.Code == "4204"
    with pytest.raises(WebFault) as info:
        m.service_client.GetBulkUploadUrl(AccountId=standin.account_id, ResponseMode="ErrorsOnly")
    assert errorcode_of_exception(info.value) == "117"
    # Both were used up.
    assert m.service_client.GetBulkUploadUrl(
        AccountId=standin.account_id, ResponseMode="ErrorsOnly"
    )


def test_http_error_reset_and_delay_faults_with_count_and_operation(standin, tmp_path):
    m = manager(standin, tmp_path)

    def call():
        return m.service_client.GetBulkUploadUrl(
            AccountId=standin.account_id, ResponseMode="ErrorsOnly"
        )

    standin.inject(kind="http_error", status=503, count=2, operation="GetBulkUploadUrl")
    standin.inject(kind="http_error", status=500, operation="GetBulkDownloadStatus")
    for _ in range(2):
        with pytest.raises(Exception) as info:
            call()
        assert info.value.args[0][0] == 503
    assert call().RequestId
    assert [f["operation"] for f in standin.faults()] == ["GetBulkDownloadStatus"]
    standin.clear_faults()

    standin.inject(kind="reset")
    with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
        call()
    assert call().RequestId

    standin.inject(kind="delay", seconds=0.3)
    started = time.monotonic()
    assert call().RequestId
    assert time.monotonic() - started >= 0.3
    assert standin.calls.count("GetBulkUploadUrl") == 6


def test_upload_failed_and_pending_statuses(standin, tmp_path):
    list_id = standin.add_list("Status")
    m = manager(standin, tmp_path)
    path = bulkfile.write_member_file(tmp_path / "f.csv", list_id, "Add", hashes_series(HASHES[:1]))

    standin.inject(kind="upload_failed")
    operation = m.submit_upload(
        SubmitUploadParameters(
            upload_file_path=str(path), response_mode="ErrorsOnly", compress_upload_file=True
        )
    )
    status = operation.get_status()
    assert status.status == "Failed"
    assert status.errors[0].error_code == "InternalError"
    assert standin.lists()[list_id]["members"] == set()

    standin.inject(kind="pending", polls=2)
    path = bulkfile.write_member_file(tmp_path / "g.csv", list_id, "Add", hashes_series(HASHES[:1]))
    operation = m.submit_upload(
        SubmitUploadParameters(
            upload_file_path=str(path), response_mode="ErrorsOnly", compress_upload_file=True
        )
    )
    seen = [operation.get_status().status]
    operation._final_status = None  # ask again, as a fresh poll would
    seen += [
        m.service_client.GetBulkUploadStatus(RequestId=operation.request_id).RequestStatus
        for _ in range(2)
    ]
    assert seen == ["InProgress", "InProgress", "Completed"]


def test_reject_rows_and_terms_faults(standin, tmp_path):
    list_id = standin.add_list("Faulty")
    m = manager(standin, tmp_path)
    standin.inject(kind="reject_rows", hashes=[HASHES[1]], code=8004)
    result = upload_short_file(m, tmp_path, list_id, "Add", HASHES[:3], "ErrorsOnly")
    rejected = [(e.text, e.errors[0].number) for e in read_upload_file(result)]
    assert rejected == [(HASHES[1], 8004)]
    assert standin.lists()[list_id]["members"] == {HASHES[0], HASHES[2]}
    assert standin.faults() == []  # used up by the upload that contained the hash

    standin.inject(kind="terms_not_accepted", list_ids=[list_id])
    result = upload_short_file(m, tmp_path, list_id, "Add", [HASHES[3]], "ErrorsOnly")
    entities = read_upload_file(result)
    assert [(type(e).__name__, e.errors[0].number) for e in entities] == [
        ("BulkCustomerList", 8003),
        ("BulkCustomerListItem", 8003),
    ]
    assert entities[0].errors[0].error == "CustomerListTermsAndConditionsNotAccepted"
    assert HASHES[3] not in standin.lists()[list_id]["members"]


def test_inject_validates_its_arguments(standin):
    with pytest.raises(ValueError):
        standin.inject(kind="nope")
    with pytest.raises(ValueError):
        standin.inject(kind="throttle", code=500)
    with pytest.raises(ValueError):
        standin.inject(kind="http_error", operation="NoSuchOperation")
    with pytest.raises(ValueError):
        standin.inject(kind="reject_rows")
    with pytest.raises(ValueError):
        standin.inject(kind="delay", seconds=1, surprise=True)
