"""The reference implementation (bench/reference.py) against a second, plain-Python reading
of the spec, on messy data from the seeded generator (bench/generate.py)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.harness.reference import load_bench, person_rows, reference, run_reference

# --- a second, plain-Python reading of the spec, on generated messy data ---------------------

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_WS = " \t\r\n"


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
    generate = load_bench("generate")
    generate.main(["--people", "4000", "--seed", "11", "--out", str(tmp_path), "--files", "3"])
    generate.main(
        ["--people", "4000", "--seed", "11", "--out", str(tmp_path / "nh"), "--next-hour"]
    )
    tracks = [tmp_path / "tracks", tmp_path / "nh" / "tracks"]
    identifies = [tmp_path / "identifies", tmp_path / "nh" / "identifies"]
    for as_of in ("2026-11-28T12:00:00Z", "2026-11-28T12:30:00Z"):
        con, names = run_reference(tracks, identifies, as_of=as_of)
        got = person_rows(con, names, "state, email_sha256, order_count, net_revenue, cart_value")
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
