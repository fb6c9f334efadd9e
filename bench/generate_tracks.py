"""The generator's base `tracks` (bench/generate.py): per person, the 180 days before as_of of
browsing, cart sessions with adds and removes, checkouts, orders (long-tailed counts and
values, some without order_id, some re-sent later) and refunds; then, for any batch of events,
arrival times (late arrivals, ~1% duplicate deliveries), the event names in their several
spellings, identity (anonymous before an identify), message ids, malformed payloads, context."""

from __future__ import annotations

import polars as pl
from generate_rng import (
    CONTEXTS,
    DAY,
    HOUR,
    US,
    Rng,
    _expand,
    _message_ids,
    _num,
    _to_ts,
    _with_keys,
)

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
