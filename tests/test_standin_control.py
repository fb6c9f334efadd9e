"""The Bulk v13 stand-in's HTTP control API, its state file across restarts, its command line and
its logs (no hashes), driven by the real bingads SDK where it serves uploads."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from sync.standin import StandIn
from tests.harness.sdk import HASHES, manager, upload_short_file

# The SDK's own poll loop (used here directly) waits 1 s per poll by default.
pytestmark = pytest.mark.usefixtures("fast_sdk_polling")


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
