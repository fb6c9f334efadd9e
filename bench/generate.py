"""The command line of the seeded, vectorised generator of Customer.io Data Pipelines
`tracks` / `identifies` Parquet files (the shape of shared/spec/sources.md), for benchmarking
the audience build: which data to make, and writing it as a destination would.

    python bench/generate.py --people 1000000 --as-of 2026-11-28T12:00:00Z --seed 1
    python bench/generate.py --people 1000000 --as-of 2026-11-28T12:00:00Z --seed 1 --next-hour

The base run writes the 180 days before --as-of to bench/data/base/{tracks,identifies}/;
--next-hour writes ~10k new events for the same people in the hour after --as-of (received after
it, a few of them late arrivals that happened before it) to bench/data/next_hour/, with file
positions that do not clash with the base files, so both can sit in one landing folder.

What is made lives beside this script: generate_people.py (people, emails, identifies),
generate_tracks.py (base tracks and their delivery), generate_next_hour.py (the hour after),
generate_rng.py (the random streams and encoders they share). Messiness, as sources.md lists
it: event names in several spellings, prices sometimes strings or junk, missing quantities,
orders without order_id, orders re-sent later, ~1% duplicate deliveries (same id, later
received_at), late arrivals, null timestamps, anonymous carts identified later (and some
never), emails in mixed case with stray whitespace, invalid / empty emails, pre-hashed emails,
shared emails. Stable for one polars version (polars does not promise its hash across
versions).
"""

import argparse
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

# the generator's modules sit beside this script, which tests also load by its path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_next_hour import next_hour
from generate_people import base_identifies, people
from generate_rng import US
from generate_tracks import _finish_tracks, base_tracks

DEST = 2184  # Pipelines destination id in the file names
ACTION_TRACK, ACTION_IDENTIFY = 13699, 13700


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
