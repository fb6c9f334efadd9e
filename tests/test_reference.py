"""The reference implementation (bench/reference.py) against the hand-worked fixtures in
shared/fixtures/audiences (thirty people, as_of 2026-11-28T12:00:00Z)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "audiences"  # copy of shared/'s
AS_OF = "2026-11-28T12:00:00Z"
TRACK_COLUMNS = "id,event,event_text,user_id,anonymous_id,timestamp,received_at,properties,context"
TRACK_COLUMNS = TRACK_COLUMNS.split(",")


def _load_reference():
    spec = importlib.util.spec_from_file_location(
        "bench_reference", REPO / "bench" / "reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


reference = _load_reference()


def _expected() -> list[dict[str, str]]:
    with (FIXTURES / "expected_states.csv").open(newline="") as f:
        return list(csv.DictReader(f))


EXPECTED = _expected()


def _run(tracks, identifies, as_of=AS_OF, **kwargs):
    con = duckdb.connect()
    names = reference.compute(con, tracks, identifies, as_of, **kwargs)
    return con, names


@pytest.fixture(scope="module")
def csv_run():
    return _run(FIXTURES / "tracks.csv", FIXTURES / "identifies.csv")


@pytest.fixture(scope="module")
def parquet_run(tmp_path_factory):
    """The same fixtures as typed Parquet (timestamptz columns), like Pipelines Parquet files."""
    out = tmp_path_factory.mktemp("pq")
    con = duckdb.connect()
    for name, json_col in (("tracks", "properties"), ("identifies", "traits")):
        src = (FIXTURES / f"{name}.csv").as_posix()
        con.execute(
            f"""
            copy (
                select * replace (
                    cast("timestamp" as timestamptz) as "timestamp",
                    cast(received_at as timestamptz) as received_at,
                    cast({json_col} as varchar) as {json_col}
                )
                from read_csv('{src}', header = true, all_varchar = true)
            ) to '{(out / f"2184.13699.1.{name}.parquet").as_posix()}' (format parquet)
            """
        )
    return _run(out / "2184.13699.1.tracks.parquet", out / "2184.13699.1.identifies.parquet")


def _people(con, names) -> dict[str, tuple[str, str]]:
    rows = con.execute(
        f"select person_id, coalesce(state, ''), coalesce(email_sha256, '') "
        f"from {names['person_states']}"
    ).fetchall()
    return {pid: (state, email) for pid, state, email in rows}


def test_fixture_covers_thirty_people():
    assert len(EXPECTED) == 30
    assert len({r["person_id"] for r in EXPECTED}) == 30


@pytest.mark.parametrize("row", EXPECTED, ids=[r["person_id"] for r in EXPECTED])
def test_state_and_email_per_person(csv_run, row):
    con, names = csv_run
    people = _people(con, names)
    # No row in person_states means "not a person at T" (st27): no state and no email.
    got_state, got_email = people.get(row["person_id"], ("", ""))
    assert got_state == row["state"], row["why"]
    assert got_email == row["email_sha256"], row["why"]


def test_audience_states_mart_matches(csv_run):
    con, names = csv_run
    got = dict(con.execute(f"select person_id, state from {names['audience_states']}").fetchall())
    want = {r["person_id"]: r["state"] for r in EXPECTED if r["state"]}
    assert got == want
    columns = [c[0] for c in con.execute(f"describe {names['audience_states']}").fetchall()]
    assert columns == [
        "person_id",
        "state",
        "state_priority",
        "email_sha256",
        "ltv_tier",
        "order_count",
        "net_revenue",
        "aov",
        "last_order_at",
        "last_cart_at",
        "cart_value",
        "as_of",
    ]
    priorities = con.execute(
        f"select distinct state, state_priority from {names['audience_states']}"
    ).fetchall()
    for state, priority in priorities:
        assert reference.STATES[priority - 1] == state


def test_parquet_input_gives_the_same_people(csv_run, parquet_run):
    assert _people(*parquet_run) == _people(*csv_run)


def test_shared_hash_only_in_recent_purchasers(csv_run):
    con, names = csv_run
    people = _people(con, names)
    shared = people["st22a"][1]
    assert shared and shared == people["st22b"][1]
    # st22a stays a cart abandoner in audience_states ...
    assert people["st22a"][0] == "cart_abandon_0_1d"
    assert people["st22b"][0] == "recent_purchaser_0_7d"
    # ... but the hash is a member of the recent purchasers' audience only.
    for state in reference.STATES:
        members = {
            r[0]
            for r in con.execute(
                f"select email_sha256 from {names['audience_' + state]}"
            ).fetchall()
        }
        assert (shared in members) == (state == "recent_purchaser_0_7d"), state


def test_each_hash_in_exactly_one_audience(csv_run):
    con, names = csv_run
    seen: dict[str, str] = {}
    for state in reference.STATES:
        for (email,) in con.execute(
            f"select email_sha256 from {names['audience_' + state]}"
        ).fetchall():
            assert email is not None
            assert email not in seen, (email, seen.get(email), state)
            seen[email] = state
    carried = {
        r[0]
        for r in con.execute(
            f"select email_sha256 from {names['audience_states']} where email_sha256 is not null"
        ).fetchall()
    }
    assert set(seen) == carried


def test_known_answer_hash(csv_run):
    con, names = csv_run
    want = "f25ad364d33972379a7a4f4df33db142205f5c40eb19cfdb2fc5aaf117e10101"
    assert hashlib.sha256(b"test@contoso.com").hexdigest() == want
    assert _people(con, names)["st19"][1] == want


def test_as_of_without_z_and_thresholds_are_parameters():
    con, names = _run(
        FIXTURES / "tracks.csv",
        FIXTURES / "identifies.csv",
        as_of="2026-11-28T12:00:00",
        recent_purchase_days=7.5,
    )
    people = _people(con, names)
    # st02's order is exactly 7 d old: recent once the window is 7.5 d.
    assert people["st02"][0] == "recent_purchaser_0_7d"
    assert people["st09"][0] == "purchased_once_21_45d"


def test_messy_properties_do_not_crash(tmp_path):
    tracks = tmp_path / "tracks.csv"
    identifies = tmp_path / "identifies.csv"
    header = "id,event,event_text,user_id,anonymous_id,timestamp,received_at,properties,context\n"
    tracks.write_text(
        header
        + 'x1,product_added,Product Added,p1,,2026-11-28T10:00:00Z,2026-11-28T10:00:01Z,"{bad",\n'
        + "x2,Checkout Started,,p1,,2026-11-28T10:30:00Z,2026-11-28T10:30:01Z,"
        + '"{""value"": ""50xyz"", ""revenue"": "" 90 ""}",\n'
        + 'x3,add_to_cart,ADD-TO-CART!,p2,,2026-11-28T11:00:00Z,2026-11-28T11:00:01Z,"[1, 2]",\n'
        + 'x4,order_completed,,p3,,2026-11-28T11:00:00+02:00,2026-11-28T09:00:01Z,"""x""",\n'
    )
    identifies.write_text("id,user_id,anonymous_id,timestamp,received_at,traits,context\n")
    con, names = _run(tracks, identifies)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            f"select person_id, state, cart_value, last_order_at from {names['person_states']}"
        ).fetchall()
    }
    # "50xyz" is missing, so value falls back to revenue " 90 " (trimmed plain decimal)
    assert got["p1"][:2] == ("cart_abandon_high_aov_0_1d", 90.0)
    # properties that are not an object: price 0 x quantity 1
    assert got["p2"][:2] == ("cart_abandon_0_1d", 0.0)
    # an explicit offset is honoured: 11:00+02:00 is 09:00 UTC
    assert got["p3"][0] == "recent_purchaser_0_7d"
    assert got["p3"][2].isoformat() == "2026-11-28T09:00:00"


# --- a second, plain-Python reading of the spec, on generated messy data ---------------------

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_WS = " \t\r\n"


def _load_generator():
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _num(props: dict, *keys: str) -> float | None:
    for key in keys:
        v = props.get(key)
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, str) and _NUMBER.fullmatch(v.strip(_WS)):
            return float(v.strip(_WS))
    return None


def _props(text: str | None) -> dict:
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _dedup(rows: list[dict]) -> list[dict]:
    kept: dict[str, dict] = {}
    for row in rows:
        if row["id"] not in kept or row["received_at"] < kept[row["id"]]["received_at"]:
            kept[row["id"]] = row
    return list(kept.values())


def _oracle(tracks: list[dict], identifies: list[dict], t: datetime) -> dict[str, tuple]:
    """person_id -> (state, email_sha256, order_count, net_revenue, cart_value)."""
    kinds = reference.DEFAULT_EVENT_KINDS
    ids = []
    for row in _dedup(identifies):
        row["at"] = row["timestamp"] or row["received_at"]
        if row["at"] <= t:
            ids.append(row)
    order_key = lambda r: (r["at"], r["received_at"], r["id"])  # noqa: E731
    links: dict[str, dict] = {}
    emails: dict[str, dict] = {}
    for row in ids:
        if row["anonymous_id"] and row["user_id"]:
            old = links.get(row["anonymous_id"])
            if old is None or order_key(row) > order_key(old):
                links[row["anonymous_id"]] = row
        traits = _props(row["traits"])
        email = traits.get("email")
        if row["user_id"] and isinstance(email, str) and email.strip(_WS):
            old = emails.get(row["user_id"])
            if old is None or order_key(row) > order_key(old):
                emails[row["user_id"]] = {**row, "email": email}

    def email_hash(user_id: str) -> str | None:
        if user_id not in emails:
            return None
        e = emails[user_id]["email"].strip(_WS).lower()
        if _HEX64.fullmatch(e):
            return e
        return hashlib.sha256(e.encode()).hexdigest() if _EMAIL.fullmatch(e) else None

    per: dict[str, list[dict]] = {}
    for row in _dedup(tracks):
        at = row["timestamp"] or row["received_at"]
        if at > t:
            continue
        person = row["user_id"] or (
            links[row["anonymous_id"]]["user_id"] if row["anonymous_id"] in links else None
        )
        if not person:
            continue
        name = row["event_text"] if row["event_text"] else row["event"]
        name = re.sub(r"[^a-z0-9]+", "_", (name or "").lower()).strip("_")
        per.setdefault(person, []).append(
            {**row, "at": at, "kind": kinds.get(name), "p": _props(row["properties"])}
        )

    out = {}
    for person, events in per.items():
        orders: dict[str, dict] = {}
        for e in sorted(events, key=lambda e: (e["at"], e["received_at"], e["id"])):
            if e["kind"] == "order":
                oid = e["p"].get("order_id")
                oid = e["id"] if oid is None or str(oid).strip() == "" else str(oid)
                if oid not in orders:
                    value = _num(e["p"], "total", "revenue", "value", "subtotal")
                    orders[oid] = {"at": e["at"], "value": value or 0.0}
        refunds = 0.0
        for e in events:
            oid = e["p"].get("order_id")
            if e["kind"] == "refund":
                amount = _num(e["p"], "total", "revenue", "value")
                known = orders.get(str(oid)) if oid is not None else None
                refunds += amount if amount is not None else known["value"] if known else 0.0
        gross = sum(o["value"] for o in orders.values())
        net = gross - refunds
        last_order = max((o["at"] for o in orders.values()), default=None)
        carts = [e["at"] for e in events if e["kind"] in ("cart_add", "checkout")]
        last_cart = max(carts, default=None)
        is_open = last_cart is not None and (last_order is None or last_order < last_cart)
        cart_value = None
        if is_open:
            span = [
                e
                for e in events
                if e["kind"] in ("cart_add", "cart_remove", "checkout")
                and (last_order is None or e["at"] > last_order)
            ]
            checkouts = [
                e
                for e in span
                if e["kind"] == "checkout" and _num(e["p"], "value", "revenue", "total") is not None
            ]
            if checkouts:
                latest = max(checkouts, key=lambda e: (e["at"], e["received_at"], e["id"]))
                cart_value = _num(latest["p"], "value", "revenue", "total")
            else:
                total = 0.0
                for e in span:
                    line = (_num(e["p"], "price") or 0.0) * (
                        1.0 if _num(e["p"], "quantity") is None else _num(e["p"], "quantity")
                    )
                    total += (
                        line
                        if e["kind"] == "cart_add"
                        else -line
                        if e["kind"] == "cart_remove"
                        else 0
                    )
                cart_value = max(0.0, total)
        d = timedelta(days=1)
        n = len(orders)
        if last_order is not None and last_order > t - 7 * d:
            state = "recent_purchaser_0_7d"
        elif is_open and last_cart > t - timedelta(hours=24) and cart_value >= 80:
            state = "cart_abandon_high_aov_0_1d"
        elif is_open and last_cart > t - timedelta(hours=24):
            state = "cart_abandon_0_1d"
        elif n == 1 and t - 45 * d <= last_order <= t - 21 * d:
            state = "purchased_once_21_45d"
        elif n >= 1 and last_order <= t - 90 * d:
            state = "lapsed_90d_plus"
        elif net >= 500:
            state = "ltv_high"
        else:
            state = None
        out[person] = (state, email_hash(person), n, net, cart_value)
    return out


def _rows(folder: Path) -> list[dict]:
    frame = pl.read_parquet(folder / "*.parquet")
    frame = frame.with_columns(
        pl.col(pl.Datetime("us", "UTC")).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    )
    return frame.to_dicts()


def test_generated_data_matches_a_plain_python_reading(tmp_path):
    generate = _load_generator()
    generate.main(["--people", "4000", "--seed", "11", "--out", str(tmp_path), "--files", "3"])
    generate.main(
        ["--people", "4000", "--seed", "11", "--out", str(tmp_path / "nh"), "--next-hour"]
    )
    tracks = [tmp_path / "tracks", tmp_path / "nh" / "tracks"]
    identifies = [tmp_path / "identifies", tmp_path / "nh" / "identifies"]
    for as_of in ("2026-11-28T12:00:00Z", "2026-11-28T12:30:00Z"):
        con, names = _run(tracks, identifies, as_of=as_of)
        got = {
            r[0]: r[1:]
            for r in con.execute(
                f"select person_id, state, email_sha256, order_count, net_revenue, cart_value "
                f"from {names['person_states']}"
            ).fetchall()
        }
        want = _oracle(
            _rows(tracks[0]) + _rows(tracks[1]),
            _rows(identifies[0]) + _rows(identifies[1]),
            reference.parse_as_of(as_of),
        )
        assert set(got) == set(want)
        assert sum(1 for v in want.values() if v[0]) > 100  # the data does reach the states
        for person, (state, email, n, net, cart) in want.items():
            g = got[person]
            assert g[:3] == (state, email, n), person
            assert g[3] == pytest.approx(net, abs=1e-6), person
            assert (g[4] is None) == (cart is None), person
            if cart is not None:
                assert g[4] == pytest.approx(cart, abs=1e-6), person


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def test_edge_cases_beyond_the_fixtures(tmp_path):
    def track(mid, user, anon, ts, props, event="product_added", received=None):
        return [mid, event, None, user, anon, ts, received or ts, json.dumps(props), None]

    def ident(mid, user, anon, ts, traits, received=None):
        return [mid, user, anon, ts, received or ts, json.dumps(traits), None]

    tracks = _csv(
        tmp_path / "tracks.csv",
        TRACK_COLUMNS,
        [
            # p1: an order at the cart's instant closes it
            track("e1", "p1", None, "2026-11-20T10:00:00Z", {"price": 30}),
            track(
                "e2",
                "p1",
                None,
                "2026-11-20T10:00:00Z",
                {"order_id": "O1", "total": 40},
                "order_completed",
            ),
            # p2: delivered twice, no timestamp: the earliest copy (before T) is the one kept
            track("d1", "p2", None, None, {"price": 50}, received="2026-11-28T11:00:00Z"),
            track("d1", "p2", None, None, {"price": 50}, received="2026-11-28T13:00:00Z"),
            # p4: anonymous cart, linked by the latest identify as of T (not p3, not p5)
            track("e4", None, "a3", "2026-11-28T11:00:00Z", {"price": 100}),
            track("e5", "p6", None, "2026-11-26T12:00:00Z", {}, "page_viewed"),
            track("e5b", "p7", None, "2026-11-26T12:00:00Z", {}, "page_viewed"),
            track("e5c", "p8", None, "2026-11-26T12:00:00Z", {}, "page_viewed"),
            # p9: order re-sent later: time and value of its earliest event; refund of all of it
            track(
                "e6",
                "p9",
                None,
                "2026-10-29T12:00:00Z",
                {"order_id": "O9", "total": 100},
                "order_completed",
            ),
            track(
                "e7",
                "p9",
                None,
                "2026-11-08T12:00:00Z",
                {"order_id": "O9", "total": 999},
                "order_completed",
            ),
            track("e8", "p9", None, "2026-11-03T12:00:00Z", {"order_id": "O9"}, "order_refunded"),
            # p10: refunds with an amount count even for someone else's order or an unknown one
            # (the order lookup only supplies a missing amount)
            track("e9", "p10", None, "2026-08-20T12:00:00Z", {"total": "200"}, "order_completed"),
            track(
                "e10",
                "p10",
                None,
                "2026-11-20T12:00:00Z",
                {"order_id": "O9", "total": 50},
                "order_refunded",
            ),
            track(
                "e11",
                "p10",
                None,
                "2026-11-20T12:00:00Z",
                {"order_id": "nope", "total": 10},
                "order_refunded",
            ),
            # p11: 2 x 60 added, one removed, checkout without a usable value: items, 60
            track("e12", "p11", None, "2026-11-28T09:00:00Z", {"price": 60, "quantity": 2}),
            track("e13", "p11", None, "2026-11-28T10:00:00Z", {"price": 60}, "product_removed"),
            track("e14", "p11", None, "2026-11-28T11:00:00Z", {"value": "n/a"}, "checkout_started"),
            # p12: only the cart events after the last order count
            track("e15", "p12", None, "2026-11-28T07:00:00Z", {"price": "70", "quantity": "2"}),
            track(
                "e16",
                "p12",
                None,
                "2026-11-28T08:00:00Z",
                {"order_id": "O12", "total": 10},
                "order_completed",
            ),
            track("e16b", "p12", None, "2026-11-28T08:00:00Z", {"price": 1000}),  # not after
            track("e17", "p12", None, "2026-11-28T09:00:00Z", {"price": 90}),
            track("e18", "p12", None, "2026-11-28T10:00:00Z", {}, "checkout_started"),
        ],
    )
    hexed = "AB" * 32
    identifies = _csv(
        tmp_path / "identifies.csv",
        ["id", "user_id", "anonymous_id", "timestamp", "received_at", "traits", "context"],
        [
            ident("i1", "p3", "a3", "2026-11-01T00:00:00Z", {}),
            ident("i2", "p4", "a3", "2026-11-10T00:00:00Z", {}),
            ident("i3", "p5", "a3", "2026-11-28T12:00:01Z", {}),
            # same event time: latest received_at wins, then the greatest id
            ident(
                "b",
                "p4",
                None,
                "2026-11-15T00:00:00Z",
                {"email": "first@x.com"},
                "2026-11-15T00:00:01Z",
            ),
            ident(
                "a",
                "p4",
                None,
                "2026-11-15T00:00:00Z",
                {"email": "second@x.com"},
                "2026-11-15T00:00:02Z",
            ),
            ident(
                "c",
                "p6",
                None,
                "2026-11-15T00:00:00Z",
                {"email": "alpha@x.com"},
                "2026-11-15T00:00:02Z",
            ),
            ident(
                "d",
                "p6",
                None,
                "2026-11-15T00:00:00Z",
                {"email": "beta@x.com"},
                "2026-11-15T00:00:02Z",
            ),
            ident("i7", "p7", None, "2026-11-15T00:00:00Z", {"email": f" {hexed}\n"}),
            # the latest non-empty email is invalid: no email, despite the older valid one
            ident("i8", "p8", None, "2026-11-01T00:00:00Z", {"email": "ok@x.com"}),
            ident("i9", "p8", None, "2026-11-02T00:00:00Z", {"email": "bad@x"}),
            ident("i10", "p8", None, "2026-11-03T00:00:00Z", {"email": " \t"}),
        ],
    )
    con, names = _run(tracks, identifies)
    got = {
        r[0]: r[1:]
        for r in con.execute(
            f"select person_id, state, email_sha256, order_count, net_revenue, ltv_tier, "
            f"is_cart_open, cart_value, last_order_at from {names['person_states']}"
        ).fetchall()
    }
    sha = lambda s: hashlib.sha256(s.encode()).hexdigest()  # noqa: E731
    assert set(got) == {"p1", "p2", "p4", "p6", "p7", "p8", "p9", "p10", "p11", "p12"}
    assert got["p1"][0] is None and got["p1"][5:7] == (False, None)
    assert got["p2"][0] == "cart_abandon_0_1d" and got["p2"][6] == 50
    assert got["p4"][0] == "cart_abandon_high_aov_0_1d" and got["p4"][6] == 100
    assert got["p4"][1] == sha("second@x.com")
    assert got["p6"][1] == sha("beta@x.com")
    assert got["p7"][1] == hexed.lower()
    assert got["p8"][1] is None
    assert got["p9"][0] == "purchased_once_21_45d"
    assert got["p9"][2:5] == (1, 0.0, "none")
    assert got["p9"][7] == datetime(2026, 10, 29, 12)
    assert got["p10"][0] == "lapsed_90d_plus" and got["p10"][3:5] == (140.0, "low")
    assert got["p11"][0] == "cart_abandon_0_1d" and got["p11"][6] == 60
    assert got["p12"][0] == "recent_purchaser_0_7d" and got["p12"][5:7] == (True, 90)
