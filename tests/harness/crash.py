"""Kill `sync run` at chosen moments and look at what Bing (the stand-in) and the warehouse hold.

The sync runs as a real process (the `sync` console script of this environment) against a
stand-in served from the test process, so a SIGKILL hits the real program wherever it is:
importing, waiting for the warehouse lock, planning, looking up lists, in the middle of an
upload, after Microsoft applied an upload but before its result was committed, between lists.

`RecordingStandIn` is the ordinary stand-in, watched through its public hooks for what a crash
test needs: a time stamp per request (to aim kills and to tell afterwards where a kill landed),
a log of the uploads it applied (what changed on which list, and when), and waiting until no
request is being served (a killed client does not stop the server from finishing a request it
already received).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from sync.standin import StandIn
from tests.harness.dbt import ROOT, Build
from tests.harness.sync import OUTPUTS, TOKEN, sync_command, sync_env

STATE = "sync_state"

# Every wait of this harness is bounded by one of these.
RUN_TIMEOUT = 120.0  # one complete `sync run`
WAIT_TIMEOUT = 30.0  # a call to arrive, the stand-in to go idle, a process to die

_SCRUB = ("BING_", "SYNC_", "DBT_", "CIO_DUCKDB")


# ------------------------------------------------------------------------------ the stand-in
@dataclass(frozen=True)
class Applied:
    """One upload the stand-in applied to one list."""

    at: float  # time.monotonic()
    kind: str  # create | add | remove
    list_id: int
    hashes: frozenset[str]


class RecordingStandIn(StandIn):
    """The stand-in, recording request times and applied uploads through its public
    observer hooks (``add_observer``), and waiting for it to go idle (``wait_idle``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(token=TOKEN, **kwargs)
        self.delay = 0.0
        self.stamps: list[tuple[float, str]] = []  # (time.monotonic(), operation), in order
        self.applied: list[Applied] = []
        self._cv = threading.Condition()
        self.add_observer(self)

    def set_delay(self, seconds: float) -> None:
        super().set_delay(seconds)
        self.delay = seconds

    # -- the observer hooks
    def on_request(self, operation: str) -> None:
        with self._cv:
            self.stamps.append((time.monotonic(), operation))
            self._cv.notify_all()

    def on_applied(self, changes: list[tuple[str, int, frozenset[str]]]) -> None:
        now = time.monotonic()
        with self._cv:
            self.applied.extend(Applied(now, kind, i, hashes) for kind, i, hashes in changes)
            self._cv.notify_all()

    # -- waiting
    def wait_idle(self, timeout: float = WAIT_TIMEOUT) -> bool:
        """Until no request is being served (a killed client's last request included)."""
        if not super().wait_idle(timeout):
            raise AssertionError(f"the stand-in was still serving after {timeout} s")
        return True

    def wait_event(
        self, found: Any, proc: subprocess.Popen[bytes], deadline: float
    ) -> float | None:
        """Wait until `found(self)` returns a time; None if the process ended first."""
        with self._cv:
            while (at := found(self)) is None:
                if proc.poll() is not None:
                    return None
                if time.monotonic() > deadline:
                    raise AssertionError("the awaited request never reached the stand-in")
                self._cv.wait(0.01)
            return at

    def names(self) -> list[str]:
        return [rec["name"] for rec in self.lists().values()]


# ------------------------------------------------------------------------------ the warehouse
@dataclass(frozen=True)
class Audience:
    model: str
    list_name: str
    role: str


def audiences(build: Build) -> list[Audience]:
    """The enabled audience models of the build's manifest (models with meta.bing, not
    meta.audience.enabled: false), exclusions first: the lists `sync run` keeps."""
    manifest = json.loads((build.target_path / "manifest.json").read_text())
    out = []
    for node in manifest["nodes"].values():
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        enabled = (meta.get("audience") or {}).get("enabled", True)
        if node.get("resource_type") == "model" and isinstance(meta.get("bing"), dict) and enabled:
            bing = meta["bing"]
            out.append(Audience(node["name"], bing["list_name"], bing.get("role", "target")))
    return sorted(out, key=lambda a: (a.role != "exclude", a.model))


@dataclass
class Snapshot:
    """The warehouse side at one moment: audience tables and the sync's state tables."""

    tables: dict[str, set[str]]  # audience model -> hashes
    list_ids: dict[str, int]  # audience model -> list id (sync_state.lists)
    members: dict[int, set[str]]  # list id -> hashes (sync_state.members)
    run_status: Counter[str]  # sync_state.runs.status -> rows
    run_ids: list[str]


def snapshot(build: Build, models: list[str]) -> Snapshot:
    """Read the warehouse without writing to it (a killed run's WAL is left for the sync)."""
    with duckdb.connect(str(build.database), read_only=True) as con:
        tables = {
            m: {r[0] for r in con.execute(f'select email_sha256 from "{m}"').fetchall()}
            for m in models
        }
        has_state = con.execute(
            "select count(*) from information_schema.tables where table_schema = ?", [STATE]
        ).fetchone()[0]
        if not has_state:
            return Snapshot(tables, {}, {}, Counter(), [])
        list_ids = dict(con.execute(f"select audience, list_id from {STATE}.lists").fetchall())
        members: dict[int, set[str]] = {}
        for list_id, h in con.execute(
            f"select list_id, email_sha256 from {STATE}.members"
        ).fetchall():
            members.setdefault(list_id, set()).add(h)
        status = Counter(
            dict(con.execute(f"select status, count(*) from {STATE}.runs group by 1").fetchall())
        )
        run_ids = [
            r[0]
            for r in con.execute(
                f"select distinct run_id from {STATE}.runs order by run_id"
            ).fetchall()
        ]
    return Snapshot(tables, list_ids, members, status, run_ids)


def change_audiences(
    build: Build, removes: dict[str, list[str]], adds: dict[str, list[str]]
) -> None:
    """What the next `dbt build` might do: some people leave an audience, some enter one.

    New rows copy an existing row of the table with another hash (schema-agnostic).
    """
    with duckdb.connect(str(build.database)) as con:
        for model, hashes in removes.items():
            for h in hashes:
                con.execute(f'delete from "{model}" where email_sha256 = ?', [h])
        for model, hashes in adds.items():
            for h in hashes:
                con.execute(
                    f'insert into "{model}" select * replace (? as email_sha256) '
                    f'from "{model}" limit 1',
                    [h],
                )


# ------------------------------------------------------------------------------ runs
@dataclass
class Finished:
    code: int
    doc: dict[str, Any]
    stderr: str
    seconds: float
    first_call: float | None  # seconds from start to the first request, if any


@dataclass
class Gap:
    """Where Bing and the state disagree on one list right after a kill."""

    name: str
    unsaved: bool = False  # the list exists at Bing, the state does not know its id
    ahead: set[str] = field(default_factory=set)  # at Bing, not (yet) in the state
    behind: set[str] = field(default_factory=set)  # in the state, no longer at Bing


@dataclass
class Kill:
    """Where one SIGKILL landed and what it left behind."""

    label: str  # scenario / round
    trigger: str
    after: float  # seconds after the process started
    phase: str
    calls: list[str]  # operations the killed run sent before it died
    applied_before: list[Applied]
    applied_after: list[Applied]  # applied by the stand-in after the client was dead
    gaps: dict[int, Gap] = field(default_factory=dict)  # list id -> disagreement
    left_files: list[str] = field(default_factory=list)
    survived: bool = False  # the complete run after it converged


class Sync:
    """One warehouse + one stand-in + one SYNC_WORK_DIR, and `sync run` as a process."""

    def __init__(self, build: Build, bing: RecordingStandIn, workdir: Path, logs: Path):
        self.build = build
        self.bing = bing
        self.workdir = workdir
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self._n = 0
        self.procs: list[subprocess.Popen[bytes]] = []
        self.models = [a.model for a in audiences(build)]
        self.process_starts = 0

    @property
    def run_parent(self) -> Path:
        """Where `sync run` keeps each run's bulk files: <SYNC_WORK_DIR>/cio-bing-sync-<uid>."""
        return self.workdir / f"cio-bing-sync-{os.getuid()}"

    def run_folders(self) -> list[Path]:
        return sorted(self.run_parent.iterdir()) if self.run_parent.exists() else []

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
        return {**base, **sync_env(self.build, self.bing.url, str(self.workdir))}

    def start(self, *args: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
        self._n += 1
        out, err = self.logs / f"run{self._n}.out", self.logs / f"run{self._n}.err"
        # the manifest was built for this session; model files edited since do not matter
        cmd = sync_command(self.build, "run", "--allow-stale-manifest", *args)
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(cmd, env=self.env(), stdout=o, stderr=e, cwd=str(ROOT))
        self.procs.append(proc)
        self.process_starts += 1
        return proc, out, err

    def finish(
        self, proc: subprocess.Popen[bytes], out: Path, err: Path, started: float, mark: int
    ) -> Finished:
        try:
            code = proc.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(WAIT_TIMEOUT)
            raise AssertionError(f"sync run did not finish in {RUN_TIMEOUT} s") from None
        seconds = time.monotonic() - started
        text = out.read_text()
        OUTPUTS.extend([text, err.read_text()])  # for the suite's leak scan
        doc = json.loads(text) if text.strip() else {}
        first = self.bing.stamps[mark][0] - started if len(self.bing.stamps) > mark else None
        return Finished(code, doc, err.read_text(), seconds, first)

    def run(self, *args: str) -> Finished:
        """One complete `sync run`."""
        mark = len(self.bing.stamps)
        started = time.monotonic()
        proc, out, err = self.start(*args)
        return self.finish(proc, out, err, started, mark)

    def run_and_kill(
        self, anchor: str, seconds: float, label: str, chain_applied: list[Applied], nth: int = 1
    ) -> Kill | Finished:
        """Start `sync run` and SIGKILL it `seconds` after an anchor: "start" (the process
        started), "call" (its first request reached the stand-in), "apply" or "apply:<kind>"
        (the stand-in applied its `nth` upload, of that kind: create, add, remove), "result"
        (the run asked for the result file of its `nth` applied upload).
        A run that ends before its kill time is returned as Finished."""
        mark, applied_mark = len(self.bing.stamps), len(self.bing.applied)
        started = time.monotonic()
        proc, out, err = self.start()
        deadline = started + RUN_TIMEOUT
        if anchor == "start":
            target = started + seconds
        else:
            if anchor == "call":

                def found(b: RecordingStandIn) -> float | None:
                    return b.stamps[mark][0] if len(b.stamps) > mark else None

            elif anchor == "result":

                def found(b: RecordingStandIn) -> float | None:
                    hits = []
                    for a in b.applied[applied_mark:]:
                        t = next(
                            (t for t, op in b.stamps[mark:] if op == "DownloadFile" and t > a.at),
                            None,
                        )
                        if t is None:
                            break
                        hits.append(t)
                    return hits[nth - 1] if len(hits) >= nth else None

            else:
                kind = anchor.partition(":")[2]

                def found(b: RecordingStandIn) -> float | None:
                    hits = [a for a in b.applied[applied_mark:] if kind in ("", a.kind)]
                    return hits[nth - 1].at if len(hits) >= nth else None

            at = self.bing.wait_event(found, proc, deadline)
            if at is None:
                return self.finish(proc, out, err, started, mark)
            target = at + seconds
        while (now := time.monotonic()) < target:
            if proc.poll() is not None:
                return self.finish(proc, out, err, started, mark)
            time.sleep(min(0.002, target - now))
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(WAIT_TIMEOUT)
        if proc.returncode != -signal.SIGKILL:  # it ended just before the signal
            return self.finish(proc, out, err, started, mark)
        OUTPUTS.extend([out.read_text(), err.read_text()])  # for the suite's leak scan
        self.bing.wait_idle()
        calls = [(t, op) for t, op in self.bing.stamps[mark:] if t <= killed_at]
        applied = self.bing.applied[applied_mark:]
        before = [a for a in applied if a.at <= killed_at]
        after = [a for a in applied if a.at > killed_at]
        chain_applied.extend(applied)
        kill = Kill(
            label=label,
            trigger=f"{seconds:.3f} s after {anchor}" + (f" #{nth}" if anchor != "start" else ""),
            after=killed_at - started,
            phase="",
            calls=[op for _, op in calls],
            applied_before=before,
            applied_after=after,
        )
        kill.left_files = (
            [str(p.relative_to(self.run_parent)) for p in self.run_parent.rglob("*") if p.is_file()]
            if self.run_parent.exists()
            else []
        )
        kill.gaps = self.check_after_kill(chain_applied)
        kill.phase = classify(calls, before, after, kill.gaps, killed_at, self.bing.delay)
        return kill

    # -- checks
    def check_after_kill(self, chain_applied: list[Applied]) -> dict[int, Gap]:
        """What must hold at every instant, even right after a SIGKILL; returns what Bing and
        the state disagree on (only ever the work in flight when the process died)."""
        remote = self.bing.lists()
        names = [r["name"] for r in remote.values()]
        assert len(names) == len(set(names)), f"a list name exists twice at Microsoft: {names}"
        snap = snapshot(self.build, self.models)
        by_name = {a.model: a.list_name for a in audiences(self.build)}
        for model, list_id in snap.list_ids.items():
            assert list_id in remote, (
                f"{model}: the state names list {list_id}, unknown at Microsoft"
            )
            assert remote[list_id]["name"] == by_name[model], model
        in_flight_adds = {h for a in chain_applied if a.kind == "add" for h in a.hashes}
        in_flight_removes = {h for a in chain_applied if a.kind == "remove" for h in a.hashes}
        gaps: dict[int, Gap] = {}
        saved = set(snap.list_ids.values())
        for list_id, rec in remote.items():
            state = snap.members.get(list_id, set())
            gap = Gap(
                rec["name"], list_id not in saved, rec["members"] - state, state - rec["members"]
            )
            # Bing may be ahead of the state only by adds sent since the last complete run,
            # and behind it only by removes sent since then: never anything else.
            assert gap.ahead <= in_flight_adds, f"list {list_id}: Bing holds hashes never sent"
            assert gap.behind <= in_flight_removes, (
                f"list {list_id}: state claims unconfirmed hashes"
            )
            if gap.unsaved or gap.ahead or gap.behind:
                gaps[list_id] = gap
        folders = self.run_folders()
        assert len(folders) <= 1, f"bulk folders of several runs are left: {folders}"
        return gaps

    def assert_converged(self, result: Finished, live: tuple[Path, ...] = ()) -> Snapshot:
        """The invariant after a complete run: Bing = audience table = state, for every list;
        one list per name; no bulk files left (but in the folders of `live` runs, still going
        on); no run left 'running'."""
        assert result.code == 0, f"exit {result.code}: {result.stderr[-3000:]}"
        remote = self.bing.lists()
        snap = snapshot(self.build, self.models)
        names = [r["name"] for r in remote.values()]
        assert len(names) == len(set(names)), f"a list name exists twice at Microsoft: {names}"
        assert len(remote) == len(self.models), f"lists at Microsoft: {names}"
        for a in audiences(self.build):
            list_id = snap.list_ids.get(a.model)
            assert list_id is not None, f"{a.model}: no list in the state"
            table = snap.tables[a.model]
            assert remote[list_id]["name"] == a.list_name, a.model
            assert remote[list_id]["members"] == table, (
                f"{a.model}: Bing != table: {len(remote[list_id]['members'] - table)} extra at "
                f"Bing, {len(table - remote[list_id]['members'])} missing at Bing"
            )
            assert snap.members.get(list_id, set()) == table, f"{a.model}: state != table"
        assert snap.run_status.get("running", 0) == 0, f"runs left running: {snap.run_status}"
        left = [
            str(p)
            for p in self.workdir.rglob("*")
            if p.is_file() and not any(folder in p.parents for folder in live)
        ]
        assert not left, f"bulk files left after a complete run: {left}"
        folders = [f for f in self.run_folders() if f not in live]
        assert not folders, f"run folders left: {folders}"
        return snap

    def outcome(self) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
        """(Bing membership by list name, state membership by audience) for comparing runs."""
        snap = snapshot(self.build, self.models)
        remote = {r["name"]: r["members"] for r in self.bing.lists().values()}
        state = {m: snap.members.get(i, set()) for m, i in snap.list_ids.items()}
        return remote, state

    def stop(self) -> None:
        """Kill (by pid) whatever this harness started that is still running."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(WAIT_TIMEOUT)


# ------------------------------------------------------------------------------ phases
def classify(
    calls: list[tuple[float, str]],
    before: list[Applied],
    after: list[Applied],
    gaps: dict[int, Gap],
    killed_at: float,
    delay: float,
) -> str:
    """Name the step a killed run was in, from the requests it had sent and what the
    stand-in had applied by then."""
    if not calls:
        return "startup: before any call (imports, lock, state, plan)"
    ops = [op for _, op in calls]
    last_url = max((i for i, op in enumerate(ops) if op == "GetBulkUploadUrl"), default=-1)
    last_lookup = max(
        (i for i, op in enumerate(ops) if op == "DownloadCampaignsByAccountIds"), default=-1
    )
    if last_lookup > last_url:
        return "lookup: bulk download of the customer lists"
    t_url = calls[last_url][0]
    mine_before = [a for a in before if a.at >= t_url]
    mine_after = [a for a in after if a.at >= t_url]
    kind = (mine_before or mine_after)[0].kind if (mine_before or mine_after) else "upload"
    if "UploadFile" not in ops[last_url:]:
        return "next upload: asking for its URL (the previous one committed)"
    if mine_after:
        return f"{kind}: file sent; Microsoft applied it after the kill"
    if not mine_before:
        return "upload: file being sent; never applied"
    last_applied = mine_before[-1]
    gap = gaps.get(last_applied.list_id)
    pending = gap is not None and (
        (last_applied.kind == "create" and gap.unsaved)
        or bool(last_applied.hashes & (gap.ahead if last_applied.kind == "add" else gap.behind))
    )
    if pending:
        t_last, last = calls[-1]
        if last == "DownloadFile" and killed_at - t_last >= delay:
            return f"{kind}: applied; result downloaded, not yet committed"
        return f"{kind}: applied; waiting for status/result, not yet committed"
    return f"{kind}: applied and committed; before the next call"


def phase_table(kills: list[Kill]) -> str:
    counts = Counter(k.phase for k in kills)
    width = max((len(p) for p in counts), default=10)
    return "\n".join(f"  {n:3d}  {p:<{width}}" for p, n in sorted(counts.items()))
