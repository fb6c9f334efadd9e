"""The Bulk v13 stand-in's uploads and downloads, driven by the real bingads SDK (no sync code
involved): entity and file uploads, result files that mirror Microsoft's, customer-list downloads."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from bingads.v13.bulk import DownloadParameters, EntityUploadParameters
from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem

from tests.harness.bing import read_upload_file, sha
from tests.harness.sdk import (
    HASHES,
    item,
    list_entity,
    manager,
    new_list_entity,
    raw_rows,
    upload_short_file,
)
from tests.harness.sync import BING_FIXTURES as FIXTURES

# The SDK's own poll loop (used here directly) waits 1 s per poll by default.
pytestmark = pytest.mark.usefixtures("fast_sdk_polling")


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
    entities = read_upload_file(result)
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
    entities = read_upload_file(result)
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
