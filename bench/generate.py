"""Seeded, vectorised generator of Customer.io Data Pipelines `tracks` / `identifies` Parquet
files (the shape of shared/spec/sources.md), for benchmarking the audience build.

    python bench/generate.py --people 1000000 --as-of 2026-11-28T12:00:00Z --seed 1
    python bench/generate.py --people 1000000 --as-of 2026-11-28T12:00:00Z --seed 1 --next-hour

The base run writes the 180 days before --as-of to bench/data/base/{tracks,identifies}/;
--next-hour writes ~10k new events for the same people in the hour after --as-of (received after
it, a few of them late arrivals that happened before it) to bench/data/next_hour/, with file
positions that do not clash with the base files, so both can sit in one landing folder.

Per person, from a counter-based RNG (polars' hash of a row key, one seed per stream; no
Python loops over rows): most only browse (unmapped events), some add to cart, fewer check out
and buy (long-tailed order counts and values), a few refund. Messiness, as sources.md lists it:
event names in several spellings, prices sometimes strings or junk, missing quantities, orders
without order_id, orders re-sent later, ~1% duplicate deliveries (same id, later received_at),
late arrivals, null timestamps, anonymous carts identified later (and some never), emails in
mixed case with stray whitespace, invalid / empty emails, pre-hashed emails, shared emails.
Stable for one polars version (polars does not promise its hash across versions).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR
WINDOW = 180 * DAY
DEST = 2184  # Pipelines destination id in the file names
ACTION_TRACK, ACTION_IDENTIFY = 13699, 13700

# kind codes of the generated events
BROWSE, ADD, REMOVE, CHECKOUT, ORDER, REFUND = range(6)

# (kind, event, event_text, weight): the spellings each kind arrives in
VARIANTS = [
    (BROWSE, "product_viewed", "Product Viewed", 40),
    (BROWSE, "page_viewed", "Page Viewed", 30),
    (BROWSE, "products_searched", "Products Searched", 10),
    (BROWSE, "product_list_viewed", "Product List Viewed", 10),
    (BROWSE, "cart_viewed", "Cart Viewed", 6),
    (BROWSE, "order_completed_email_opened", "Order Completed Email Opened", 4),
    (ADD, "product_added", "Product Added", 80),
    (ADD, "add_to_cart", "Add To Cart", 8),
    (ADD, "added_to_cart", "added-to-cart", 4),
    (ADD, "product_added", None, 5),
    (ADD, "product_added", "", 3),
    (REMOVE, "product_removed", "Product Removed", 90),
    (REMOVE, "removed_from_cart", "Removed From Cart", 10),
    (CHECKOUT, "checkout_started", "Checkout Started", 95),
    (CHECKOUT, "checkout_started", "CHECKOUT STARTED", 5),
    (ORDER, "order_completed", "Order Completed", 84),
    (ORDER, "purchase", "Purchase", 6),
    (ORDER, "order_completed", "ORDER-COMPLETED", 4),
    (ORDER, "order_placed", "Order Placed", 4),
    (ORDER, "order_completed", None, 2),
    (REFUND, "order_refunded", "Order Refunded", 100),
]

DOMAINS = ["example.com", "mail.test", "shop.test", "inbox.test", "post.test", "web.test"]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Donald", "Frances"]
CONTEXTS = [
    '{"library": {"name": "analytics.js", "version": "2.11.1"}, "ip": "203.0.113.7"}',
    '{"library": {"name": "customerio-ios", "version": "3.1.0"}, "device": {"type": "ios"}}',
    '{"library": {"name": "customerio-android", "version": "4.0.2"}}',
]

_HEX4 = pl.Series([f"{i:04x}" for i in range(65536)])
_M53 = 1.0 / (1 << 53)


class Rng:
    """Counter-based uniform numbers: stream s of row key k -> u in (0, 1)."""

    def __init__(self, seed: int):
        self.seed = seed

    def u(self, key: str | pl.Expr, stream: int) -> pl.Expr:
        k = pl.col(key) if isinstance(key, str) else key
        h = k.hash((self.seed * 1_000_003 + stream * 7_919) % (1 << 63))
        return ((h // 2048).cast(pl.Float64) + 0.5) * _M53

    def geometric(self, key: str, stream: int, mean: float) -> pl.Expr:
        """0, 1, 2, ... with the given mean."""
        q = mean / (mean + 1.0)
        return (self.u(key, stream).log() / pl.lit(q).log()).floor().cast(pl.Int64)

    def normal(self, key: str, stream: int) -> pl.Expr:
        r = (-2.0 * self.u(key, stream).log()).sqrt()
        return r * (6.283185307179586 * self.u(key, stream + 1)).cos()

    def lognormal(self, key: str, stream: int, mu: float, sigma: float) -> pl.Expr:
        return (mu + sigma * self.normal(key, stream)).exp()


def _hex4(values: pl.Series, group: int) -> pl.Series:
    """4 lowercase hex digits: bits 16*group .. 16*group+15 of a UInt64 series."""
    return _HEX4.gather(((values // (65536**group)) % 65536).cast(pl.UInt32))


def _hex(values: pl.Series, groups: int) -> pl.Series:
    """Lowercase hex of the low 16*groups bits of a UInt64 series."""
    v = values.cast(pl.UInt64)
    parts = [pl.lit(_hex4(v, g)) for g in reversed(range(groups))]
    return pl.select(pl.concat_str(parts)).to_series()


def _message_ids(keys: pl.Series, seed: int, salt: int) -> pl.Series:
    """UUID-shaped ids: 80 random bits, then the 48-bit row key (unique by construction)."""
    k = keys.cast(pl.UInt64)
    h1 = k.hash(seed * 31 + salt)
    h2 = (k + 0x5DEECE66D).hash(seed * 37 + salt)
    # the row key (+ salt) times an odd number mod 2^48: a bijection, so ids stay unique
    kk = (k + salt * (1 << 40)) * 0x9E3779B97F4A7C15 % (1 << 48)
    groups = [
        [_hex4(h1, 3), _hex4(h1, 2)],
        [_hex4(h1, 1)],
        [_hex4(h1, 0)],
        [_hex4(h2, 0)],
        [_hex4(kk, 2), _hex4(kk, 1), _hex4(kk, 0)],
    ]
    exprs = []
    for i, group in enumerate(groups):
        if i:
            exprs.append(pl.lit("-"))
        exprs += [pl.lit(part) for part in group]
    return pl.select(pl.concat_str(exprs)).to_series()


def _num(value: pl.Expr, as_string: pl.Expr) -> pl.Expr:
    """A JSON number, or the same number as a JSON string when `as_string`."""
    text = value.round(2).cast(pl.String)
    return pl.when(as_string).then(pl.concat_str([pl.lit('"'), text, pl.lit('"')])).otherwise(text)


def _user_id(pidx: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit("cus_"), pidx.cast(pl.String).str.zfill(7)])


def _anonymous_id(pidx: pl.Expr, seed: int) -> pl.Expr:
    return pl.concat_str([pl.lit("anon_"), pidx.hash(seed * 101 + 7).cast(pl.String).str.zfill(20)])


def people(n: int, seed: int) -> pl.DataFrame:
    """One row per person: segment, first-seen offset, identity mode and email."""
    r = Rng(seed)
    p = pl.DataFrame({"pidx": pl.int_range(n, eager=True, dtype=pl.UInt64)})
    p = p.with_columns(
        segment=pl.when(r.u("pidx", 1) < 0.18)
        .then(2)  # buyer
        .when(r.u("pidx", 1) < 0.42)
        .then(1)  # cart only
        .otherwise(0),  # browse only
        # seen first somewhere in the window; older is likelier
        first_off=-(r.u("pidx", 2).sqrt() * WINDOW).cast(pl.Int64),
        # identity: 0 identified from the start, 1 anonymous until a later identify, 2 never
        mode=pl.when(r.u("pidx", 3) < 0.01)
        .then(2)
        .when(r.u("pidx", 3) < 0.09)
        .then(1)
        .otherwise(0),
    ).with_columns(
        id_off=pl.when(pl.col("mode") == 1)
        .then(pl.col("first_off") - (pl.col("first_off") * r.u("pidx", 4)).cast(pl.Int64))
        .otherwise(pl.col("first_off")),
    )
    # email, written as JSON string content (escapes included)
    base_of = (
        pl.when(r.u("pidx", 5) < 0.012).then(pl.col("pidx") // 2 * 2).otherwise(pl.col("pidx"))
    )
    local = pl.concat_str([pl.lit("user"), base_of.cast(pl.String)])
    domain = pl.lit(pl.Series(DOMAINS)).gather((base_of % len(DOMAINS)).cast(pl.UInt32))
    email = pl.concat_str([local, pl.lit("@"), domain])
    cu = r.u("pidx", 6)
    email = (
        pl.when(cu < 0.70)
        .then(email)
        .when(cu < 0.88)
        .then(email.str.to_titlecase())
        .otherwise(email.str.to_uppercase())
    )
    wu = r.u("pidx", 7)
    email = (
        pl.when(wu < 0.04)
        .then(pl.concat_str([pl.lit("  "), email, pl.lit(" ")]))
        .when(wu < 0.06)
        .then(pl.concat_str([pl.lit("\\t"), email, pl.lit("\\r\\n")]))
        .otherwise(email)
    )
    ku = r.u("pidx", 8)
    email = (
        pl.when(ku < 0.004)
        .then(pl.lit("n/a"))
        .when(ku < 0.007)
        .then(pl.concat_str([local, pl.lit("@")]))
        .when(ku < 0.010)
        .then(pl.concat_str([local, pl.lit(" @ "), domain]))
        .when(ku < 0.016)
        .then(pl.lit(""))
        .otherwise(email)
    )
    p = p.with_columns(
        user_id=_user_id(pl.col("pidx")),
        anonymous_id=_anonymous_id(pl.col("pidx"), seed),
    )
    p = p.with_columns(
        email=email,
        first_name=pl.lit(pl.Series(FIRST_NAMES)).gather(
            (pl.col("pidx") % len(FIRST_NAMES)).cast(pl.UInt32)
        ),
    )
    # 0.3% arrive already hashed (64 hex, upper case)
    hashed = r.u("pidx", 9) < 0.003
    if p.height:
        keys = p["pidx"]
        digest = pl.select(
            pl.concat_str(
                [pl.lit(_hex(keys.hash(seed * 53 + i), 4)) for i in range(4)]
            ).str.to_uppercase()
        ).to_series()
        p = p.with_columns(email=pl.when(hashed).then(pl.lit(digest)).otherwise("email"))
    return p


def _variant_table() -> pl.DataFrame:
    rows = []
    for kind in range(6):
        vs = [v for v in VARIANTS if v[0] == kind]
        total = sum(v[3] for v in vs)
        acc = 0
        for i, (_, event, text, w) in enumerate(vs):
            acc += w
            rows.append((kind, i, event, text, acc / total))
    return pl.DataFrame(
        rows,
        schema={
            "kind": pl.Int8,
            "variant": pl.Int8,
            "event": pl.String,
            "event_text": pl.String,
            "cum": pl.Float64,
        },
        orient="row",
    )


def _name_events(df: pl.DataFrame, r: Rng, stream: int) -> pl.DataFrame:
    """Pick an (event, event_text) spelling per row by kind."""
    table = _variant_table()
    df = df.with_columns(_vu=r.u("key", stream))
    variant = pl.lit(0, dtype=pl.Int8)
    for kind in range(6):
        cums = table.filter(pl.col("kind") == kind)["cum"].to_list()
        expr = pl.lit(len(cums) - 1, dtype=pl.Int8)
        for i in reversed(range(len(cums) - 1)):
            expr = pl.when(pl.col("_vu") < cums[i]).then(pl.lit(i, dtype=pl.Int8)).otherwise(expr)
        variant = pl.when(pl.col("kind") == kind).then(expr).otherwise(variant)
    df = df.with_columns(variant=variant).drop("_vu")
    return df.join(table.drop("cum"), on=["kind", "variant"], how="left").drop("variant")


def _expand(df: pl.DataFrame, count: str) -> pl.DataFrame:
    """Repeat each row `count` times (0 drops it)."""
    df = df.filter(pl.col(count) > 0)
    idx = pl.Series("_i", range(df.height), dtype=pl.UInt32)
    rep = idx.repeat_by(df[count].cast(pl.UInt32)).explode()
    return df.select(pl.all().gather(rep))


def _with_keys(df: pl.DataFrame, offset: int) -> pl.DataFrame:
    return df.with_columns(key=pl.int_range(pl.len(), dtype=pl.UInt64) + offset)


def base_tracks(p: pl.DataFrame, seed: int, key_offset: int = 0) -> pl.DataFrame:
    r = Rng(seed)
    s = r  # alias for readability below

    # browse: everyone, more for shoppers
    mean = pl.when(pl.col("segment") == 2).then(10.0).when(pl.col("segment") == 1).then(8.0)
    mean = mean.otherwise(5.5)
    q = mean / (mean + 1.0)
    b = p.select(
        "pidx",
        "first_off",
        n=(r.u("pidx", 20).log() / q.log()).floor().cast(pl.Int64) + 1,
    )
    b = _with_keys(_expand(b, "n"), key_offset)
    b = b.select(
        "pidx",
        kind=pl.lit(BROWSE, dtype=pl.Int8),
        t_off=(pl.col("first_off") * r.u("key", 21)).cast(pl.Int64),
        properties=pl.concat_str(
            [
                pl.lit('{"product_id": "p'),
                (pl.col("key") % 5000).cast(pl.String),
                pl.lit('", "url": "https://shop.test/p/'),
                (pl.col("key") % 5000).cast(pl.String),
                pl.lit('"}'),
            ]
        ),
    )

    # cart sessions: shoppers only; buyers' session counts are long-tailed (Pareto)
    sess = p.filter(pl.col("segment") > 0).select(
        "pidx",
        "segment",
        "first_off",
        n=pl.when(pl.col("segment") == 2)
        .then(pl.min_horizontal(r.u("pidx", 30).pow(-1 / 1.5).floor(), pl.lit(60.0)))
        .otherwise(1 + r.geometric("pidx", 31, 0.7).cast(pl.Float64))
        .cast(pl.Int64),
    )
    sess = _with_keys(_expand(sess, "n"), key_offset)
    sess = sess.with_columns(
        start=(pl.col("first_off") * s.u("key", 32)).cast(pl.Int64) - 3600 * US,
        converts=(pl.col("segment") == 2) & (s.u("key", 33) < 0.75),
        n_add=1 + s.geometric("key", 34, 0.8),
    ).with_columns(start=pl.max_horizontal("start", "first_off"))

    # adds
    a = _with_keys(_expand(sess.select("pidx", "key", "start", "n_add"), "n_add"), key_offset)
    a = a.rename({"key": "skey"}).with_columns(key=pl.int_range(pl.len(), dtype=pl.UInt64))
    a = a.with_columns(
        price=r.lognormal("key", 40, 2.9, 0.7).round(2),
        quantity=1 + r.geometric("key", 42, 0.25),
        pu=r.u("key", 43),
        qu=r.u("key", 44),
    )
    price_json = (
        pl.when(pl.col("pu") < 0.003)
        .then(pl.lit('"n/a"'))
        .when(pl.col("pu") < 0.006)
        .then(pl.concat_str([pl.lit('"$'), pl.col("price").cast(pl.String), pl.lit('"')]))
        .otherwise(_num(pl.col("price"), pl.col("pu") > 0.90))
    )
    qty_json = (
        pl.when(pl.col("qu") < 0.20)
        .then(pl.lit(""))
        .otherwise(
            pl.concat_str([pl.lit(', "quantity": '), _num(pl.col("quantity"), pl.col("qu") > 0.95)])
        )
    )
    adds = a.select(
        "pidx",
        kind=pl.lit(ADD, dtype=pl.Int8),
        t_off=pl.col("start") + (r.u("key", 45) * 20 * 60 * US).cast(pl.Int64),
        properties=pl.concat_str(
            [
                pl.lit('{"cart_id": "c'),
                pl.col("skey").cast(pl.String),
                pl.lit('", "product_id": "p'),
                (pl.col("key") % 5000).cast(pl.String),
                pl.lit('", "price": '),
                price_json,
                qty_json,
                pl.lit(', "currency": "USD"}'),
            ]
        ),
    )
    items = a.group_by("skey").agg(
        items=(pl.col("price") * pl.col("quantity")).sum(), first_price=pl.col("price").first()
    )
    sess = sess.join(items, left_on="key", right_on="skey", how="left")

    # removes: 15% of sessions take one unit of their first item out again
    rem = sess.filter(s.u("key", 50) < 0.15).select(
        "pidx",
        kind=pl.lit(REMOVE, dtype=pl.Int8),
        t_off=pl.col("start") + 21 * 60 * US,
        properties=pl.concat_str(
            [
                pl.lit('{"cart_id": "c'),
                pl.col("key").cast(pl.String),
                pl.lit('", "price": '),
                pl.col("first_price").cast(pl.String),
                pl.lit(', "quantity": 1}'),
            ]
        ),
    )

    # checkouts: most converting sessions, some abandoned ones
    cu = s.u("key", 60)
    chk = sess.filter(pl.when(pl.col("converts")).then(cu < 0.9).otherwise(cu < 0.45))
    vu = s.u("key", 61)
    total = (pl.col("items") * 1.08).round(2)
    value_json = (
        pl.when(vu < 0.55)
        .then(pl.concat_str([pl.lit(', "value": '), _num(total, vu < 0.05)]))
        .when(vu < 0.80)
        .then(pl.concat_str([pl.lit(', "revenue": '), _num(total, vu < 0.60)]))
        .otherwise(pl.lit(""))
    )
    chk = chk.select(
        "pidx",
        kind=pl.lit(CHECKOUT, dtype=pl.Int8),
        t_off=pl.col("start") + (22 * 60 * US) + (s.u("key", 62) * 8 * 60 * US).cast(pl.Int64),
        properties=pl.concat_str(
            [
                pl.lit('{"order_id": "ord_'),
                pl.col("key").cast(pl.String),
                pl.lit('"'),
                value_json,
                pl.lit(', "currency": "USD"}'),
            ]
        ),
    )

    # orders: long-tailed values; keys and types vary; 3% have no order_id
    o = sess.filter(pl.col("converts")).select(
        "pidx",
        "key",
        t_off=pl.col("start") + (31 * 60 * US) + (s.u("key", 70) * 30 * 60 * US).cast(pl.Int64),
        value=s.lognormal("key", 71, 3.7, 0.9).round(2),
        has_id=s.u("key", 73) >= 0.03,
        vu=s.u("key", 74),
    )
    vu = pl.col("vu")
    amount = (
        pl.when(vu < 0.70)
        .then(pl.concat_str([pl.lit('"total": '), _num(pl.col("value"), vu < 0.07)]))
        .when(vu < 0.85)
        .then(pl.concat_str([pl.lit('"revenue": '), _num(pl.col("value"), vu < 0.78)]))
        .when(vu < 0.92)
        .then(pl.concat_str([pl.lit('"value": '), _num(pl.col("value"), vu < 0.86)]))
        .when(vu < 0.97)
        .then(pl.concat_str([pl.lit('"subtotal": '), _num(pl.col("value"), vu < 0.93)]))
        .otherwise(pl.lit('"total": "n/a"'))
    )
    order_id = pl.concat_str(
        [pl.lit('"order_id": "ord_'), pl.col("key").cast(pl.String), pl.lit('", ')]
    )
    o = o.with_columns(
        properties=pl.concat_str(
            [
                pl.lit("{"),
                pl.when(pl.col("has_id")).then(order_id).otherwise(pl.lit("")),
                amount,
                pl.lit(', "currency": "USD", "products": [{"product_id": "p1", "quantity": 1}]}'),
            ]
        )
    )
    orders = o.select(
        "pidx", kind=pl.lit(ORDER, dtype=pl.Int8), t_off="t_off", properties="properties"
    )
    # 0.5% of orders are sent again later (same order_id, new message)
    resent = o.filter(pl.col("has_id") & (s.u("key", 75) < 0.005)).select(
        "pidx",
        kind=pl.lit(ORDER, dtype=pl.Int8),
        t_off=pl.col("t_off") + HOUR + (s.u("key", 76) * 10 * DAY).cast(pl.Int64),
        properties="properties",
    )
    # refunds: 4% of orders with an id, 1-30 days later; half give no amount (whole order)
    ru = s.u("key", 80)
    ref = o.filter(pl.col("has_id") & (ru < 0.04)).select(
        "pidx",
        kind=pl.lit(REFUND, dtype=pl.Int8),
        t_off=pl.col("t_off") + DAY + (s.u("key", 81) * 29 * DAY).cast(pl.Int64),
        properties=pl.concat_str(
            [
                pl.lit('{"order_id": "ord_'),
                pl.col("key").cast(pl.String),
                pl.lit('"'),
                pl.when(ru < 0.02)
                .then(
                    pl.concat_str(
                        [
                            pl.lit(', "total": '),
                            (pl.col("value") * s.u("key", 82)).round(2).cast(pl.String),
                        ]
                    )
                )
                .otherwise(pl.lit("")),
                pl.lit("}"),
            ]
        ),
    )

    ev = pl.concat([b, adds, rem, chk, orders, resent, ref]).filter(pl.col("t_off") <= 0)
    return ev


def _finish_tracks(
    ev: pl.DataFrame, p: pl.DataFrame, seed: int, as_of_us: int, key_offset: int, salt: int
) -> pl.DataFrame:
    """Arrival times and duplicate deliveries, then (in arrival order) names, identity, ids,
    context. Everything but received_at derives from the row key, so a duplicate delivery is
    the same message: same id, name, identity and payload, later received_at."""
    r = Rng(seed * 7 + salt)
    ev = _with_keys(ev, key_offset)
    lag = (
        pl.when(r.u("key", 3) < 0.02)  # late arrivals: 1 h to 3 d
        .then(HOUR + (r.u("key", 4) * 71 * HOUR).cast(pl.Int64))
        .otherwise(20_000 + (r.u("key", 5) * 3 * US).cast(pl.Int64))
    )
    ev = ev.with_columns(received=pl.col("t_off") + as_of_us + lag)
    dup = ev.filter(r.u("key", 10) < 0.01).with_columns(
        received=pl.col("received") + US + (r.u("key", 11) * 6 * HOUR).cast(pl.Int64)
    )
    ev = pl.concat([ev, dup]).sort("received")  # sorted while the frame is still narrow

    ev = _name_events(ev, r, 1)
    pidx = ev["pidx"]
    ev = ev.with_columns(
        mode=p["mode"].gather(pidx),
        id_off=p["id_off"].gather(pidx),
        _uid=p["user_id"].gather(pidx),
        _aid=p["anonymous_id"].gather(pidx),
        id=_message_ids(ev["key"], seed, salt),
    )
    anonymous = (pl.col("mode") == 2) | (
        (pl.col("mode") == 1) & (pl.col("t_off") < pl.col("id_off"))
    )
    ts = pl.col("t_off") + as_of_us
    context = pl.lit(pl.Series(CONTEXTS)).gather((pl.col("pidx") % len(CONTEXTS)).cast(pl.UInt32))
    return ev.select(
        "id",
        "event",
        "event_text",
        user_id=pl.when(anonymous).then(pl.lit(None, dtype=pl.String)).otherwise(pl.col("_uid")),
        anonymous_id=pl.when(anonymous | (r.u("key", 6) < 0.6))
        .then(pl.col("_aid"))
        .otherwise(pl.lit(None, dtype=pl.String)),
        timestamp=pl.when(r.u("key", 7) < 0.004)
        .then(pl.lit(None, dtype=pl.Int64))
        .otherwise(ts)
        .pipe(_to_ts),
        received_at=pl.col("received").pipe(_to_ts),
        # a few malformed payloads
        properties=pl.when(r.u("key", 9) < 0.0005)
        .then(pl.lit('{"price": 1'))
        .otherwise("properties"),
        context=pl.when(r.u("key", 8) < 0.1).then(pl.lit(None, dtype=pl.String)).otherwise(context),
    )


def _to_ts(e: pl.Expr) -> pl.Expr:
    return pl.from_epoch(e, time_unit="us").dt.replace_time_zone("UTC")


def _traits(email: pl.Expr | None, first_name: pl.Expr) -> pl.Expr:
    parts = [pl.lit('{"first_name": "'), first_name, pl.lit('"')]
    if email is not None:
        parts += [pl.lit(', "email": "'), email, pl.lit('"')]
    return pl.concat_str([*parts, pl.lit("}")])


def base_identifies(p: pl.DataFrame, seed: int, as_of_us: int, key_offset: int = 0) -> pl.DataFrame:
    r = Rng(seed * 11 + 3)
    known = p.filter(pl.col("mode") < 2)
    first = known.select(
        "pidx",
        t_off="id_off",
        traits=_traits(pl.col("email"), pl.col("first_name")),
    )
    # 15% identify again later: same email re-cased, a new email, an empty or invalid one, or
    # traits without email
    again = known.filter(r.u("pidx", 1) < 0.15)
    vu = r.u("pidx", 2)
    local = pl.concat_str([pl.lit("user"), pl.col("pidx").cast(pl.String)])
    new_email = (
        pl.when(vu < 0.40)
        .then(pl.col("email").str.to_lowercase())
        .when(vu < 0.70)
        .then(pl.concat_str([local, pl.lit(".new@Example.com ")]))
        .when(vu < 0.80)
        .then(pl.lit("   "))
        .when(vu < 0.85)
        .then(pl.lit("nobody"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    again = again.select(
        "pidx",
        t_off=pl.col("id_off") - (pl.col("id_off") * r.u("pidx", 3)).cast(pl.Int64),
        traits=pl.when(new_email.is_null())
        .then(
            pl.concat_str(
                [pl.lit('{"phone": "+1555'), pl.col("pidx").cast(pl.String), pl.lit('"}')]
            )
        )
        .otherwise(_traits(new_email, pl.col("first_name"))),
    )
    idf = _with_keys(pl.concat([first, again]), key_offset)
    late = r.u("key", 4) < 0.01
    ts = pl.col("t_off") + as_of_us
    idf = idf.with_columns(
        user_id=_user_id(pl.col("pidx")),
        anonymous_id=_anonymous_id(pl.col("pidx"), seed),
        timestamp=pl.when(r.u("key", 5) < 0.003).then(pl.lit(None, dtype=pl.Int64)).otherwise(ts),
        received_at=ts
        + pl.when(late)
        .then(HOUR + (r.u("key", 6) * 47 * HOUR).cast(pl.Int64))
        .otherwise(50_000 + (r.u("key", 7) * 2 * US).cast(pl.Int64)),
        context=pl.lit(CONTEXTS[0]),
    )
    idf = idf.with_columns(id=_message_ids(idf["key"], seed, 9))
    dup = idf.filter(r.u("key", 8) < 0.005).with_columns(
        received_at=pl.col("received_at") + US + (r.u("key", 9) * 3 * HOUR).cast(pl.Int64)
    )
    return _identify_columns(pl.concat([idf, dup]))


def _identify_columns(idf: pl.DataFrame) -> pl.DataFrame:
    return idf.select(
        "id",
        "user_id",
        "anonymous_id",
        pl.col("timestamp").pipe(_to_ts),
        pl.col("received_at").pipe(_to_ts),
        "traits",
        "context",
    ).sort("received_at")


def next_hour(p: pl.DataFrame, seed: int, as_of_us: int, events: int):
    """~`events` new track calls (and a few identifies) in the hour after as_of."""
    r = Rng(seed * 13 + 5)
    n = p.height
    ev = pl.DataFrame({"key": pl.int_range(events, eager=True, dtype=pl.UInt64)})
    ku = r.u("key", 1)
    ev = ev.with_columns(
        pidx=(r.u("key", 2) * n).floor().cast(pl.UInt64),
        kind=pl.when(ku < 0.55)
        .then(BROWSE)
        .when(ku < 0.78)
        .then(ADD)
        .when(ku < 0.80)
        .then(REMOVE)
        .when(ku < 0.88)
        .then(CHECKOUT)
        .otherwise(ORDER)
        .cast(pl.Int8),
        # 5% happened in the day before as_of but arrive now (late)
        t_off=pl.when(r.u("key", 3) < 0.05)
        .then(-(r.u("key", 4) * DAY).cast(pl.Int64))
        .otherwise(1 + (r.u("key", 5) * HOUR).cast(pl.Int64)),
        price=r.lognormal("key", 6, 2.9, 0.7).round(2),
        value=r.lognormal("key", 8, 3.7, 0.9).round(2),
    )
    props = (
        pl.when(pl.col("kind") == BROWSE)
        .then(pl.lit('{"product_id": "p42"}'))
        .when(pl.col("kind").is_in([ADD, REMOVE]))
        .then(
            pl.concat_str(
                [pl.lit('{"price": '), _num(pl.col("price"), r.u("key", 10) < 0.1), pl.lit("}")]
            )
        )
        .when(pl.col("kind") == CHECKOUT)
        .then(pl.concat_str([pl.lit('{"value": '), pl.col("value").cast(pl.String), pl.lit("}")]))
        .otherwise(
            pl.concat_str(
                [
                    pl.lit('{"order_id": "ord_nh'),
                    pl.lit(str(seed)),
                    pl.lit("_"),
                    pl.col("key").cast(pl.String),
                    pl.lit('", "total": '),
                    pl.col("value").cast(pl.String),
                    pl.lit("}"),
                ]
            )
        )
    )
    ev = ev.select("pidx", "kind", "t_off", properties=props)
    # received after as_of: shift the received time past it when the event is late
    tracks = _finish_tracks(ev.drop("key", strict=False), p, seed, as_of_us, 1 << 40, 77)
    # all arrive in the hour after as_of (the late ones happened in the day before it)
    as_of = pl.lit(as_of_us).pipe(_to_ts)
    tracks = tracks.with_columns(
        received_at=pl.when(pl.col("received_at") <= as_of)
        .then(as_of + (pl.col("received_at") - (as_of - pl.duration(days=1))) / 24)
        .otherwise(pl.min_horizontal("received_at", as_of + pl.duration(minutes=61)))
    ).sort("received_at")

    m = max(events // 30, 1)
    idf = pl.DataFrame({"key": pl.int_range(m, eager=True, dtype=pl.UInt64)}).with_columns(
        pidx=(r.u("key", 20) * n).floor().cast(pl.UInt64),
        t_off=1 + (r.u("key", 21) * HOUR).cast(pl.Int64),
    )
    idf = idf.with_columns(
        email=p["email"].gather(idf["pidx"]),
        first_name=p["first_name"].gather(idf["pidx"]),
    ).with_columns(
        email=pl.when(r.u("key", 22) < 0.5)
        .then(pl.col("email").str.to_uppercase())
        .otherwise(
            pl.concat_str([pl.lit("changed"), pl.col("pidx").cast(pl.String), pl.lit("@mail.test")])
        )
    )
    ts = pl.col("t_off") + as_of_us
    idf = idf.with_columns(
        user_id=_user_id(pl.col("pidx")),
        anonymous_id=_anonymous_id(pl.col("pidx"), seed),
        timestamp=ts,
        received_at=ts + 100_000,
        traits=_traits(pl.col("email"), pl.col("first_name")),
        context=pl.lit(CONTEXTS[1]),
    )
    idf = idf.with_columns(id=_message_ids(idf["key"] + (1 << 40), seed, 79))
    return tracks, _identify_columns(idf)


def _write(
    df: pl.DataFrame, folder: Path, action: int, kind: str, files: int, first: int
) -> list[Path]:
    """Like a Pipelines destination: consecutive spans of arrival order (`df` is sorted by
    received_at), one file each, written two at a time."""
    folder.mkdir(parents=True, exist_ok=True)
    files = max(1, min(files, df.height or 1))
    size = -(-df.height // files)

    def write(i: int) -> Path:
        path = folder / f"{DEST}.{action}.{first + i}.{kind}.parquet"
        df.slice(i * size, size).write_parquet(path, compression="zstd", statistics=True)
        return path

    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(write, range(files)))


def _as_of_us(text: str) -> int:
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    dt = datetime.fromisoformat(t)
    dt = dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
    return int(dt.timestamp()) * US + dt.microsecond


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate Customer.io Pipelines tracks/identifies Parquet files.",
        epilog="example: python bench/generate.py --people 1000000 --as-of 2026-11-28T12:00:00Z",
    )
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2026-11-28T12:00:00Z")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=None, help="default bench/data/base or next_hour"
    )
    parser.add_argument("--files", type=int, default=8, help="track files (identifies: a quarter)")
    parser.add_argument("--next-hour", action="store_true", help="the hour after --as-of only")
    parser.add_argument("--next-hour-events", type=int, default=10_000)
    parser.add_argument(
        "--chunk-people",
        type=int,
        default=0,
        help="base data only: generate and write this many people at a time (memory grows "
        "with the chunk, ~4.7 GB per million people); 0 = all at once",
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    as_of_us = _as_of_us(args.as_of)
    here = Path(__file__).resolve().parent / "data"
    out = args.out or here / ("next_hour" if args.next_hour else "base")
    for sub in ("tracks", "identifies"):
        shutil.rmtree(out / sub, ignore_errors=True)

    p = people(args.people, args.seed)
    if args.next_hour:
        tracks, identifies = next_hour(p, args.seed, as_of_us, args.next_hour_events)
        chunks = [(tracks, identifies)]
        first = 1001
    else:
        chunks = _base_chunks(p, args.seed, as_of_us, args.chunk_people or args.people)
        first = 1
    written: list[Path] = []
    track_rows = identify_rows = 0
    for number, (tracks, identifies) in enumerate(chunks):
        # chunk files follow each other in position, like a destination's later batches
        offset = first + number * args.files
        written += _write(tracks, out / "tracks", ACTION_TRACK, "track", args.files, offset)
        written += _write(
            identifies,
            out / "identifies",
            ACTION_IDENTIFY,
            "identify",
            max(1, args.files // 4),
            offset,
        )
        track_rows += tracks.height
        identify_rows += identifies.height
        del tracks, identifies
        print(
            f"  written {len(written)} file(s), {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
    seconds = time.perf_counter() - started
    print(
        f"people {args.people:,}  tracks {track_rows:,} rows  identifies "
        f"{identify_rows:,} rows  files {len(written)} in {out}  {seconds:.1f} s"
    )
    return 0


def _base_chunks(p: pl.DataFrame, seed: int, as_of_us: int, size: int):
    """The base data, `size` people at a time (keys apart by 2^32 per chunk, so message ids
    stay unique); one chunk of everyone gives exactly the unchunked data."""
    for number, start in enumerate(range(0, p.height, max(1, size))):
        part = p.slice(start, size)
        key_offset = number << 32
        ev = base_tracks(part, seed, key_offset)
        tracks = _finish_tracks(ev, p, seed, as_of_us, key_offset, 1)
        del ev
        yield tracks, base_identifies(part, seed, as_of_us, key_offset)


if __name__ == "__main__":
    sys.exit(main())
