"""Faults at Microsoft, through the whole CLI: transient ones are retried within the run,
permanent ones fail their list clearly, and one list failing does not stop the others."""

from __future__ import annotations

from typing import Any

import pytest

from sync.standin import StandIn
from tests.harness.dbt import AUDIENCES, Build
from tests.harness.sync import (
    mismatches,
    no_identifiers,
    run_sync,
    sql,
)

FAST = ("--retry-max-delay", "0.05", "--request-timeout", "2")


def in_sync(build: Build, bing: StandIn, lists: dict[str, Any]) -> bool:
    return not mismatches(build, bing, lists)


TRANSIENT = [
    ("http_500", dict(kind="http_error", status=500, count=3)),
    ("http_503_on_upload", dict(kind="http_error", status=503, count=2, operation="UploadFile")),
    ("connection_reset", dict(kind="reset", count=2)),
    ("reset_on_result_download", dict(kind="reset", count=1, operation="DownloadFile")),
    ("timeout", dict(kind="delay", seconds=3, count=1, operation="GetBulkUploadStatus")),
    ("throttle_117", dict(kind="throttle", code=117, count=2)),
    ("throttle_4204", dict(kind="throttle", code=4204, count=2)),
    ("upload_failed", dict(kind="upload_failed", count=1)),
    ("slow_processing", dict(kind="pending", polls=5, count=1)),
]


@pytest.mark.parametrize(("name", "fault"), TRANSIENT, ids=[t[0] for t in TRANSIENT])
def test_transient_faults_are_retried_within_the_run(
    warehouse: Build, bing: StandIn, env: dict[str, str], name: str, fault: dict[str, Any]
) -> None:
    bing.inject(**fault)
    result = run_sync(warehouse, env, "run", *FAST)
    assert result.exit_code == 0, result.stderr
    assert in_sync(warehouse, bing, result.lists())
    assert len(bing.lists()) == len(AUDIENCES)  # no list created twice by a retry
    assert (
        all(f["count"] == 0 for f in bing.faults() if f.get("count") is not None)
        or not bing.faults()
    )
    assert no_identifiers(result.stderr)


def test_faults_beyond_the_retry_budget_fail_the_list_and_the_next_run_converges(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    first = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")
    assert first.exit_code == 0
    bing.inject(kind="http_error", status=503, count=None, operation="GetBulkUploadUrl")
    sql(warehouse, "insert into audience_ltv_high values (?, 'n', 'high', now())", ["cd" * 32])
    failed = run_sync(warehouse, env, "run", *FAST, "--max-attempts", "3", "-s", "ltv_high")
    assert failed.exit_code == 1
    message = failed.lists()["audience_ltv_high"]["message"]
    assert "CIO__LTV_High__NoOtherState" in message and "503" in message
    bing.clear_faults()
    again = run_sync(warehouse, env, "run", *FAST, "-s", "ltv_high")
    assert again.exit_code == 0
    assert in_sync(warehouse, bing, again.lists())


def test_terms_not_accepted_fails_that_list_clearly_and_others_sync(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    first = run_sync(warehouse, env, "run", *FAST)
    lapsed_id = first.lists()["audience_lapsed_90d_plus"]["list_id"]
    for audience, new in (("audience_lapsed_90d_plus", "1d"), ("audience_ltv_high", "2e")):
        sql(warehouse, f"insert into {audience} values (?, 'n', 'high', now())", [new * 32])
    bing.inject(kind="terms_not_accepted", list_ids=[lapsed_id], count=None)
    result = run_sync(warehouse, env, "run", *FAST)
    assert result.exit_code == 1
    lapsed = result.lists()["audience_lapsed_90d_plus"]
    assert lapsed["status"] == "failed"
    assert "8003" in lapsed["message"] and "CIO__Lapsed_90d-plus__NoPurchase" in lapsed["message"]
    assert "terms" in lapsed["message"].lower()
    assert result.lists()["audience_ltv_high"]["status"] == "in_sync"
    assert no_identifiers(result.stderr)


def test_bad_credentials_fail_clearly(warehouse: Build, bing: StandIn, env: dict[str, str]) -> None:
    result = run_sync(warehouse, {**env, "BING_ACCESS_TOKEN": "wrong-token"}, "run", *FAST)
    assert result.exit_code == 1
    messages = " ".join(v["message"] or "" for v in result.lists().values())
    assert "105" in messages
    assert "wrong-token" not in result.stderr + messages
    assert bing.lists() == {}


def test_an_unknown_pinned_list_id_fails_that_list(
    warehouse: Build, bing: StandIn, env: dict[str, str]
) -> None:
    manifest = warehouse.target_path / "manifest.json"
    text = manifest.read_text().replace(
        '"list_name": "CIO__LTV_High__NoOtherState"',
        '"list_name": "CIO__LTV_High__NoOtherState", "list_id": 999999',
    )
    manifest.write_text(text)
    result = run_sync(warehouse, env, "run", *FAST, "--allow-stale-manifest")
    assert result.exit_code == 1
    ltv = result.lists()["audience_ltv_high"]
    # found by the run's check of the lists at Microsoft, before anything is sent to it
    assert ltv["status"] == "failed" and ltv["sent_adds"] == 0
    assert "pinned list 999999 (meta.bing.list_id) no longer exists at Microsoft" in ltv["message"]
    assert sum(v["status"] == "in_sync" for v in result.lists().values()) == len(AUDIENCES) - 1
