"""The README's "Point it at your Customer.io data" commands, run as a user types them.

The commands are read out of README.md (only the file paths are swapped for the shape's
own) and run by the real `dbt` executable in a shell, on the demo seeds' events written in
every shape Customer.io's storage destinations write: JSON lines with camelCase,
snake_case or mixed keys, Parquet, CSV, payloads as objects, as text or flattened into
`properties_<key>` columns, several files unioned by name, empty files. Each build must
pass whole (unit tests included) and give exactly the demo build's audience tables.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import zip_longest
from pathlib import Path

import duckdb
import pytest

from tests.harness.dbt import AUDIENCES, DEMO_AS_OF, ROOT, Build, new_build

SEEDS = ROOT / "seeds"
CAMEL = {"id": "messageId", "user_id": "userId", "anonymous_id": "anonymousId"}
CAMEL["received_at"] = "receivedAt"
#: (table, the file name's call type, the payload column)
CALLS = (("tracks", "track", "properties"), ("identifies", "identify", "traits"))


def readme_commands() -> list[str]:
    """The shell lines of the README section's code block, verbatim (comments dropped)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Point it at your Customer.io data", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


FILES_COMMAND, SCHEMA_COMMAND = readme_commands()
README_GLOBS = ("landing/*.track.parquet", "landing/*.identify.parquet")


def run_readme_command(command: str, build: Build, cwd: Path) -> str:
    """Run one README line in bash from `cwd`, as a user in a shell would; dbt's summary line."""
    env = {
        **os.environ,
        **build.env(),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DBT_PROJECT_DIR": str(ROOT),  # a user runs from the project; the files sit elsewhere here
        "DBT_TARGET_PATH": str(build.target_path),
        "DBT_LOG_PATH": str(build.workdir / "logs"),
        "CIO_AS_OF": DEMO_AS_OF,  # the demo's T, so the audiences compare with the demo build's
    }
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    summary = re.findall(r"Done\. PASS=\d+ WARN=\d+ ERROR=\d+ SKIP=\d+.*", done.stdout)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert summary and "ERROR=0 SKIP=0" in summary[-1], summary
    return summary[-1]


def audiences(build: Build) -> dict[str, list[tuple]]:
    return {t: build.query(f"select * from {t} order by all").rows() for t in AUDIENCES}


# --- the demo events, written in each shape -------------------------------------------------


def seed_events() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding the demo seeds as `tracks` and `identifies` (all text)."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for table in ("tracks", "identifies"):
        path = SEEDS / f"customerio_demo_{table}.csv"
        con.execute(
            f"create table {table} as select * from read_csv(?, header = true, all_varchar = true)",
            [str(path)],
        )
    return con


def copy(con: duckdb.DuckDBPyConnection, sql: str, path: Path, fmt: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"parquet": "format parquet", "csv": "format csv, header", "json": "format json"}
    options["json.gz"] = "format json, compression gzip"
    con.execute(f"copy ({sql}) to '{path}' ({options[fmt]})")


def flattened(con: duckdb.DuckDBPyConnection, table: str, payload: str) -> str:
    """`table` with its payload flattened into `<payload>_<key>` columns, as CSV/Parquet loads do.

    A key whose values are all JSON numbers becomes a DOUBLE column, any other a text one;
    a payload that is not a JSON object (malformed on purpose in the demo) flattens to nulls.
    """
    valid = f"case when json_valid({payload}) then {payload} end"  # CASE: evaluated in order
    obj = f"case when json_type({valid}) = 'OBJECT' then {valid} end"
    keys = con.sql(
        f"select key, bool_and(json_type(obj, '$.\"' || key || '\"') "
        "in ('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')) as numeric "
        f"from (select obj, unnest(json_keys(obj)) as key from (select {obj} as obj from {table})) "
        "group by key order by key"
    ).fetchall()
    columns = []
    for key, numeric in keys:
        value = f"json_extract_string({obj}, '$.\"{key}\"')"
        columns.append(
            f"{'cast(' + value + ' as double)' if numeric else value} as {payload}_{key}"
        )
    return f"select * exclude ({payload}), {', '.join(columns)} from {table}"


def camel_json(table: str, payload: str) -> str:
    """JSON lines as sent over the API: camelCase ids, `event` the name as sent, payload an object."""
    renamed = ", ".join(f'{snake} as "{camel}"' for snake, camel in CAMEL.items())
    event = "coalesce(nullif(trim(event_text), ''), event) as event, " if table == "tracks" else ""
    excluded = ", ".join([*CAMEL, payload, *(["event", "event_text"] if table == "tracks" else [])])
    as_object = (
        f"case when json_valid({payload}) then cast({payload} as json) else to_json({payload}) end"
    )
    return f"select * exclude ({excluded}), {event}{renamed}, {as_object} as {payload} from {table}"


def write_parquet(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    """Typed timestamps, payloads as JSON text; three files a batch: one with `context`, one
    without it but with an extra column, one empty (union by name)."""
    for table, name, _ in CALLS:
        typed = (
            f'select * replace (try_cast("timestamp" as timestamptz) as "timestamp", '
            f"try_cast(received_at as timestamptz) as received_at) from {table}"
        )
        copy(con, f"{typed} where id < 'm20'", landing / f"2184.13699.1.{name}.parquet", "parquet")
        copy(
            con,
            f"select * exclude (context), 'x' as extra from ({typed}) where id >= 'm20'",
            landing / f"2184.13699.2.{name}.parquet",
            "parquet",
        )
        copy(con, f"{typed} where false", landing / f"2184.13699.3.{name}.parquet", "parquet")


def write_flat(fmt: str) -> Callable[[duckdb.DuckDBPyConnection, Path], None]:
    def write(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
        for table, name, payload in CALLS:
            copy(con, flattened(con, table, payload), landing / f"2184.1.1.{name}.{fmt}", fmt)

    return write


def write_csv(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
    """Payloads as JSON text; a second, empty (zero-byte) file in the batch."""
    for table, name, _ in CALLS:
        copy(con, f"select * from {table}", landing / f"2184.1.1.{name}.csv", "csv")
        (landing / f"2184.1.2.{name}.csv").touch()


def write_json(style: str) -> Callable[[duckdb.DuckDBPyConnection, Path], None]:
    """JSON lines: camelCase keys with payload objects, snake_case with payload text, or both
    mixed row by row and file by file, with an empty file in the batch."""

    def write(con: duckdb.DuckDBPyConnection, landing: Path) -> None:
        for table, name, payload in CALLS:
            camel, snake = camel_json(table, payload), f"select * from {table}"
            if style == "camel":  # gzipped, as a storage destination may write them
                copy(con, camel, landing / f"2184.1.1.{name}.json.gz", "json.gz")
            elif style == "snake":
                copy(con, snake, landing / f"2184.1.1.{name}.json", "json")
            else:  # file 1: camelCase and snake_case rows; file 2: snake_case; file 3: empty
                part = "hash(id) % 3"
                camel_part, snake_part = landing / "camel.part", landing / "snake.part"
                copy(con, f"{camel} where {part} = 0", camel_part, "json")
                copy(con, f"{snake} where {part} = 1", snake_part, "json")
                pairs = zip_longest(
                    camel_part.read_text().splitlines(), snake_part.read_text().splitlines()
                )
                lines = [line for pair in pairs for line in pair if line]  # alternating spellings
                (landing / f"2184.1.1.{name}.json").write_text("\n".join(lines) + "\n")
                camel_part.unlink()
                snake_part.unlink()
                copy(con, f"{snake} where {part} = 2", landing / f"2184.1.2.{name}.json", "json")
                (landing / f"2184.1.3.{name}.json").touch()

    return write


SHAPES: dict[str, tuple[str, Callable[[duckdb.DuckDBPyConnection, Path], None]]] = {
    "parquet": ("parquet", write_parquet),
    "parquet-flattened": ("parquet", write_flat("parquet")),
    "csv": ("csv", write_csv),
    "csv-flattened": ("csv", write_flat("csv")),
    "json-camelcase": ("json.gz", write_json("camel")),
    "json-snake_case": ("json", write_json("snake")),
    "json-mixed": ("json", write_json("mixed")),
}


@pytest.fixture(scope="module")
def shape_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Build, Future[str]]]:
    """Every shape written and built by the README's command, two builds at a time (the
    machine's cores; each build is one `dbt` process): shape -> (build, its summary line)."""
    pool = ThreadPoolExecutor(max_workers=2)
    builds = {}
    for shape, (extension, write) in SHAPES.items():
        folder = tmp_path_factory.mktemp(shape)
        with seed_events() as con:
            write(con, folder / "landing")
        command = FILES_COMMAND
        for glob in README_GLOBS:
            assert glob in command, "the README's file command changed: update README_GLOBS"
            command = command.replace(glob, glob.replace(".parquet", f".{extension}"))
        build = new_build(folder / "build")
        # run from the folder holding landing/: relative paths, as in the README
        builds[shape] = (build, pool.submit(run_readme_command, command, build, folder))
    pool.shutdown(wait=False)
    return builds


@pytest.mark.parametrize("shape", SHAPES)
def test_readme_file_command_on_every_shape(
    demo_build: Build, shape_builds: dict[str, tuple[Build, Future[str]]], shape: str
) -> None:
    build, summary = shape_builds[shape]
    print(f"{shape}: {summary.result()}")
    assert audiences(build) == audiences(demo_build)
    assert all(audiences(build).values())


def test_readme_schema_command_on_loaded_tables(demo_build: Build, tmp_path: Path) -> None:
    build = new_build(tmp_path / "build")
    with seed_events() as con:
        con.execute(f"attach '{build.database}' as warehouse")
        con.execute("create schema warehouse.customerio")
        for table in ("tracks", "identifies"):
            con.execute(f"create table warehouse.customerio.{table} as select * from {table}")
    summary = run_readme_command(SCHEMA_COMMAND, build, cwd=tmp_path)
    print(f"loaded tables: {summary}")
    assert audiences(build) == audiences(demo_build)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            '{customerio_tracks: "landing/*.track.parquet", customerio_identifies: "nowhere/*.identify.parquet"}',
            "var customerio_identifies: no file matches 'nowhere/*.identify.parquet'",
        ),
        (
            '{customerio_tracks: "landing/*.track.parquet"}',
            "var customerio_tracks is set but customerio_identifies is not",
        ),
        (
            '{customerio_tracks: "landing/*.track.xlsx", customerio_identifies: "landing/*.identify.parquet"}',
            "var customerio_tracks: 'landing/*.track.xlsx' has extension .xlsx",
        ),
    ],
)
def test_bad_file_vars_are_clear_errors(tmp_path: Path, variables: str, message: str) -> None:
    with seed_events() as con:
        write_parquet(con, tmp_path / "landing")
    (tmp_path / "landing" / "a.track.xlsx").touch()
    build = new_build(tmp_path / "build")
    with pytest.raises(AssertionError) as failed:
        run_readme_command(f"dbt build --vars '{variables}'", build, cwd=tmp_path)
    assert message in str(failed.value)
    assert "Traceback" not in str(failed.value)
