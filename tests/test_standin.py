"""The Bulk v13 stand-in, driven by the real ``bingads`` SDK (no sync code involved)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import polars as pl
import pytest
import requests
from bingads.authorization import AuthorizationData, OAuthDesktopMobileAuthCodeGrant, OAuthTokens
from bingads.service_client import _CAMPAIGN_OBJECT_FACTORY_V13
from bingads.util import _PollingBlocker, errorcode_of_exception, operation_errorcode_of_exception
from bingads.v13.bulk import (
    BulkFileReader,
    BulkServiceManager,
    DownloadParameters,
    EntityUploadParameters,
    FileUploadParameters,
    SubmitUploadParameters,
)
from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem
from bingads.v13.bulk.enums import ResultFileType
from suds import WebFault

from sync import bulkfile
from sync.standin import StandIn
from tests.harness.sync import BING_FIXTURES as FIXTURES

TOKEN = "standin-test-token"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


HASHES = [sha(f"person{i}@example.com") for i in range(6)]


@pytest.fixture(autouse=True)
def fast_sdk_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own poll loop (used here directly) waits 1 s per poll by default."""
    monkeypatch.setattr(_PollingBlocker, "INITIAL_STATUS_CHECK_INTERVAL_IN_MS", 10)


@pytest.fixture
def standin():
    with StandIn(token=TOKEN) as server:
        yield server


def manager(server: StandIn, workdir: Path, token: str = TOKEN) -> BulkServiceManager:
    auth = AuthorizationData(
        account_id=server.account_id,
        customer_id=server.customer_id,
        developer_token="dev-token",
        authentication=OAuthDesktopMobileAuthCodeGrant(
            "client", oauth_tokens=OAuthTokens(access_token=token)
        ),
    )
    return BulkServiceManager(
        auth,
        poll_interval_in_milliseconds=10,
        working_directory=str(workdir),
        location=server.url,
        timeout=10,
    )


def new_list_entity(ref: int, name: str, duration: int = 30) -> BulkCustomerList:
    audience = _CAMPAIGN_OBJECT_FACTORY_V13.create("CustomerList")
    audience.Id = ref
    audience.Name = name
    audience.Description = "made by a test"
    audience.Scope = "Customer"
    audience.MembershipDuration = duration
    return BulkCustomerList(customer_list=audience, action_type="Add")


def list_entity(list_id: int, action: str) -> BulkCustomerList:
    audience = _CAMPAIGN_OBJECT_FACTORY_V13.create("CustomerList")
    audience.Id = list_id
    return BulkCustomerList(customer_list=audience, action_type=action)


def item(parent: int, text: str) -> BulkCustomerListItem:
    return BulkCustomerListItem(parent_id=parent, sub_type="Email", text=text)


def upload_short_file(
    m: BulkServiceManager, tmp_path: Path, list_id: int, action: str, hashes: list[str], mode: str
) -> Path:
    """Upload a short-form file (sync.bulkfile) with the SDK's upload_file; return result path."""
    path = bulkfile.write_member_file(
        tmp_path / f"{action}.csv", list_id, action, hashes_series(hashes)
    )
    return Path(
        m.upload_file(
            FileUploadParameters(
                upload_file_path=str(path),
                result_file_directory=str(tmp_path),
                result_file_name=f"{action}-result.csv",
                response_mode=mode,
                overwrite_result_file=True,
            )
        )
    )


def hashes_series(hashes: list[str]) -> pl.Series:
    return pl.Series("email_sha256", hashes, dtype=pl.String)


def read_result(path: Path) -> list:
    with BulkFileReader(str(path), result_file_type=ResultFileType.upload) as reader:
        return list(reader)


def raw_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(fh)]


# ------------------------------------------------------------------------------------------------
# Uploads


def test_upload_entities_sync_path_creates_list_and_reports_errors(standin, tmp_path):
    m = manager(standin, tmp_path)
    entities = [new_list_entity(-10, "Sync path list")]
    entities += [item(-10, h) for h in HASHES[:3]]
    entities += [item(-10, "person@example.com")]  # not hashed

    results = list(
        m.upload_entities(
            EntityUploadParameters(entities=entities, response_mode="ErrorsAndResults")
        )
    )

    assert standin.calls == ["UploadEntityRecords"]
    created = [e for e in results if isinstance(e, BulkCustomerList)]
    assert len(created) == 1 and created[0].customer_list.Id > 0
    list_id = created[0].customer_list.Id
    items = [e for e in results if isinstance(e, BulkCustomerListItem)]
    assert [e.text for e in items if not e.has_errors] == HASHES[:3]
    bad = [e for e in items if e.has_errors]
    assert [(e.text, e.errors[0].number, e.errors[0].error) for e in bad] == [
        ("person@example.com", 8004, "EmailMustBeHashed")
    ]
    lists = standin.lists()
    assert lists[list_id]["name"] == "Sync path list"
    assert lists[list_id]["membership_duration"] == 30
    assert lists[list_id]["members"] == set(HASHES[:3])


def test_sdk_442_column_file_async_path_errors_only(standin, tmp_path):
    """Above 1000 entities the SDK writes its full-width file and uses the upload URL."""
    list_id = standin.add_list("Big list")
    m = manager(standin, tmp_path)
    many = [sha(f"user{i}@example.com") for i in range(1001)]
    entities = [list_entity(list_id, "Add")] + [item(list_id, h) for h in many]
    entities.append(item(list_id, "NOT-A-HASH"))

    results = list(
        m.upload_entities(EntityUploadParameters(entities=entities, response_mode="ErrorsOnly"))
    )

    assert standin.calls == [
        "GetBulkUploadUrl",
        "UploadFile",
        "GetBulkUploadStatus",
        "DownloadFile",
    ]
    # ErrorsOnly: only the failing row (with its error), not the list row nor the good items.
    assert len(results) == 1
    assert isinstance(results[0], BulkCustomerListItem)
    assert results[0].text == "NOT-A-HASH"
    assert [(e.number, e.error) for e in results[0].errors] == [(8004, "EmailMustBeHashed")]
    assert standin.lists()[list_id]["members"] == set(many)


def test_short_form_add_remove_replace_by_header_name(standin, tmp_path):
    list_id = standin.add_list("Short form")
    m = manager(standin, tmp_path)

    upload_short_file(m, tmp_path, list_id, "Add", HASHES[:4], "ErrorsOnly")
    assert standin.lists()[list_id]["members"] == set(HASHES[:4])

    upload_short_file(m, tmp_path, list_id, "Remove", HASHES[1:3], "ErrorsOnly")
    assert standin.lists()[list_id]["members"] == {HASHES[0], HASHES[3]}

    upload_short_file(m, tmp_path, list_id, "Replace", HASHES[4:], "ErrorsOnly")
    assert standin.lists()[list_id]["members"] == set(HASHES[4:])


def test_errors_and_results_echoes_every_row_with_ids(standin, tmp_path):
    list_id = standin.add_list("Echo")
    m = manager(standin, tmp_path)
    result = upload_short_file(
        m, tmp_path, list_id, "Add", [HASHES[0], "bad", HASHES[1]], "ErrorsAndResults"
    )
    types = [row["Type"] for row in raw_rows(result)]
    assert types == [
        "Format Version",
        "Customer List",
        "Customer List Item",
        "Customer List Item",
        "Customer List Item Error",
        "Customer List Item",
    ]
    entities = read_result(result)
    assert isinstance(entities[0], BulkCustomerList)
    assert entities[0].customer_list.Id == list_id
    assert [e.text for e in entities[1:]] == [HASHES[0], "bad", HASHES[1]]
    assert [e.has_errors for e in entities[1:]] == [False, True, False]


def test_unknown_list_mirrors_microsoft_result_file(standin, tmp_path):
    m = manager(standin, tmp_path)
    result = upload_short_file(m, tmp_path, 819689004, "Add", HASHES[:3], "ErrorsOnly")

    ours = raw_rows(result)
    theirs = raw_rows(FIXTURES / "upload-result-invalid-list.csv")
    keys = ("Type", "Id", "Parent Id", "Sub Type", "Text", "Error", "Error Number", "Action Type")

    def shape(rows):
        return [{k: r[k] for k in keys if k in r and k != "Text"} for r in rows]

    assert shape(ours) == shape(theirs)
    entities = read_result(result)
    assert [(e.number, e.error) for e in entities[0].errors] == [(4835, "InvalidAudienceId")]
    assert {(e.text, e.errors[0].number) for e in entities[1:]} == {(h, 8000) for h in HASHES[:3]}
    assert standin.lists() == {}


def test_email_not_hashed_mirrors_microsoft_result_file(standin, tmp_path):
    list_id = standin.add_list("Plain emails")
    m = manager(standin, tmp_path)
    result = upload_short_file(
        m, tmp_path, list_id, "Add", ["abc@gmail.com", "def@gmail.com"], "ErrorsOnly"
    )
    with zipfile.ZipFile(FIXTURES / "upload-result-email-not-hashed.zip") as zf:
        theirs_text = zf.read(zf.namelist()[0]).decode("utf-8-sig")
    theirs = [
        {k: v for k, v in row.items() if v}
        for row in csv.DictReader(io.StringIO(theirs_text, newline=""))
    ]
    keys = ("Type", "Sub Type", "Text", "Error", "Error Number")
    assert [{k: r.get(k) for k in keys} for r in raw_rows(result)] == [
        {k: r.get(k) for k in keys} for r in theirs
    ]
    assert standin.lists()[list_id]["members"] == set()


def test_uppercase_hex_and_wrong_sub_type_are_rejected(standin, tmp_path):
    list_id = standin.add_list("Validation")
    m = manager(standin, tmp_path)
    entities = [list_entity(list_id, "Add"), item(list_id, HASHES[0].upper())]
    entities.append(BulkCustomerListItem(parent_id=list_id, sub_type="Phone", text=HASHES[1]))
    results = list(
        m.upload_entities(EntityUploadParameters(entities=entities, response_mode="ErrorsOnly"))
    )
    assert sorted(e.errors[0].number for e in results) == [8002, 8004]
    assert standin.lists()[list_id]["members"] == set()


# ------------------------------------------------------------------------------------------------
# Download


def test_customer_lists_download(standin, tmp_path):
    first = standin.add_list("Alpha", membership_duration=-1)
    second = standin.add_list("Beta", membership_duration=30, members=HASHES[:2])
    m = manager(standin, tmp_path)
    entities = list(
        m.download_entities(
            DownloadParameters(
                data_scope=["EntityData"],
                download_entities=["CustomerLists"],
                result_file_directory=str(tmp_path),
                result_file_name="download.csv",
                overwrite_result_file=True,
            )
        )
    )
    lists = [
        (e.customer_list.Id, e.customer_list.Name, e.customer_list.MembershipDuration)
        for e in entities
        if isinstance(e, BulkCustomerList)
    ]
    assert lists == [(first, "Alpha", -1), (second, "Beta", 30)]
    assert standin.calls == [
        "DownloadCampaignsByAccountIds",
        "GetBulkDownloadStatus",
        "DownloadFile",
    ]


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
    rejected = [(e.text, e.errors[0].number) for e in read_result(result)]
    assert rejected == [(HASHES[1], 8004)]
    assert standin.lists()[list_id]["members"] == {HASHES[0], HASHES[2]}
    assert standin.faults() == []  # used up by the upload that contained the hash

    standin.inject(kind="terms_not_accepted", list_ids=[list_id])
    result = upload_short_file(m, tmp_path, list_id, "Add", [HASHES[3]], "ErrorsOnly")
    entities = read_result(result)
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


# ------------------------------------------------------------------------------------------------
# Control API, persistence, CLI, logging


def http(method: str, url: str, data=None):
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, data=body, method=method)
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def test_http_control_api(standin, tmp_path):
    base = standin.base_url + "/_standin"
    created = http("POST", base + "/lists", {"name": "Via HTTP", "members": HASHES[:2]})
    lists = http("GET", base + "/lists")["lists"]
    assert lists[str(created["list_id"])]["members"] == sorted(HASHES[:2])

    armed = http("POST", base + "/faults", [{"kind": "http_error", "status": 503, "count": None}])
    assert armed["faults"][0]["count"] is None
    m = manager(standin, tmp_path)
    with pytest.raises(Exception):  # noqa: B017 (suds raises a bare Exception)
        m.service_client.GetBulkUploadUrl(AccountId=1, ResponseMode="ErrorsOnly")
    assert http("GET", base + "/calls")["calls"] == ["GetBulkUploadUrl"]
    assert http("DELETE", base + "/faults")["faults"] == []
    assert http("POST", base + "/faults", {"kind": "global_delay", "seconds": 0})

    http("POST", base + "/reset", {})
    assert http("GET", base + "/lists")["lists"] == {}
    assert http("GET", base + "/calls")["calls"] == []
    with pytest.raises(urllib.error.HTTPError) as info:
        http("POST", base + "/faults", {"kind": "bogus"})
    assert info.value.code == 400


def test_state_file_survives_restart(tmp_path):
    state = tmp_path / "state.json"
    with StandIn(state_file=state) as first:
        list_id = first.add_list("Persistent", members=HASHES[:2])
        m = manager(first, tmp_path, token="anything")
        upload_short_file(m, tmp_path, list_id, "Add", HASHES[2:4], "ErrorsOnly")
    saved = json.loads(state.read_text())
    assert sorted(saved["lists"][str(list_id)]["members"]) == sorted(HASHES[:4])
    assert [p.name for p in tmp_path.glob("state.json*")] == ["state.json"]  # no temp left over
    with StandIn(state_file=state) as second:
        assert second.lists()[list_id]["members"] == set(HASHES[:4])
        assert second.add_list("Next") == list_id + 1


def test_cli_prints_url_and_serves(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "sync.standin", "--port", "0", "--state", str(tmp_path / "s.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert re.fullmatch(
            r"http://127\.0\.0\.1:\d+/Api/Advertiser/CampaignManagement/v13/BulkService\.svc", url
        )
        base = url.split("/Api/")[0] + "/_standin"
        assert http("GET", base + "/lists") == {"lists": {}}
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "GET /_standin/lists" in err


def test_cli_help_has_an_example():
    out = subprocess.run(
        [sys.executable, "-m", "sync.standin", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Example:" in out and "sync-standin --port 8765" in out


def test_logs_carry_no_hashes(standin, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="sync.standin")
    list_id = standin.add_list("Quiet")
    m = manager(standin, tmp_path)
    standin.inject(kind="reject_rows", hashes=[HASHES[0]])
    upload_short_file(m, tmp_path, list_id, "Add", HASHES, "ErrorsAndResults")
    text = caplog.text
    assert "upload processed" in text
    assert not any(h in text for h in HASHES)
    assert not re.search(r"[0-9a-f]{64}", text)
