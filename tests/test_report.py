"""`sync report`: the HTML page made from real sync state, checked for its numbers, for
identifiers, and drawn by a real headless Chromium.

The state comes from two real `sync run`s (real CLI, DuckDB, bingads SDK; the loopback
stand-in plays Microsoft) with rejected rows and audience changes between them. The dbt
snapshot of audience_states is written with plain SQL to simulate three builds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from PIL import Image

from sync.project import load_audiences, load_project, select_audiences
from sync.report import PALETTE, build_report, report_command, write_report
from sync.standin import StandIn
from sync.state import State
from sync.warehouse import Warehouse
from tests.harness.dbt import AUDIENCES, ROOT, Build
from tests.harness.sync import (
    HEX64,
    OUTPUTS,
    TOKEN,
    audience_hashes,
    enter_ltv_high,
    identifiers_in,
    next_build,
    run_sync,
    sql,
    sync_env,
)

CHROMIUM = Path(os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"))
SUPPRESS = "CIO__Suppress__Purchased_0-7d"
LTV = "CIO__LTV_High__NoOtherState"
LAPSED = "CIO__Lapsed_90d-plus__NoPurchase"
NEW_HASH = "cd" * 32
BUILDS = ("2026-11-26 06:00:00", "2026-11-27 06:00:00", "2026-11-28 06:00:00")


# ---------------------------------------------------------------------------------- helpers


class _Tables(HTMLParser):
    """Every <table id=...> of a page as rows of cell texts (captions left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._caption = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._id = dict(attrs).get("id") or f"table-{len(self.tables)}"
            self.tables[self._id] = []
        elif tag == "caption":
            self._caption = True
        elif tag == "tr" and self._id:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption":
            self._caption = False
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._id and self._row is not None:
            self.tables[self._id].append(self._row)
            self._row = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._caption:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def by_row(table: list[list[str]]) -> dict[str, dict[str, str]]:
    """{first cell: {column header: cell}} of a table whose first row is its header."""
    header, *rows = table
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def number(text: str) -> int:
    return int(text.replace(",", ""))


def open_inputs(build: Build) -> tuple[Warehouse, list]:
    """The warehouse and audiences exactly as the CLI's Context finds them."""
    old = {k: os.environ.get(k) for k in build.env()}
    os.environ.update(build.env())
    try:
        project = load_project(str(ROOT), str(build.profiles_dir), None, str(build.target_path))
        audiences = select_audiences(load_audiences(project, allow_stale=True), ())
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    wh = Warehouse(duckdb.connect(str(build.database)), "warehouse")
    State(wh, "sync_state").ensure()
    return wh, audiences


def write_snapshot(build: Build) -> dict[tuple[str, str], int]:
    """An audience_states_snapshot as `dbt build` leaves it after three builds; returns the
    expected (from, to) people counts between the last two.

    Build 1 has everyone in audience_states; build 2 adds one person; build 3 moves two
    people to recent_purchaser_0_7d, loses one and gains one (dbt_valid_to is set on the
    rows that ended, as `hard_deletes: invalidate` does)."""
    b1, b2, b3 = BUILDS
    people = sql(build, "select person_id, state from audience_states order by person_id")
    first = {s: sorted(p for p, st in people if st == s) for _, s in people}
    mover_ltv, mover_cart = first["ltv_high"][0], first["cart_abandon_0_1d"][0]
    leaver = first["purchased_once_21_45d"][0]
    statements = [
        f"""create or replace table audience_states_snapshot as
        select *, md5(person_id || '{b1}') as dbt_scd_id, timestamp '{b1}' as dbt_updated_at,
            timestamp '{b1}' as dbt_valid_from, cast(null as timestamp) as dbt_valid_to
        from audience_states""",
        f"""insert into audience_states_snapshot by name
        select 'x-late' as person_id, 'ltv_high' as state, 6 as state_priority,
            timestamp '{b2}' as dbt_valid_from, timestamp '{b2}' as dbt_updated_at""",
        f"""update audience_states_snapshot set dbt_valid_to = timestamp '{b3}'
        where person_id in ('{mover_ltv}', '{mover_cart}', '{leaver}')""",
        f"""insert into audience_states_snapshot by name
        select person_id, 'recent_purchaser_0_7d' as state, 1 as state_priority,
            timestamp '{b3}' as dbt_valid_from, timestamp '{b3}' as dbt_updated_at
        from audience_states where person_id in ('{mover_ltv}', '{mover_cart}')
        union all select 'x-new', 'cart_abandon_high_aov_0_1d', 2, timestamp '{b3}',
            timestamp '{b3}'""",
    ]
    for statement in statements:
        sql(build, statement)
    expected: dict[tuple[str, str], int] = {}
    for person, state in [*people, ("x-late", "ltv_high")]:
        to = {mover_ltv: "recent_purchaser_0_7d", mover_cart: "recent_purchaser_0_7d"}.get(
            person, "none" if person == leaver else state
        )
        expected[(state, to)] = expected.get((state, to), 0) + 1
    expected[("none", "cart_abandon_high_aov_0_1d")] = 1
    return expected


@dataclass
class Synced:
    build: Build
    page: str
    path: Path
    transitions: dict[tuple[str, str], int]
    sizes: dict[str, tuple[int, int]]  # list name -> members after run 1, after run 2


@pytest.fixture(scope="module")
def synced(demo_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """Two real runs with rejected rows and changes between them, then `sync report`.

    One private copy of the demo warehouse for the module (as the `warehouse` fixture makes
    per test), so the syncs run once for every test here."""
    tmp = tmp_path_factory.mktemp("report")
    build = Build(tmp, tmp / "warehouse.duckdb", demo_build.profiles_dir, tmp / "target")
    shutil.copy(demo_build.database, build.database)
    shutil.copytree(demo_build.target_path, build.target_path)
    tables_of = {SUPPRESS: "audience_recent_purchaser_0_7d", LTV: "audience_ltv_high"}
    tables_of[LAPSED] = "audience_lapsed_90d_plus"
    with StandIn(token=TOKEN) as bing:
        env = sync_env(build, bing.url, str(tmp / "work"))
        # rejected in their own list: hashes in no other list (the suppression lists overlap)
        elsewhere = {
            h for a in AUDIENCES if a not in tables_of.values() for h in audience_hashes(build, a)
        }
        ltv = sorted(audience_hashes(build, "audience_ltv_high") - elsewhere)
        lapsed = sorted(audience_hashes(build, "audience_lapsed_90d_plus") - elsewhere)
        bing.inject("reject_rows", hashes=ltv[:2], code=8004)
        bing.inject("reject_rows", hashes=lapsed[:1], code=8002)
        before = {name: len(audience_hashes(build, t)) for name, t in tables_of.items()}
        assert run_sync(build, env, "run").exit_code == 2
        # the next build: one person leaves the suppression list, a new one enters high LTV
        next_build(build, NEW_HASH)
        second = run_sync(build, env, "run")
        assert second.exit_code == 0, second.stderr
        after = {name: len(audience_hashes(build, t)) for name, t in tables_of.items()}
    transitions = write_snapshot(build)
    path = tmp / "out" / "sync-report.html"
    result = CliRunner().invoke(
        report_command,
        ["-o", str(path), "--project-dir", str(ROOT), "--target-path", str(build.target_path)],
        env=build.env(),
        catch_exceptions=False,
    )
    OUTPUTS.extend([result.stdout, result.stderr])
    assert result.exit_code == 0, result.output
    page = path.read_text(encoding="utf-8")
    OUTPUTS.append(page)  # the session's leak scan reads the page too
    run1 = {SUPPRESS: before[SUPPRESS], LTV: before[LTV] - 2, LAPSED: before[LAPSED] - 1}
    sizes = {name: (run1[name], after[name]) for name in tables_of}
    yield Synced(build, page, path, transitions, sizes)


# ---------------------------------------------------------------------------------- tests


def test_report_numbers_match_the_runs(synced: Synced) -> None:
    found = tables(synced.page)
    lists = by_row(found["table-lists"])
    assert len(lists) == len(AUDIENCES)
    assert lists[SUPPRESS]["Role"] == "exclude" and lists[LTV]["Role"] == "target"
    for name, (_, now) in synced.sizes.items():
        assert number(lists[name]["Confirmed members"]) == now
        assert number(lists[name]["List id"]) > 0
    assert synced.sizes[SUPPRESS] == (9, 8)
    # from audience_coverage: st21, a recent purchaser, has no valid email
    assert lists[SUPPRESS]["Email coverage"] == "90% of 10"
    assert lists[LTV]["Email coverage"] == "100% of 4"

    sizes = by_row(found["table-sizes"])
    assert list(sizes) == ["1", "2"]
    for name, (first, second) in synced.sizes.items():
        assert (number(sizes["1"][name]), number(sizes["2"][name])) == (first, second), name

    changes = by_row(found["table-changes"])
    assert changes["1"][SUPPRESS] == "+9 / \u22120"
    assert changes["2"][SUPPRESS] == "+0 / \u22121"
    assert changes["2"][LTV] == "+3 / \u22120"  # the new member and the two rejected before
    assert changes["2"][LAPSED] == "+1 / \u22120"

    errors = {(r[0], r[2]): (r[1], number(r[3])) for r in found["table-errors"][1:]}
    assert errors == {
        ("8002", LAPSED): ("CustomerListItemSubTypeNotSupported", 1),
        ("8004", LTV): ("EmailMustBeHashed", 2),
    }

    matrix = by_row(found["table-transitions"])
    states = found["table-transitions"][0][1:-1]
    assert states[-1] == "none" and states[0] == "recent_purchaser_0_7d"
    got = {
        (f, t): number(matrix[f][t])
        for f in states
        for t in states
        if (f, t) != ("none", "none") and number(matrix[f][t])
    }
    assert got == synced.transitions
    assert "2026-11-27 06:00:00" in synced.page and "2026-11-28 06:00:00" in synced.page
    summary = re.search(r'id="transitions-summary">([^<]*)<', synced.page)
    assert summary and "2 changed state · 1 entered · 1 left" in summary.group(1)


def test_report_holds_no_identifier(synced: Synced) -> None:
    page = synced.page
    assert identifiers_in(page) == [] and not HEX64.search(page.lower())
    hashes = {r[0] for r in sql(synced.build, "select email_sha256 from sync_state.members")}
    hashes |= {r[0] for r in sql(synced.build, "select email_sha256 from sync_state.row_errors")}
    assert hashes and not any(h in page or h.upper() in page for h in hashes)
    people = {r[0] for r in sql(synced.build, "select person_id from audience_states_snapshot")}
    words = set(re.findall(r"[\w-]+", page))
    assert people and not people & words
    # self-contained: nothing to fetch (no URL, no external font, script, style or image)
    assert "http:" not in page and "https:" not in page and "@import" not in page
    refs = re.findall(r"url\(([^)]*)\)", page)
    assert refs and all(ref.startswith("#") for ref in refs)  # the page's own SVG paints
    assert re.search(r"<script[^>]*\bsrc=|<link\b|<img\b|<iframe\b", page) is None


def test_report_command_selects_lists_and_prints_json(synced: Synced, tmp_path: Path) -> None:
    path = tmp_path / "ltv.html"
    args = ["--json", "-s", "ltv_high", "-o", str(path), "--max-runs", "1"]
    args += ["--project-dir", str(ROOT), "--target-path", str(synced.build.target_path)]
    result = CliRunner().invoke(report_command, args, env=synced.build.env())
    OUTPUTS.extend([result.stdout, result.stderr])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "report" and Path(doc["path"]) == path.resolve()
    page = path.read_text(encoding="utf-8")
    assert doc["bytes"] == len(page.encode())
    lists = by_row(tables(page)["table-lists"])
    assert list(lists) == [LTV]
    sizes = by_row(tables(page)["table-sizes"])
    assert list(sizes) == ["1"] and number(sizes["1"][LTV]) == synced.sizes[LTV][1]
    assert "the last 1 of 2 runs" in page


def test_report_without_runs_or_snapshot_says_so(warehouse: Build, tmp_path: Path) -> None:
    sql(warehouse, "drop table if exists audience_states_snapshot")
    wh, audiences = open_inputs(warehouse)
    with wh:
        page = build_report(wh, "sync_state", audiences, None)
    write_report(page, tmp_path / "deep" / "report.html")
    assert (tmp_path / "deep" / "report.html").read_text(encoding="utf-8") == page
    assert page.count("No runs recorded yet") >= 3
    assert (
        'id="transitions-note"' in page
        and "No snapshot table main.audience_states_snapshot" in (page)
    )
    assert '<svg class="chart"' not in page
    assert len(by_row(tables(page)["table-lists"])) == len(AUDIENCES)


def test_report_shows_uploads_in_flight_and_parked_rows(warehouse: Build, tmp_path: Path) -> None:
    """What waits on Microsoft, with its age, and rows parked after too many rejections."""
    ltv = sorted(audience_hashes(warehouse, "audience_ltv_high"))
    with StandIn(token=TOKEN) as bing:
        env = sync_env(warehouse, bing.url, str(tmp_path / "work"))
        bing.inject("reject_rows", hashes=ltv[:1], code=8004, count=None)
        args = ("run", "-s", "ltv_high", "--max-row-attempts", "1")
        assert run_sync(warehouse, env, *args).exit_code == 2  # rejected, and parked at once
        enter_ltv_high(warehouse, NEW_HASH)
        bing.set_processing(seconds=600)
        assert run_sync(warehouse, env, *args, "--no-wait").exit_code == 0
    wh, audiences = open_inputs(warehouse)
    with wh:
        page = build_report(wh, "sync_state", audiences, None)
    OUTPUTS.append(page)
    found = tables(page)
    assert [row[:4] for row in found["table-in-flight"][1:]] == [[LTV, "Add", "1", "sent"]]
    assert found["table-in-flight"][1][4].endswith(" s")  # its age, just sent
    parked = found["table-parked"][1:]
    assert [row[:4] for row in parked] == [[LTV, "8004", "EmailMustBeHashed", "1"]]
    assert identifiers_in(page) == []


def test_a_build_in_which_people_only_left_is_a_build(warehouse: Build) -> None:
    """dbt_valid_to alone marks the last build when nobody entered or changed in it; a
    far-future dbt_valid_to (dbt's `dbt_valid_to_current`) means current, not a build."""
    b1, b2, _ = BUILDS
    sql(
        warehouse,
        f"""create or replace table audience_states_snapshot as
        select *, timestamp '{b1}' as dbt_valid_from,
            case when state = 'ltv_high' then timestamp '{b2}'
                else timestamp '9999-12-31' end as dbt_valid_to
        from audience_states""",
    )
    ltv = sql(warehouse, "select count(*) from audience_states where state = 'ltv_high'")[0][0]
    wh, audiences = open_inputs(warehouse)
    with wh:
        page = build_report(wh, "sync_state", audiences, "main.audience_states_snapshot")
    matrix = by_row(tables(page)["table-transitions"])
    assert number(matrix["ltv_high"]["none"]) == ltv > 0
    assert number(matrix["ltv_high"]["ltv_high"]) == 0
    assert number(matrix["none"]["total"]) == 0


# ---------------------------------------------------------------------------------- browser


def _chromium(*args: str, profile: Path) -> subprocess.Popen[bytes]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed ({CHROMIUM} is missing): run scripts/install-browser "
            "(as root; it installs Debian's chromium) and run the tests again",
            pytrace=False,
        )
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
    ]  # fmt: skip
    return subprocess.Popen(
        [str(CHROMIUM), *flags, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_report_renders_in_a_real_browser(
    synced: Synced, tmp_path_factory: pytest.TempPathFactory
) -> None:
    out = tmp_path_factory.getbasetemp() / "sync-report-screenshot"
    out.mkdir(exist_ok=True)
    shot = out / "sync-report.png"
    shot.unlink(missing_ok=True)
    url = synced.path.resolve().as_uri()
    started = time.monotonic()
    dom = _chromium("--dump-dom", url, profile=out / "profile-dom")
    picture = _chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", url, profile=out / "profile-shot"
    )
    try:
        stdout, stderr = dom.communicate(timeout=60)
        _, shot_err = picture.communicate(timeout=60)
    finally:
        for proc in (dom, picture):
            if proc.poll() is None:
                proc.kill()
    print(f"\nsync report screenshot: {shot} (Chromium took {time.monotonic() - started:.1f} s)")
    assert dom.returncode == 0, stderr.decode(errors="replace")[-2000:]
    rendered = stdout.decode()
    body = re.search(r"<body([^>]*)>", rendered)
    assert body, rendered[:500]
    assert 'data-charts-rendered="4"' in body.group(1), body.group(1)
    marks = int(re.search(r'data-marks-rendered="(\d+)"', body.group(1)).group(1))
    assert marks >= 30, marks  # bars, line markers and matrix cells with real boxes
    assert rendered.count('<svg class="chart"') == 4
    assert identifiers_in(rendered) == []

    assert picture.returncode == 0 and shot.exists(), shot_err.decode(errors="replace")[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        pixels = Counter(image.convert("RGB").getdata())
        background = image.convert("RGB").getpixel((0, 0))
    assert pixels[background] < 0.97 * 1280 * 2000, "the screenshot is one colour"
    # every list's colour is painted beyond its legend swatches (~500 px): the SVG lines and
    # bars (lists of equal sizes draw over one another, so some colours show less)
    painted = {c: pixels[tuple(bytes.fromhex(c[1:]))] for c in PALETTE[:6]}
    assert all(n >= 600 for n in painted.values()), painted
