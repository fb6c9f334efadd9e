"""Identifier coverage per list: how many of an audience's people carry a usable identifier.

Computed in the warehouse, where the identifiers are, by the `audience_coverage` mart dbt
builds; the sync only reads and shows it. A list whose people lack identifiers syncs but
cannot match, so `sync status` warns when a share is below the mart's `warning_share`
(the dbt var coverage_warning_share)."""

from __future__ import annotations

from typing import Any

from sync.project import Project, model_relation
from sync.warehouse import Warehouse

MART = "audience_coverage"
COLUMNS = ("audience", "identifier", "people", "people_with_identifier", "hashes")
COLUMNS += ("coverage_share", "warning_share")


def read(wh: Warehouse, project: Project) -> dict[str, dict[str, Any]]:
    """audience model -> its coverage figures; empty when the mart is not built (a project
    without it, or a build that stopped before it), so status still works."""
    found = model_relation(project, MART)
    if found is None:
        return {}
    database, schema, identifier = found
    if wh.columns(schema, identifier) is None:
        return {}
    relation = wh.relation(database, schema, identifier)
    df = wh.fetch(f"select {', '.join(COLUMNS)} from {relation}")
    df = df.with_columns(df["coverage_share"].cast(float), df["warning_share"].cast(float))
    return {row.pop("audience"): row for row in df.iter_rows(named=True)}


def text(figures: dict[str, Any] | None) -> str:
    """The share for a table cell: "90% of 10", or "-" when unknown."""
    if not figures:
        return "-"
    if figures["coverage_share"] is None:
        return "no people"
    return f"{figures['coverage_share']:.0%} of {figures['people']:,}"


def warning(list_name: str, figures: dict[str, Any] | None) -> str | None:
    """One line when the share is below the threshold, else None."""
    if not figures or figures["coverage_share"] is None:
        return None
    if figures["coverage_share"] >= figures["warning_share"]:
        return None
    return (
        f"{list_name}: only {figures['people_with_identifier']:,} of its {figures['people']:,} "
        f"people ({figures['coverage_share']:.0%}) have a usable {figures['identifier']}, below "
        f"coverage_warning_share {figures['warning_share']:.0%}: the list syncs, but Microsoft "
        "cannot match the others"
    )
