"""sync.bing's list lookups, creates and member uploads, the result files they return (Microsoft's
real ones and ours, through the same parser), and no secret or PII in its messages and logs;
against the stand-in through the real bingads SDK."""

from __future__ import annotations

import logging
import re

import polars as pl
import pytest

from sync.bing import (
    BingError,
    PermanentBingError,
    RemoteList,
    TransientBingError,
    parse_upload_result,
)
from tests.harness.bing import HASHES, TOKEN, frame, make_bing, upload_all
from tests.harness.sync import BING_FIXTURES as FIXTURES

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
