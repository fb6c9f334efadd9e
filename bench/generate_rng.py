"""The seeded building blocks every stream of the generator (bench/generate.py) draws on:
counter-based uniform numbers (polars' hash of a row key, one seed per stream, no Python loops
over rows), row repetition and keys, and the encoders of ids, JSON values and timestamps, so
that the people, the tracks and the identifies agree on ids and formats."""

from __future__ import annotations

import polars as pl

US = 1_000_000
HOUR = 3600 * US
DAY = 24 * HOUR
WINDOW = 180 * DAY

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


def _expand(df: pl.DataFrame, count: str) -> pl.DataFrame:
    """Repeat each row `count` times (0 drops it)."""
    df = df.filter(pl.col(count) > 0)
    idx = pl.Series("_i", range(df.height), dtype=pl.UInt32)
    rep = idx.repeat_by(df[count].cast(pl.UInt32)).explode()
    return df.select(pl.all().gather(rep))


def _with_keys(df: pl.DataFrame, offset: int) -> pl.DataFrame:
    return df.with_columns(key=pl.int_range(pl.len(), dtype=pl.UInt64) + offset)


def _to_ts(e: pl.Expr) -> pl.Expr:
    return pl.from_epoch(e, time_unit="us").dt.replace_time_zone("UTC")


def _traits(email: pl.Expr | None, first_name: pl.Expr) -> pl.Expr:
    parts = [pl.lit('{"first_name": "'), first_name, pl.lit('"')]
    if email is not None:
        parts += [pl.lit(', "email": "'), email, pl.lit('"')]
    return pl.concat_str([*parts, pl.lit("}")])
