"""Run the real `sync` CLI against a built warehouse and the loopback Bing stand-in.

Nothing of ours is mocked: the CLI, the warehouse module, the state, the runner and the
real bingads SDK all run; only Microsoft is replaced, by sync.standin.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from click.testing import CliRunner

from sync.cli import main
from tests.harness.dbt import Build

TOKEN = "standin-access-token"
# The `sync` console script of this environment (installed by scripts/setup), for tests that
# need the sync as a real process: to kill it, or to run dbt beside it.
SYNC = Path(sys.executable).with_name("sync")
# Real result files served by Microsoft's Bulk service (copied from shared/fixtures/bing).
BING_FIXTURES = Path(__file__).parents[1] / "fixtures" / "bing"
# Every line the sync printed or logged in this test session; scanned for identifiers at the
# end of the session (conftest.py), so a leak anywhere fails the suite.
OUTPUTS: list[str] = []
HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass
class SyncResult:
    exit_code: int
    doc: dict[str, Any]
    stderr: str

    def lists(self) -> dict[str, dict[str, Any]]:
        return {item["audience"]: item for item in self.doc.get("lists", [])}


def sync_env(build: Build, bulk_url: str, workdir: str) -> dict[str, str]:
    return {
        **build.env(),
        "BING_DEVELOPER_TOKEN": "dev-token",
        "BING_CUSTOMER_ID": "1234",
        "BING_ACCOUNT_ID": "5678",
        "BING_ACCESS_TOKEN": TOKEN,
        "BING_BULK_SERVICE_URL": bulk_url,
        "SYNC_POLL_INTERVAL_MS": "20",
        "SYNC_WORK_DIR": workdir,
    }


def sync_command(build: Build, *args: str) -> list[str]:
    """`sync <args> --json` as a process; fails clearly if the console script is missing."""
    assert SYNC.exists(), f"no `sync` console script at {SYNC}: run scripts/setup"
    return [str(SYNC), *args, "--json", "--project-dir", str(build.project),
            "--target-path", str(build.target_path)]  # fmt: skip


def run_sync(build: Build, env: Mapping[str, str | None], *args: str) -> SyncResult:
    """`sync <args> --json` in-process; returns exit code, the JSON document and stderr."""
    cli = [
        "-v",
        *args,
        "--json",
        "--project-dir",
        str(build.project),
        "--target-path",
        str(build.target_path),
    ]
    result = CliRunner().invoke(main, cli, env=env, catch_exceptions=False)
    OUTPUTS.extend([result.stdout, result.stderr])
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return SyncResult(result.exit_code, doc, result.stderr)


def audience_hashes(build: Build, audience: str) -> set[str]:
    with duckdb.connect(str(build.database)) as con:
        return {r[0] for r in con.execute(f"select email_sha256 from {audience}").fetchall()}


def state_members(build: Build, list_id: int) -> set[str]:
    with duckdb.connect(str(build.database)) as con:
        rows = con.execute(
            "select email_sha256 from sync_state.members where list_id = ?", [list_id]
        ).fetchall()
    return {r[0] for r in rows}


def mismatches(build: Build, bing: Any, lists: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Audiences whose Bing list, table and state disagree (the sync's core invariant)."""
    remote = bing.lists()
    out = []
    for audience, item in lists.items():
        table = audience_hashes(build, audience)
        at_bing = remote[item["list_id"]]["members"]
        if not at_bing == table == state_members(build, item["list_id"]):
            out.append(audience)
    return out


def sql(build: Build, statement: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(build.database)) as con:
        return con.execute(statement, params or []).fetchall()


def enter_ltv_high(build: Build, new_hash: str) -> None:
    """A new person enters the high-LTV audience, as the next `dbt build` would add them."""
    sql(
        build,
        "insert into audience_ltv_high values (?, 'new', 'high', timestamp '2026-11-28 12:00')",
        [new_hash],
    )


def next_build(build: Build, new_hash: str) -> None:
    """The next `dbt build` as the sync tests play it: one person (the first recent purchaser)
    leaves the suppression list, and `new_hash` enters high LTV."""
    gone = sorted(audience_hashes(build, "audience_recent_purchaser_0_7d"))[0]
    sql(build, "delete from audience_recent_purchaser_0_7d where email_sha256 = ?", [gone])
    enter_ltv_high(build, new_hash)


EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def identifiers_in(text: str) -> list[str]:
    """64-hex hashes and email addresses found in `text`."""
    return HEX64.findall(text) + EMAIL.findall(text)


def no_identifiers(text: str) -> bool:
    """True when the text holds no 64-hex hash and no email address."""
    return not identifiers_in(text)


def env_without(env: dict[str, str], *names: str) -> dict[str, str | None]:
    """The environment with `names` unset (CliRunner removes variables set to None)."""
    out: dict[str, str | None] = dict(env)
    for name in names:
        out[name] = None
    return out
