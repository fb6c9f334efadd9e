"""sync.bing and sync.bulkfile against the stand-in, through the real bingads SDK."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import polars as pl
import pytest
from bingads.authorization import MSADS_MANAGE, PRODUCTION, _UriOAuthService
from bingads.v13.bulk import BulkFileReader
from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem
from bingads.v13.bulk.enums import ResultFileType

from sync import bulkfile
from sync.bing import (
    Bing,
    BingError,
    BingSettings,
    ConfigError,
    PermanentBingError,
    RemoteList,
    RetryPolicy,
    TransientBingError,
    UploadOutcome,
    parse_upload_result,
    sdk,
)
from sync.standin import StandIn
from tests.harness.sync import BING_FIXTURES as FIXTURES

TOKEN = "access-token-for-tests-0123456789abcdef"
FAST = RetryPolicy(
    max_attempts=4, base_delay=0.001, max_delay=0.01, upload_timeout=5.0, request_timeout=2.0
)


def sha(text: str) -> str:
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()


HASHES = [sha(f"customer{i}@example.com") for i in range(7)]


def frame(hashes: list[str]) -> pl.DataFrame:
    return pl.DataFrame({"email_sha256": hashes}, schema={"email_sha256": pl.String})


def env_for(standin: StandIn | None = None, **overrides: str) -> dict[str, str]:
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


@pytest.fixture
def standin():
    with StandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def make_bing(standin: StandIn, workdir: Path, **kwargs) -> Bing:
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("poll_interval_ms", 5)
    return Bing(BingSettings.from_env(env_for(standin)), workdir, **kwargs)


def upload_all(bing: Bing, list_id: int, action: str, hashes: list[str]) -> list[UploadOutcome]:
    return list(bing.upload(list_id, action, frame(hashes)))


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
# Lists and members


def test_create_list_then_find_it_by_name(standin, workdir):
    bing = make_bing(standin, workdir)
    list_id = bing.create_list("CIO__Cart_Abandon_0-1d", "cart abandoners", -1, "cio:cart")
    assert list_id > 0
    found = {r.name: r for r in bing.find_lists()}
    assert found["CIO__Cart_Abandon_0-1d"] == RemoteList(
        list_id, "CIO__Cart_Abandon_0-1d", -1, "cart abandoners"
    )
    assert standin.lists()[list_id]["membership_duration"] == -1
    assert standin.calls.count("GetBulkUploadUrl") == 1
    assert list(workdir.iterdir()) == []


def test_add_then_remove_members(standin, workdir):
    list_id = standin.add_list("Members")
    bing = make_bing(standin, workdir)

    added = upload_all(bing, list_id, "Add", HASHES)
    assert len(added) == 1
    outcome = added[0]
    assert outcome.action == "Add"
    assert outcome.sent.get_column("email_sha256").to_list() == HASHES
    assert outcome.rejected.is_empty()
    assert outcome.rejected.schema == {
        "email_sha256": pl.String,
        "error_code": pl.Int64,
        "error_message": pl.String,
    }
    assert outcome.request_id and outcome.tracking_id and outcome.seconds > 0
    assert standin.lists()[list_id]["members"] == set(HASHES)

    removed = upload_all(bing, list_id, "Remove", HASHES[:3])
    assert [o.action for o in removed] == ["Remove"]
    assert standin.lists()[list_id]["members"] == set(HASHES[3:])
    assert list(workdir.iterdir()) == []


def test_nothing_to_send_sends_nothing(standin, workdir):
    list_id = standin.add_list("Idle")
    bing = make_bing(standin, workdir)
    assert upload_all(bing, list_id, "Add", []) == []
    assert standin.calls == []


def test_rejected_rows_come_back_with_code_and_message(standin, workdir):
    list_id = standin.add_list("Rejects")
    bing = make_bing(standin, workdir)
    sent = [HASHES[0], "customer@example.com", HASHES[1].upper(), HASHES[2]]
    standin.inject(kind="reject_rows", hashes=[HASHES[2]], code=8004)

    (outcome,) = upload_all(bing, list_id, "Add", sent)

    assert sorted(outcome.rejected.rows()) == sorted(
        [
            ("customer@example.com", 8004, "EmailMustBeHashed"),
            (HASHES[1].upper(), 8004, "EmailMustBeHashed"),
            (HASHES[2], 8004, "EmailMustBeHashed"),
        ]
    )
    assert standin.lists()[list_id]["members"] == {HASHES[0]}


def test_unknown_list_is_permanent(standin, workdir):
    bing = make_bing(standin, workdir)
    with pytest.raises(PermanentBingError) as info:
        upload_all(bing, 819689004, "Add", HASHES[:2])
    assert info.value.code == 4835
    assert "list id" in info.value.message
    assert standin.calls.count("GetBulkUploadUrl") == 1  # not retried
    assert list(workdir.iterdir()) == []


def test_file_splitting_sends_several_uploads(standin, workdir):
    list_id = standin.add_list("Split")
    bing = make_bing(standin, workdir, max_rows_per_file=3)
    outcomes = upload_all(bing, list_id, "Add", HASHES)
    assert [o.sent.height for o in outcomes] == [3, 3, 1]
    assert pl.concat([o.sent for o in outcomes]).get_column("email_sha256").to_list() == HASHES
    assert len({o.request_id for o in outcomes}) == 3
    assert standin.calls.count("GetBulkUploadUrl") == 3
    assert standin.lists()[list_id]["members"] == set(HASHES)
    assert list(workdir.iterdir()) == []


def test_outcomes_are_yielded_one_upload_at_a_time(standin, workdir):
    list_id = standin.add_list("Lazy")
    bing = make_bing(standin, workdir, max_rows_per_file=2)
    uploads = bing.upload(list_id, "Add", frame(HASHES[:4]))
    assert standin.calls == []  # nothing sent before the caller asks
    first = next(uploads)
    assert standin.calls.count("UploadFile") == 1
    assert standin.lists()[list_id]["members"] == set(first.sent.get_column("email_sha256"))
    uploads.close()  # the caller stops (e.g. a crash): nothing else is sent, nothing left behind
    assert standin.calls.count("UploadFile") == 1
    assert list(workdir.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# Result files: Microsoft's real ones and ours, through the same parser


def test_parse_real_invalid_list_result():
    result = parse_upload_result(FIXTURES / "upload-result-invalid-list.csv")
    assert result.list_errors == [(819689004, 4835, "InvalidAudienceId")]
    assert result.lists[0].action == "Add"
    assert result.rejected.select("email_sha256", "error_code", "error_message").rows() == [
        (
            "44f0903642c86b7115a2cbd4eae37b314b510006851bb417de341f245d6ccc9a",
            8000,
            "InvalidCustomerListId",
        ),
        (
            "74fd292fc5ae64b54e1ab320fc31ef6ea9ece2ea581c0cccfc8db6fce69a1650",
            8000,
            "InvalidCustomerListId",
        ),
        (
            "d976a8660e86095cb7c5bf87f54f0026b66afebce36d2a50de2a97fec7f270d3",
            8000,
            "InvalidCustomerListId",
        ),
    ]
    assert set(result.rejected.get_column("list_id")) == {819689004}


@pytest.mark.parametrize(
    "name", ["upload-result-email-not-hashed.csv", "upload-result-email-not-hashed.zip"]
)
def test_parse_real_email_not_hashed_result(name, tmp_path):
    result = parse_upload_result(FIXTURES / name, tmp_path)
    assert result.lists == ()
    assert result.rejected.select("email_sha256", "error_code", "error_message").rows() == [
        ("abc@gmail.com", 8004, "EmailMustBeHashed"),
        ("def@gmail.com", 8004, "EmailMustBeHashed"),
    ]
    assert result.rejected.get_column("list_id").to_list() == [817292202, 817292202]
    assert list(tmp_path.iterdir()) == []  # the extracted copy is gone


# ------------------------------------------------------------------------------------------------
# Faults


TRANSIENT_FAULTS = [
    pytest.param({"kind": "http_error", "status": 500}, "GetBulkUploadUrl", id="500-any"),
    pytest.param(
        {"kind": "http_error", "status": 503, "operation": "GetBulkUploadStatus"},
        "GetBulkUploadStatus",
        id="503-status",
    ),
    pytest.param(
        {"kind": "http_error", "status": 503, "operation": "UploadFile"},
        "UploadFile",
        id="503-post",
    ),
    pytest.param(
        {"kind": "http_error", "status": 500, "operation": "DownloadFile"},
        "DownloadFile",
        id="500-result",
    ),
    pytest.param({"kind": "reset"}, "GetBulkUploadUrl", id="reset-url"),
    pytest.param({"kind": "reset", "operation": "UploadFile"}, "UploadFile", id="reset-post"),
    pytest.param(
        {"kind": "reset", "operation": "GetBulkUploadStatus"},
        "GetBulkUploadStatus",
        id="reset-status",
    ),
    pytest.param({"kind": "reset", "operation": "DownloadFile"}, "DownloadFile", id="reset-result"),
    pytest.param(
        {"kind": "delay", "seconds": 1.0, "operation": "GetBulkUploadUrl"},
        "GetBulkUploadUrl",
        id="slow-soap",
    ),
    pytest.param(
        {"kind": "delay", "seconds": 1.0, "operation": "UploadFile"}, "UploadFile", id="slow-post"
    ),
    pytest.param(
        {"kind": "delay", "seconds": 1.0, "operation": "DownloadFile"},
        "DownloadFile",
        id="slow-result",
    ),
    pytest.param({"kind": "throttle", "code": 117}, "GetBulkUploadStatus", id="throttle-117"),
    pytest.param({"kind": "throttle", "code": 4204}, "GetBulkUploadUrl", id="throttle-4204"),
    pytest.param({"kind": "upload_failed"}, "GetBulkUploadUrl", id="status-failed"),
    pytest.param({"kind": "pending", "polls": 3}, "GetBulkUploadStatus", id="slow-processing"),
]


@pytest.mark.parametrize(("fault", "retried"), TRANSIENT_FAULTS)
def test_transient_faults_are_retried(standin, workdir, fault, retried):
    list_id = standin.add_list("Flaky")
    retry = RetryPolicy(
        max_attempts=3, base_delay=0.001, max_delay=0.01, upload_timeout=0.5, request_timeout=0.5
    )
    bing = make_bing(standin, workdir, retry=retry)
    standin.inject(**fault)

    (outcome,) = upload_all(bing, list_id, "Add", HASHES[:3])

    assert outcome.rejected.is_empty()
    assert standin.lists()[list_id]["members"] == set(HASHES[:3])
    assert standin.calls.count(retried) >= 2
    assert standin.faults() == []
    assert list(workdir.iterdir()) == []


def test_transient_faults_in_lookup_and_create(standin, workdir):
    bing = make_bing(standin, workdir)
    standin.inject(kind="http_error", status=503, operation="DownloadCampaignsByAccountIds")
    standin.inject(kind="throttle", code=117, operation="GetBulkDownloadStatus")
    standin.inject(kind="reset", operation="DownloadFile")
    assert bing.find_lists() == []

    standin.inject(kind="reset", operation="UploadFile")  # never reached Microsoft
    standin.inject(kind="upload_failed")  # reached it, but nothing was applied
    standin.inject(kind="http_error", status=503, operation="GetBulkUploadStatus")
    list_id = bing.create_list("Created once", "", -1, "client-1")
    assert list(standin.lists()) == [list_id]
    assert list(workdir.iterdir()) == []


def test_create_that_did_happen_is_not_repeated(standin, workdir):
    """A create whose result file is lost is found by name instead of being sent again."""
    retry = RetryPolicy(max_attempts=2, base_delay=0.001, max_delay=0.01, request_timeout=2.0)
    bing = make_bing(standin, workdir, retry=retry)
    standin.inject(kind="http_error", status=503, operation="DownloadFile", count=2)
    list_id = bing.create_list("Exactly one", "", -1, "client-2")
    assert list(standin.lists()) == [list_id]
    assert standin.calls.count("GetBulkUploadUrl") == 1


def test_transient_fault_that_persists_raises_transient(standin, workdir):
    list_id = standin.add_list("Down")
    bing = make_bing(standin, workdir)
    standin.inject(kind="http_error", status=503, count=None)
    with pytest.raises(TransientBingError) as info:
        upload_all(bing, list_id, "Add", HASHES[:2])
    assert "HTTP 503" in str(info.value)
    assert standin.calls == ["GetBulkUploadUrl"] * FAST.max_attempts
    assert list(workdir.iterdir()) == []


def test_processing_beyond_the_timeout_is_left_for_the_next_run(standin, workdir):
    list_id = standin.add_list("Slow")
    retry = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01, upload_timeout=0.05)
    bing = make_bing(standin, workdir, retry=retry, poll_interval_ms=20)
    standin.inject(kind="pending", polls=1000)
    with pytest.raises(TransientBingError) as info:
        upload_all(bing, list_id, "Add", HASHES[:2])
    assert info.value.retry_in_run is False
    assert standin.calls.count("UploadFile") == 1  # not sent again
    assert list(workdir.iterdir()) == []


def test_terms_not_accepted_is_permanent(standin, workdir):
    list_id = standin.add_list("Terms")
    bing = make_bing(standin, workdir)
    standin.inject(kind="terms_not_accepted", count=None)
    with pytest.raises(PermanentBingError) as info:
        upload_all(bing, list_id, "Add", HASHES[:2])
    assert info.value.code == 8003
    assert "accept" in info.value.message.lower()
    with pytest.raises(PermanentBingError) as info:
        bing.create_list("New", "", -1, "c")
    assert info.value.code == 8003
    assert standin.calls.count("UploadFile") == 2  # neither retried
    assert list(workdir.iterdir()) == []


def test_sandbox_environment_works_against_the_same_endpoint(standin, workdir):
    settings = BingSettings.from_env(env_for(standin, BING_ENVIRONMENT="sandbox"))
    bing = Bing(settings, workdir, retry=FAST, poll_interval_ms=5)
    list_id = standin.add_list("Sandbox list", membership_duration=30)
    assert bing.find_lists() == [RemoteList(list_id, "Sandbox list", 30)]


def test_bad_credentials_are_permanent(standin, workdir):
    settings = BingSettings.from_env(env_for(standin, BING_ACCESS_TOKEN="expired-or-wrong"))
    bing = Bing(settings, workdir, retry=FAST, poll_interval_ms=5)
    with pytest.raises(PermanentBingError) as info:
        bing.find_lists()
    assert info.value.code == 105
    assert "BING_DEVELOPER_TOKEN" in info.value.message
    assert standin.calls == ["DownloadCampaignsByAccountIds"]


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


# ------------------------------------------------------------------------------------------------
# No secrets or PII in messages and logs


def test_error_text_is_scrubbed():
    err = PermanentBingError(
        "step",
        f"bad {HASHES[0]} for Person@Example.com at https://bulk.example/u?sig=abc "
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc123",
        8004,
    )
    text = str(err)
    assert HASHES[0] not in text and "Example.com" not in text and "sig=" not in text
    assert "eyJhbGci" not in text
    assert text.startswith("step: bad <hash> for <email> at <url>")
    assert err.code == 8004 and isinstance(err, BingError)
    # Long symbolic error names are not mistaken for tokens.
    assert "BulkServiceNoMoreCallsPermittedForTheTimePeriod" in str(
        TransientBingError("s", "BulkServiceNoMoreCallsPermittedForTheTimePeriod")
    )


def test_logs_carry_no_hash_token_or_url(standin, workdir, caplog):
    caplog.set_level(logging.DEBUG, logger="sync.bing")
    list_id = standin.add_list("Logged")
    bing = make_bing(standin, workdir, max_rows_per_file=2)
    standin.inject(kind="throttle", code=117)
    standin.inject(kind="reset", operation="UploadFile")
    standin.inject(kind="reject_rows", hashes=[HASHES[0]])
    upload_all(bing, list_id, "Add", [*HASHES[:3], "someone@example.com"])
    text = caplog.text
    assert "retrying" in text and "rejected" in text
    assert not re.search(r"[0-9a-fA-F]{64}", text)
    assert "@example.com" not in text and TOKEN not in text
    assert "http://" not in text and str(list_id) not in text


# ------------------------------------------------------------------------------------------------
# bulkfile: fast upload files, read back by the SDK


def read_back(path: Path) -> list:
    with BulkFileReader(str(path), result_file_type=ResultFileType.upload) as reader:
        return list(reader)


@pytest.mark.parametrize("action", ["Add", "Remove"])
def test_member_files_round_trip_through_the_sdk_reader(tmp_path, action):
    hashes = [*HASHES, 'odd "text", with comma']
    paths = bulkfile.write_member_files(tmp_path, 810000123, action, frame(hashes), max_rows=3)
    assert len(paths) == 3
    seen: list[str] = []
    for path in paths:
        entities = read_back(path)
        head, items = entities[0], entities[1:]
        assert isinstance(head, BulkCustomerList)
        assert (head.customer_list.Id, head.action_type) == (810000123, action)
        assert 1 <= len(items) <= 3
        for entity in items:
            assert isinstance(entity, BulkCustomerListItem)
            assert (entity.parent_id, entity.sub_type) == (810000123, "Email")
            seen.append(entity.text)
    assert seen == hashes


def test_member_file_bytes(tmp_path):
    path = bulkfile.write_member_file(tmp_path / "f.csv", 42, "Add", frame(HASHES[:1]))
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf" + ",".join(bulkfile.SHORT_HEADER).encode() + b"\r\n")
    lines = data[3:].split(b"\r\n")
    assert lines[1] == b"Format Version,,,,,,6.0,,,,,,,"
    assert lines[2] == b"Customer List,,42,,,,,,,,Add,,,"
    assert lines[3] == f"Customer List Item,,,42,,,,,,,,Email,{HASHES[0]},".encode()
    assert lines[4:] == [b""]
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_files_stay_under_the_byte_cap(tmp_path):
    cap = 2_000
    paths = bulkfile.write_member_files(tmp_path, 7, "Add", frame(HASHES * 5), 1000, max_bytes=cap)
    assert len(paths) > 1
    assert all(p.stat().st_size <= cap for p in paths)
    texts = [e.text for p in paths for e in read_back(p) if isinstance(e, BulkCustomerListItem)]
    assert texts == HASHES * 5


def test_create_list_file_round_trip(tmp_path):
    path = bulkfile.write_create_list_file(
        tmp_path / "c.csv",
        name='CIO, "quoted" list',
        description="made by sync",
        membership_duration=-1,
        client_id="cio:cart",
    )
    (entity,) = read_back(path)
    audience = entity.customer_list
    assert (audience.Id, audience.Name, audience.Description) == (
        -1,
        'CIO, "quoted" list',
        "made by sync",
    )
    assert (audience.MembershipDuration, audience.Scope, entity.client_id) == (
        -1,
        "Customer",
        "cio:cart",
    )
    assert (entity.status, entity.action_type) == ("Active", "Add")


def test_bulkfile_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="null"):
        bulkfile.split_hashes(pl.Series("email_sha256", [HASHES[0], None]), 1, 10)
    with pytest.raises(ValueError):
        bulkfile.split_hashes(pl.DataFrame({"a": ["x"], "b": ["y"]}), 1, 10)
    with pytest.raises(ValueError):
        bulkfile.split_hashes(frame(HASHES), 1, 0)
    with pytest.raises(ValueError):
        bulkfile.write_member_file(tmp_path / "x.csv", 1, "Upsert", frame(HASHES))
    with pytest.raises(ValueError):
        bulkfile.write_create_list_file(
            tmp_path / "x.csv", name="n", description="", membership_duration=500, client_id=""
        )
    assert bulkfile.split_hashes(frame([]), 1, 10) == []


def test_the_sdk_still_offers_the_internals_the_sync_relies_on(monkeypatch):
    """sync/bing/sdk.py is the only user of the SDK's private parts: an upgrade that moves
    one fails here, by name, not in production."""
    assert sdk.check() == []
    monkeypatch.setattr(sdk, "RELIED_ON", ((BulkFileReader, "_gone", ("x",)),))
    assert sdk.check() == ["BulkFileReader._gone is gone"]
