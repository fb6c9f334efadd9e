"""The sync's state rules on the real warehouse engine: what is sure, what is uncertain.

Each scenario replays, with the real `State` on DuckDB, runs that died or were rejected at
the worst moment, then asks what the next run would send. Microsoft's membership is tracked
by hand here (`at_bing`), because the point is the state's bookkeeping between runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import polars as pl

from sync.project import Audience
from sync.state import State
from sync.warehouse import Warehouse

LIST = 7
A, B = (hashlib.sha256(x.encode()).hexdigest() for x in ("a", "b"))
NO_REJECTS = pl.DataFrame(
    schema={"email_sha256": pl.String, "error_code": pl.Int64, "error_message": pl.String}
)


def setup(tmp_path: Path) -> tuple[duckdb.DuckDBPyConnection, State, Audience, str]:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    wh = Warehouse(con, con.sql("select current_database()").fetchall()[0][0])
    state = State(wh, "sync_state")
    state.ensure()
    con.execute("create table aud (email_sha256 varchar)")
    audience = Audience("audience_x", None, "main", "aud", "L", "target")
    return con, state, audience, wh.relation(None, "main", "aud")


def frame(*hashes: str) -> pl.DataFrame:
    return pl.DataFrame({"email_sha256": list(hashes)}, schema={"email_sha256": pl.String})


def rejected(*hashes: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"email_sha256": list(hashes), "error_code": [9999] * len(hashes),
         "error_message": ["SomeRowError"] * len(hashes)},
        schema=NO_REJECTS.schema,
    )  # fmt: skip


def set_audience(con: duckdb.DuckDBPyConnection, *hashes: str) -> None:
    con.execute("delete from aud")
    for h in hashes:
        con.execute("insert into aud values (?)", [h])


def plan(state: State, audience: Audience, relation: str) -> tuple[list[str], list[str]]:
    removes, adds = state.outbox(audience, relation, LIST)
    return sorted(adds["email_sha256"].to_list()), sorted(removes["email_sha256"].to_list())


def test_applied_remove_then_rejected_re_add_is_retried(tmp_path: Path) -> None:
    con, state, audience, relation = setup(tmp_path)
    con.execute(
        "insert into sync_state.members values (7, ?, now(), 'r0'), (7, ?, now(), 'r0')", [A, B]
    )
    set_audience(con, B)
    _, removes = plan(state, audience, relation)
    state.mark_pending("r1", LIST, "Remove", frame(*removes))  # r1 dies; Microsoft removed A
    set_audience(con, A, B)  # A comes back
    adds, _ = plan(state, audience, relation)
    assert adds == [A]
    state.start_run("r2", audience, None)
    state.mark_pending("r2", LIST, "Add", frame(A))
    state.commit_upload(run_id="r2", audience=audience, list_id=LIST, action="Add",
                        sent=frame(A), rejected=rejected(A), request_id=None)  # fmt: skip
    assert plan(state, audience, relation) == ([A], [])  # still unsure: sent again next run


def test_applied_add_then_rejected_re_add_then_leaving_is_removed(tmp_path: Path) -> None:
    con, state, audience, relation = setup(tmp_path)
    set_audience(con, A)
    state.mark_pending("r1", LIST, "Add", frame(A))  # r1 dies; Microsoft added A
    state.start_run("r2", audience, None)
    state.mark_pending("r2", LIST, "Add", frame(A))
    state.commit_upload(run_id="r2", audience=audience, list_id=LIST, action="Add",
                        sent=frame(A), rejected=rejected(A), request_id=None)  # fmt: skip
    set_audience(con)  # A leaves
    assert plan(state, audience, relation) == ([], [A])  # may be at Microsoft: removed


def test_two_crashes_in_a_row_keep_the_hash_uncertain(tmp_path: Path) -> None:
    con, state, audience, relation = setup(tmp_path)
    set_audience(con, A)
    state.mark_pending("r1", LIST, "Add", frame(A))  # r1 dies after Microsoft added A
    set_audience(con)  # A leaves
    assert plan(state, audience, relation) == ([], [A])
    state.mark_pending("r2", LIST, "Remove", frame(A))  # r2 dies before sending
    assert plan(state, audience, relation) == ([], [A])  # r3 still removes it
    set_audience(con, A)  # and if A came back, r3 adds it
    assert plan(state, audience, relation) == ([A], [])


def test_confirmed_outcomes_settle_the_hash(tmp_path: Path) -> None:
    con, state, audience, relation = setup(tmp_path)
    set_audience(con, A, B)
    state.start_run("r1", audience, None)
    state.mark_pending("r1", LIST, "Add", frame(A, B))
    state.commit_upload(run_id="r1", audience=audience, list_id=LIST, action="Add",
                        sent=frame(A, B), rejected=NO_REJECTS, request_id=None)  # fmt: skip
    assert plan(state, audience, relation) == ([], [])
    assert con.sql("select count(*) from sync_state.pending").fetchall() == [(0,)]
