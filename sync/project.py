"""Where the sync's configuration comes from: the dbt project, its profile, and its manifest.

The sync reads the same profile and target `dbt build` used (so connection details live in
one place) and finds the audiences in dbt's own `manifest.json`: every model whose `meta`
has a `bing` block. Adding an audience is an SQL file and a YAML entry, no Python.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml

from sync.errors import ConfigError

ROLES = ("exclude", "target")
DEFAULT_MAX_REMOVE_SHARE = 0.5


@dataclass(frozen=True)
class Audience:
    """One audience model and the Bing list it is mirrored to."""

    name: str  # the dbt model name, e.g. audience_cart_abandon_0_1d
    database: str | None
    schema: str
    identifier: str
    list_name: str
    role: str  # "exclude" (suppression) or "target"
    membership_duration_days: int = -1
    list_id: int | None = None
    max_remove_share: float = DEFAULT_MAX_REMOVE_SHARE
    enabled: bool = True  # meta.audience.enabled: a disabled audience's list is left alone

    @property
    def is_exclusion(self) -> bool:
        return self.role == "exclude"


@dataclass(frozen=True)
class Project:
    """A dbt project on disk, with the profile target and manifest the sync should use."""

    project_dir: Path
    profile_name: str
    target_name: str
    target: dict[str, Any]
    manifest_path: Path


_MISSING = object()


def _env_var(name: str, default: Any = _MISSING) -> str:
    """dbt's env_var(): the variable's value, else the default, else a clear error."""
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is _MISSING:
        raise ConfigError(f"the dbt profile uses env_var('{name}'), which is not set")
    return str(default)


def _render(value: Any) -> Any:
    """Render the Jinja in a profile the way dbt does for the parts the sync reads
    (env_var with or without a default). Not importing dbt keeps `sync` starting in well
    under a second; a profile using more of dbt's context fails with the template's name."""
    if isinstance(value, dict):
        return {k: _render(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v) for v in value]
    if isinstance(value, str) and "{" in value:
        try:
            return (
                jinja2.Environment(undefined=jinja2.StrictUndefined)
                .from_string(value)
                .render(env_var=_env_var)
            )
        except jinja2.TemplateError as exc:
            raise ConfigError(f"cannot render {value!r} in the dbt profile: {exc}") from exc
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a YAML mapping")
    return data


def load_project(
    project_dir: str | None = None,
    profiles_dir: str | None = None,
    target: str | None = None,
    target_path: str | None = None,
) -> Project:
    """Resolve the project, profile target and manifest exactly as dbt would."""
    root = Path(project_dir or os.environ.get("DBT_PROJECT_DIR") or ".").resolve()
    project_file = root / "dbt_project.yml"
    if not project_file.exists():
        raise ConfigError(
            f"no dbt_project.yml in {root}: run the sync from the dbt project folder "
            "or pass --project-dir"
        )
    project = _read_yaml(project_file)
    profile_name = project.get("profile")
    if not profile_name:
        raise ConfigError(f"{project_file} names no `profile`")

    candidates = [profiles_dir, os.environ.get("DBT_PROFILES_DIR")]
    if (Path.cwd() / "profiles.yml").exists():
        candidates.append(str(Path.cwd()))
    candidates.append(str(Path.home() / ".dbt"))
    pdir = next((c for c in candidates if c), None)
    if pdir is None or not (Path(pdir) / "profiles.yml").exists():
        raise ConfigError(
            f"no profiles.yml found (looked in {pdir or '~/.dbt'}): copy profiles.yml.example "
            "to profiles.yml, or pass --profiles-dir / set DBT_PROFILES_DIR"
        )
    raw = _read_yaml(Path(pdir) / "profiles.yml").get(profile_name)
    if not raw:
        raise ConfigError(f"profile {profile_name!r} is not in {Path(pdir) / 'profiles.yml'}")
    # as dbt: the flag, else the profile's own (rendered), else "default"
    target_name = target or os.environ.get("DBT_TARGET") or _render(raw.get("target")) or "default"
    outputs = raw.get("outputs") or {}
    if target_name not in outputs:
        raise ConfigError(
            f"target {target_name!r} is not in profile {profile_name!r} "
            f"(it has: {', '.join(sorted(outputs)) or 'none'})"
        )
    rendered = _render(outputs[target_name])

    tpath = (
        target_path or os.environ.get("DBT_TARGET_PATH") or project.get("target-path") or "target"
    )
    manifest = Path(tpath) if Path(tpath).is_absolute() else root / tpath
    return Project(root, profile_name, target_name, rendered, manifest / "manifest.json")


def _model_files_newer_than(project: Project, stamp: float) -> list[Path]:
    """Model SQL/YAML edited after the manifest was written (it no longer describes them)."""
    project_cfg = _read_yaml(project.project_dir / "dbt_project.yml")
    newer = []
    for folder in project_cfg.get("model-paths", ["models"]):
        for path in (project.project_dir / folder).rglob("*"):
            if path.suffix in (".sql", ".yml", ".yaml") and path.stat().st_mtime > stamp:
                newer.append(path)
    return newer


def _bing_meta(node: dict[str, Any]) -> Any:
    """A model's meta.bing block (config.meta in dbt >= 1.10, meta before), or None."""
    for holder in (node.get("config") or {}, node):
        bing = (holder.get("meta") or {}).get("bing")
        if bing is not None:
            return bing
    return None


def _audience_meta(node: dict[str, Any]) -> dict[str, Any]:
    """A model's meta.audience block (the registry entry: family, priority, enabled), or {}."""
    audience = ((node.get("config") or {}).get("meta") or {}).get("audience")
    return audience if isinstance(audience, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _audience_from_node(node: dict[str, Any]) -> Audience:
    name = node["name"]
    bing = _bing_meta(node)
    where = f"model {name}: meta.bing"
    if not isinstance(bing, dict):
        raise ConfigError(f"{where} must be a mapping with at least list_name and role")
    list_name = bing.get("list_name")
    if not isinstance(list_name, str) or not list_name.strip() or len(list_name) > 128:
        raise ConfigError(f"{where}.list_name is required: a name of 1-128 characters")
    role = bing.get("role", "target")
    if role not in ROLES:
        raise ConfigError(f"{where}.role is {role!r}; use `target` or `exclude` (suppression)")
    duration = bing.get("membership_duration_days", -1)
    if (
        not _number(duration)
        or duration != int(duration)
        or not (duration == -1 or 1 <= duration <= 180)
    ):
        raise ConfigError(f"{where}.membership_duration_days is {duration!r}; use -1 or 1..180")
    list_id = bing.get("list_id")
    if list_id is not None and (not _number(list_id) or list_id != int(list_id) or list_id <= 0):
        raise ConfigError(f"{where}.list_id is {list_id!r}; use the numeric id of an existing list")
    share = bing.get("max_remove_share", DEFAULT_MAX_REMOVE_SHARE)
    if not _number(share) or not 0 <= share <= 1:
        raise ConfigError(f"{where}.max_remove_share is {share!r}; use a number from 0 to 1")
    enabled = _audience_meta(node).get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"model {name}: meta.audience.enabled is {enabled!r}; use true or false")
    return Audience(
        name=name,
        database=node.get("database"),
        schema=node["schema"],
        identifier=node.get("alias") or name,
        list_name=list_name.strip(),
        role=role,
        membership_duration_days=int(duration),
        list_id=int(list_id) if list_id is not None else None,
        max_remove_share=float(share),
        enabled=enabled,
    )


def load_audiences(project: Project, *, allow_stale: bool = False) -> list[Audience]:
    """Every audience model of the manifest, exclusion lists first, then by name."""
    path = project.manifest_path
    if not path.exists():
        raise ConfigError(
            f"no dbt manifest at {path}: run `dbt build` (or `dbt parse`) in {project.project_dir} "
            "first, or point --target-path at its target folder"
        )
    if not allow_stale:
        newer = _model_files_newer_than(project, path.stat().st_mtime)
        if newer:
            raise ConfigError(
                f"the dbt manifest {path} is older than {len(newer)} model file(s) "
                f"(e.g. {newer[0].relative_to(project.project_dir)}): run `dbt build` so the "
                "audience tables and their meta match the SQL, or pass --allow-stale-manifest"
            )
    manifest = _manifest(project)
    audiences = [
        _audience_from_node(node)
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "model"
        and (
            (node.get("config") or {}).get("meta", {}).get("bing")
            or node.get("meta", {}).get("bing")
        )
    ]
    names: dict[str, str] = {}
    pins: dict[int, str] = {}
    for a in audiences:
        if a.list_name in names:
            raise ConfigError(
                f"models {names[a.list_name]} and {a.name} both name Bing list {a.list_name!r}; "
                "each list belongs to one audience"
            )
        names[a.list_name] = a.name
        if a.list_id is not None:
            if a.list_id in pins:
                raise ConfigError(
                    f"models {pins[a.list_id]} and {a.name} both pin list_id {a.list_id}; "
                    "each list belongs to one audience"
                )
            pins[a.list_id] = a.name
    return sorted(audiences, key=lambda a: (not a.is_exclusion, a.name))


def _manifest(project: Project) -> dict[str, Any]:
    path = project.manifest_path
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the dbt manifest {path}: {exc}") from exc


def model_relation(project: Project, name: str) -> tuple[str | None, str, str] | None:
    """(database, schema, identifier) of the dbt model `name` in the manifest, None when the
    project has no such model (e.g. a mart the sync only shows, like audience_coverage)."""
    for node in _manifest(project).get("nodes", {}).values():
        if node.get("resource_type") == "model" and node.get("name") == name:
            return node.get("database"), node["schema"], node.get("alias") or name
    return None


def select_audiences(audiences: list[Audience], selected: tuple[str, ...]) -> list[Audience]:
    """Keep the enabled audiences named by --select (model name, its short state name, or
    list name); all enabled ones without --select. Naming a disabled one is an error."""
    enabled = [a for a in audiences if a.enabled]
    if not selected:
        return enabled
    keep = []
    for want in selected:
        match = [
            a for a in audiences if want in (a.name, a.name.removeprefix("audience_"), a.list_name)
        ]
        if not match:
            known = ", ".join(a.name for a in enabled) or "none"
            raise ConfigError(f"--select {want!r} matches no audience (known: {known})")
        off = [a.name for a in match if not a.enabled]
        if off:
            raise ConfigError(
                f"--select {want!r}: {off[0]} is disabled (meta.audience.enabled: false in its "
                "YAML entry), so the sync leaves its list alone; enable it and run dbt build"
            )
        keep.extend(m for m in match if m not in keep)
    return [a for a in enabled if a in keep]
