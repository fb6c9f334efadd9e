"""The generator's people (bench/generate.py): one row per person with a segment (browse only,
cart only, buyer), the offset they were first seen at, how they identify (from the start,
anonymous until a later identify, never) and an email as it arrives (mixed case, stray
whitespace, invalid, empty, pre-hashed, shared); and their `identifies` calls, the first one
and, for some, a later one with another email."""

from __future__ import annotations

import polars as pl
from generate_rng import (
    CONTEXTS,
    HOUR,
    US,
    WINDOW,
    Rng,
    _anonymous_id,
    _hex,
    _message_ids,
    _to_ts,
    _traits,
    _user_id,
    _with_keys,
)

DOMAINS = ["example.com", "mail.test", "shop.test", "inbox.test", "post.test", "web.test"]
FIRST_NAMES = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Donald", "Frances"]


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
