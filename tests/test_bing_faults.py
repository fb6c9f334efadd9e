"""sync.bing under faults: what it retries (HTTP errors, resets, delays, throttling, failed or
slow processing) and what is permanent, against the stand-in through the real bingads SDK."""

from __future__ import annotations

import pytest

from sync.bing import (
    Bing,
    BingSettings,
    PermanentBingError,
    RemoteList,
    RetryPolicy,
    TransientBingError,
)
from tests.harness.bing import FAST, HASHES, env_for, make_bing, upload_all

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
