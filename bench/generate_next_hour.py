"""The generator's next-hour batch (bench/generate.py --next-hour): ~10k new events for the same
people in the hour after as_of (a few of them late arrivals that happened in the day before
it, all received after it) and a few identifies, with keys apart from the base data's."""

from __future__ import annotations

import polars as pl
from generate_people import _identify_columns
from generate_rng import (
    CONTEXTS,
    DAY,
    HOUR,
    Rng,
    _anonymous_id,
    _message_ids,
    _num,
    _to_ts,
    _traits,
    _user_id,
)
from generate_tracks import ADD, BROWSE, CHECKOUT, ORDER, REMOVE, _finish_tracks


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
