"""The audience registry as analysts use it (docs/audiences.md), on a copy of the project:
an audience added by writing only its rule file and its YAML entry, wrong entries refused
with the entry named, one disabled, an opt-in one enabled and one renamed, each through the
real dbt build and `sync run` against the stand-in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import reference
from sync.standin import StandIn
from tests.harness.dbt import Build, copy_project, dbt, exclusive_states, new_build, registry
from tests.harness.sync import audience_hashes, mismatches, run_sync, sync_env

NEW = "audience_active_buyer_0_90d"
# The guide's example, as an analyst writes it: the rule file ...
NEW_RULE = """\
{#- Ordered in the last 90 days, and in no higher-priority state. -#}
{% macro audience_active_buyer_0_90d() -%}
    order_count >= 1 and last_order_at > {{ t_minus(90, 'day') }}
{%- endmacro %}

{{ audience_members() }}
"""
# ... and its YAML entry, with its line in the exposure.
NEW_ENTRY = """\
  - name: audience_active_buyer_0_90d
    description: Ordered in the last 90 days, in no other state.
    config:
      contract: {enforced: true}
      meta:
        audience: {family: exclusive, priority: 65, enabled: true}
        bing:
          list_name: CIO__Active_Buyer_0-90d__NoOtherState
          role: target
    columns: *member_columns

"""


def _yaml(project: Path) -> Path:
    return project / "models" / "audiences" / "_audiences.yml"


def _rule(project: Path, name: str) -> Path:
    return project / "models" / "audiences" / "rules" / f"{name}.sql"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {path}"
    path.write_text(text.replace(old, new))


def _add_audience(project: Path) -> None:
    _rule(project, NEW).write_text(NEW_RULE)
    _edit(_yaml(project), "\nexposures:\n", "\n" + NEW_ENTRY + "exposures:\n")
    _edit(
        _yaml(project),
        "      - ref('audience_ltv_high')\n",
        f"      - ref('audience_ltv_high')\n      - ref('{NEW}')\n",
    )


def _set_enabled(project: Path, name: str, enabled: bool) -> None:
    """Flip one entry's meta.audience.enabled, as the guide says to."""
    text = _yaml(project).read_text()
    start = text.index(f"  - name: {name}\n")
    was = f"enabled: {str(not enabled).lower()}}}"
    at = text.index(was, start)
    _yaml(project).write_text(
        text[:at] + f"enabled: {str(enabled).lower()}}}" + text[at + len(was) :]
    )


def _build(tmp_path: Path, project: Path) -> Build:
    build = new_build(tmp_path / "warehouse", project)
    dbt(build, "build")
    return build


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path / "project")


def test_the_default_registry_is_the_specs_six_states() -> None:
    """The registry as shipped: the spec's six exclusive states, in the spec's order (the
    reference implementation's), every opt-in state off, every suppression list on."""
    assert exclusive_states() == reference.STATES
    for entry in registry():
        if entry["family"] == "suppression":
            assert entry["enabled"] is True and entry["role"] == "exclude", entry["name"]
        elif str(entry["name"]).removeprefix("audience_") not in reference.STATES:
            assert entry["enabled"] is False, entry["name"]


def test_a_seventh_audience_is_a_rule_file_and_a_yaml_entry(
    project: Path, tmp_path: Path, bing: StandIn
) -> None:
    _add_audience(project)
    build = _build(tmp_path, project)
    assert exclusive_states(project)[-1] == "active_buyer_0_90d"
    members = audience_hashes(build, NEW)
    assert len(members) == 5  # st02, st11, st13, st15, st16: ordered, no other state
    states = build.query(
        "select state, state_priority, count(*) as n from audience_states group by all"
    )
    assert ("active_buyer_0_90d", 7, 5) in states.rows()  # ranked after the six
    # every derived check covers it: dbt ran its tests (unique, hex, its memberships only)
    manifest = (build.target_path / "manifest.json").read_text()
    for test in ("unique", "is_sha256_hex", "matches_its_memberships"):
        assert f"{test}_{NEW}_email_sha256" in manifest, test

    env = sync_env(build, bing.url, str(tmp_path / "work"))
    result = run_sync(build, env, "run")
    assert result.exit_code == 0, result.stderr
    lists = result.lists()
    assert NEW in lists and lists[NEW]["confirmed_adds"] == 5
    assert bing.lists()[lists[NEW]["list_id"]]["name"] == "CIO__Active_Buyer_0-90d__NoOtherState"
    assert bing.lists()[lists[NEW]["list_id"]]["members"] == members
    assert mismatches(build, bing, lists) == []


WRONG_ENTRIES = {
    "duplicate priority": (
        "_audiences.yml",
        "family: exclusive, priority: 50,",
        "family: exclusive, priority: 40,",
        "priority 40 is also that of",
    ),
    "unknown family": (
        "_audiences.yml",
        "family: exclusive, priority: 60,",
        "family: exclusiv, priority: 60,",
        "audience audience_ltv_high (models/audiences/_audiences.yml): family is 'exclusiv'",
    ),
    "list name clash": (
        "_audiences.yml",
        "list_name: CIO__LTV_High__NoOtherState",
        "list_name: CIO__Lapsed_90d-plus__NoPurchase",
        "Bing list name cio__lapsed_90d-plus__nopurchase is also that of",
    ),
    "a missing fact": (
        "audience_ltv_high",
        "ltv_tier = 'high'",
        "lifetime_value >= 500",
        "audience audience_ltv_high (models/audiences/rules/audience_ltv_high.sql): its rule uses "
        "`lifetime_value`, which is not a per-person fact",
    ),
    "not in the exposure": (
        "_audiences.yml",
        "      - ref('audience_ltv_high')\n",
        "",
        "add `- ref('audience_ltv_high')` to the depends_on of exposure bing_customer_match",
    ),
}


@pytest.mark.parametrize("case", WRONG_ENTRIES, ids=list(WRONG_ENTRIES))
def test_a_wrong_entry_fails_the_build_naming_it(project: Path, tmp_path: Path, case: str) -> None:
    file, old, new, message = WRONG_ENTRIES[case]
    _edit(_yaml(project) if file == "_audiences.yml" else _rule(project, file), old, new)
    build = new_build(tmp_path / "warehouse", project)
    with pytest.raises(AssertionError) as failed:
        dbt(build, "build")
    assert message in " ".join(str(failed.value).split()), str(failed.value)


def test_disable_enable_and_rename_do_what_the_guide_says(
    project: Path, tmp_path: Path, bing: StandIn
) -> None:
    build = _build(tmp_path, project)
    env = sync_env(build, bing.url, str(tmp_path / "work"))
    first = run_sync(build, env, "run")
    assert first.exit_code == 0, first.stderr
    ltv = first.lists()["audience_ltv_high"]
    lapsed = first.lists()["audience_lapsed_90d_plus"]
    ltv_members = bing.lists()[ltv["list_id"]]["members"]
    assert ltv_members

    # disable high LTV, enable the lapsed 60-89 d opt-in state, rename lapsed_90d_plus (model, rule)
    _set_enabled(project, "audience_ltv_high", False)
    _set_enabled(project, "audience_lapsed_60_89d", True)
    old, renamed = "audience_lapsed_90d_plus", "audience_winback_90d_plus"
    rule = _rule(project, old).read_text().replace(old, renamed)
    _rule(project, old).unlink()
    _rule(project, renamed).write_text(rule)
    # the entry, its exposure line and its unit tests' mentions (not the opt-in's name)
    text = re.sub(r"lapsed_90d_plus\b(?!_)", "winback_90d_plus", _yaml(project).read_text())
    _yaml(project).write_text(text)
    dbt(build, "build")
    assert audience_hashes(build, "audience_ltv_high") == set()  # built empty
    lapsing = audience_hashes(build, "audience_lapsed_60_89d")
    assert len(lapsing) == 1  # st13, 90 days less a second since its order

    again = run_sync(build, env, "run")
    assert again.exit_code == 0, again.stderr
    lists = again.lists()
    stderr = " ".join(again.stderr.split())
    # disabled: not synced, its list left as it was at Microsoft, and said
    assert "audience_ltv_high" not in lists
    assert bing.lists()[ltv["list_id"]]["members"] == ltv_members
    assert "its audience audience_ltv_high is disabled (meta.audience.enabled: false)" in stderr
    # enabled: its list created and filled
    assert bing.lists()[lists["audience_lapsed_60_89d"]["list_id"]]["members"] == lapsing
    # renamed: the same list, its members carried over, nothing re-sent
    assert lists[renamed]["list_id"] == lapsed["list_id"]
    assert lists[renamed]["confirmed_adds"] == 0 and lists[renamed]["confirmed_removes"] == 0
    assert f"{renamed} takes over list {lapsed['list_id']}" in stderr
    assert mismatches(build, bing, lists) == []

    status = run_sync(build, env, "status")
    disabled = sorted(str(e["name"]) for e in registry(project) if not e["enabled"])
    assert "audience_ltv_high" in disabled
    assert sorted(status.doc["disabled"]) == disabled
    assert [(i["audience"], i["reason"]) for i in status.doc["left_project"]] == [
        ("audience_ltv_high", "disabled")
    ]
