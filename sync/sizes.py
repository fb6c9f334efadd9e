"""Microsoft's matched sizes of each list (the Customer List's Audience Search Size and
Audience Network Size), as the run's one bulk download of the lists shows them: recorded
per run, read back beside the members the sync uploaded (the match rate), with when
Microsoft last changed them. Microsoft sizes a list about 48 h after an upload, and a list
serves only with at least 300 matched people, so a fresh list has no size yet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sync.state import State, utcnow

if TYPE_CHECKING:  # the SDK is imported only by commands that talk to Microsoft
    from sync.bing import RemoteList

#: Below this many matched people Microsoft does not serve a list.
MIN_SERVING = 300


def record(state: State, run_id: str, remote: RemoteList) -> None:
    """The sizes Microsoft reports for `remote` now (nothing when it reports none)."""
    if remote.search_size is None and remote.network_size is None:
        return
    state.wh.execute(
        f"insert into {state.s}.list_sizes values (?, ?, ?, ?, ?)",
        [remote.list_id, run_id, utcnow(), remote.search_size, remote.network_size],
    )


def latest(state: State, list_id: int | None, members: int) -> dict[str, Any] | None:
    """The last sizes seen for the list, the match rate against the `members` the sync
    uploaded, when they were seen, and since when Microsoft reports these values."""
    if list_id is None:
        return None
    rows = state.wh.fetch(
        f"""select search_size, network_size, observed_at from {state.s}.list_sizes
        where list_id = ? order by observed_at desc""",
        [list_id],
    )
    if rows.is_empty():
        return None
    last = rows.row(0, named=True)
    same = rows["search_size"].eq_missing(last["search_size"]) & rows["network_size"].eq_missing(
        last["network_size"]
    )
    unchanged = rows.height if same.all() else int(same.arg_min() or 0)
    search = last["search_size"]
    return {
        "search_size": search,
        "network_size": last["network_size"],
        "match_rate": round(search / members, 3) if search is not None and members else None,
        "serving": search is not None and search >= MIN_SERVING,
        "observed_at": last["observed_at"],
        "changed_at": rows["observed_at"][unchanged - 1],
    }


def matched_text(size: dict[str, Any] | None, missing: str = "-") -> str:
    """The matched size and the match rate as shown, e.g. `5 (56%)`; `missing` before
    Microsoft sized the list."""
    if not size or size["search_size"] is None:
        return missing
    rate = f" ({size['match_rate']:.0%})" if size["match_rate"] is not None else ""
    return f"{size['search_size']:,}{rate}"
