"""The reference implementation (bench/reference.py) on edge cases beyond the hand-worked
fixtures: closing carts, duplicate deliveries, identity links, re-sent orders, refunds, cart
values and which email wins."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime
from pathlib import Path

from tests.harness.reference import person_rows, run_reference

TRACK_COLUMNS = "id,event,event_text,user_id,anonymous_id,timestamp,received_at,properties,context"
TRACK_COLUMNS = TRACK_COLUMNS.split(",")


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
    con, names = run_reference(tracks, identifies)
    got = person_rows(
        con,
        names,
        "state, email_sha256, order_count, net_revenue, ltv_tier, is_cart_open, cart_value, "
        "last_order_at",
    )
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
