"""Driving the stand-in with the real bingads SDK directly (no sync code involved): a
BulkServiceManager pointed at it, the entities of customer lists and their members, short-form
upload files sent through the SDK's own upload, and the raw rows of a result file."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
from bingads.authorization import AuthorizationData, OAuthDesktopMobileAuthCodeGrant, OAuthTokens
from bingads.service_client import _CAMPAIGN_OBJECT_FACTORY_V13
from bingads.v13.bulk import BulkServiceManager, FileUploadParameters
from bingads.v13.bulk.entities.audiences import BulkCustomerList, BulkCustomerListItem

from sync import bulkfile
from sync.standin import StandIn
from tests.harness.bing import TOKEN, sha

HASHES = [sha(f"person{i}@example.com") for i in range(6)]


def manager(server: StandIn, workdir: Path, token: str = TOKEN) -> BulkServiceManager:
    """The SDK's bulk manager for `server`, polling every 10 ms (1 s by default)."""
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
    """A customer list to create, under the negative reference id its items point at."""
    audience = _CAMPAIGN_OBJECT_FACTORY_V13.create("CustomerList")
    audience.Id = ref
    audience.Name = name
    audience.Description = "made by a test"
    audience.Scope = "Customer"
    audience.MembershipDuration = duration
    return BulkCustomerList(customer_list=audience, action_type="Add")


def list_entity(list_id: int, action: str) -> BulkCustomerList:
    """The head row of a member upload: which existing list, which action."""
    audience = _CAMPAIGN_OBJECT_FACTORY_V13.create("CustomerList")
    audience.Id = list_id
    return BulkCustomerList(customer_list=audience, action_type=action)


def item(parent: int, text: str) -> BulkCustomerListItem:
    """One email-hash member row of list `parent`."""
    return BulkCustomerListItem(parent_id=parent, sub_type="Email", text=text)


def hashes_series(hashes: list[str]) -> pl.Series:
    """Hashes as the column sync.bulkfile writes from."""
    return pl.Series("email_sha256", hashes, dtype=pl.String)


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


def raw_rows(path: Path) -> list[dict[str, str]]:
    """A result file's rows as CSV dicts, empty cells left out (to compare with Microsoft's)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [{k: v for k, v in row.items() if v} for row in csv.DictReader(fh)]
