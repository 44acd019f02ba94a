"""Privacy as code: the configuration as YAML files, one per kind (`KINDS`: adding a kind is
one entry), read from the store and written back to it through the same service functions
the API's PUT handlers call, under the same rules (a locked legal basis stays locked)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from consentry.consent import notices
from consentry.consent.handlers import NoticeIn, PurposeIn, purpose_out
from consentry.consent.models import Purpose
from consentry.errors import ConsentryError, InvalidConfigFile
from consentry.governance import datamap, endpoints, vendors
from consentry.governance.handlers import SystemIn, VendorIn
from consentry.ingest import schemas
from consentry.ingest.handlers import SchemaIn
from consentry.runtime import Runtime
from consentry.storage import consent as consent_sql

ACTOR = "cli"


def _plain(value: Any) -> Any:
    """JSON's own types only (enums as their values), as a file holds them."""
    return json.loads(json.dumps(value))


# --- purposes: key -> the body of PUT /v1/purposes/{key}


def _purpose_definition(purpose: Purpose) -> dict[str, Any]:
    out = purpose_out(purpose)
    # Its id is the file's key; whether its basis is locked is the server's state, not config.
    del out["key"], out["legal_basis_locked"]
    return dict(_plain(out))


def _read_purposes(conn: Connection, rt: Runtime) -> dict[str, Any]:
    return {k: _purpose_definition(p) for k, p in rt.purposes.all(conn).items()}


def _purpose_wanted(conn: Connection, rt: Runtime, key: str, body: Any) -> Any:
    return _purpose_definition(Purpose(key=key, **body.model_dump()))


def _put_purpose(conn: Connection, rt: Runtime, key: str, body: Any) -> str | None:
    rt.purposes.put(conn, Purpose(key=key, **body.model_dump()), actor=ACTOR)
    return None


# --- notices: notice_id -> its versions, oldest first, each the body of PUT /v1/notices/{id}


def _read_notices(conn: Connection, rt: Runtime) -> dict[str, Any]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in reversed(consent_sql.notices_newest_first(conn)):
        out.setdefault(row.notice_id, []).append(
            {"version": row.version, "text": row.text, "purposes": json.loads(row.purposes)}
        )
    return out


def _notice_wanted(conn: Connection, rt: Runtime, notice_id: str, bodies: Any) -> Any:
    return [
        {"version": b.version, "text": b.text, "purposes": sorted(set(b.purposes))} for b in bodies
    ]


def _put_notice(conn: Connection, rt: Runtime, notice_id: str, bodies: Any) -> str | None:
    for body in bodies:
        notices.publish(
            conn, rt.purposes, notice_id, body.version, body.text, body.purposes, actor=ACTOR
        )
    return None


def _notice_same(current: Any, wanted: Any) -> bool:
    """Versions are immutable and never deleted: the files agree when each of their versions
    is on the server as written (the server may hold older ones besides)."""
    return all(version in current for version in wanted)


# --- schemas: event_type -> the body of PUT /v1/schemas/{event_type}


def _read_schemas(conn: Connection, rt: Runtime) -> dict[str, Any]:
    found = rt.schemas.all(conn)
    return {k: _plain(schemas.to_definition(c.schema)) for k, c in found.items()}


def _schema_wanted(conn: Connection, rt: Runtime, event_type: str, body: Any) -> Any:
    parsed = schemas.parse(event_type, body.model_dump(), rt.purposes.all(conn))
    return _plain(schemas.to_definition(parsed))


def _put_schema(conn: Connection, rt: Runtime, event_type: str, body: Any) -> str | None:
    rt.schemas.put(conn, event_type, body.model_dump(), rt.purposes.all(conn), actor=ACTOR)
    return None


# --- vendors: vendor_id -> the body of PUT /v1/vendors/{vendor_id}


def _read_vendors(conn: Connection, rt: Runtime) -> dict[str, Any]:
    return {k: _plain(vendors.to_definition(v)) for k, v in rt.vendors.all(conn).items()}


def _vendor_wanted(conn: Connection, rt: Runtime, vendor_id: str, body: Any) -> Any:
    return _plain(vendors.to_definition(vendors.parse(vendor_id, body.model_dump())))


def _put_vendor(conn: Connection, rt: Runtime, vendor_id: str, body: Any) -> str | None:
    rt.vendors.put(conn, vendors.parse(vendor_id, body.model_dump()), actor=ACTOR)
    return None


# --- systems: system_id -> the body of PUT /v1/systems/{system_id} (never its secret)


def _read_systems(conn: Connection, rt: Runtime) -> dict[str, Any]:
    return {k: _plain(datamap.to_definition(s)) for k, s in rt.datamap.all(conn).items()}


def _system_wanted(conn: Connection, rt: Runtime, system_id: str, body: Any) -> Any:
    parsed = datamap.parse(system_id, body.model_dump(), rt.purposes.all(conn))
    return _plain(datamap.to_definition(parsed))


def _put_system(conn: Connection, rt: Runtime, system_id: str, body: Any) -> str | None:
    system = datamap.parse(system_id, body.model_dump(), rt.purposes.all(conn))
    _, secret = rt.datamap.put(conn, system, actor=ACTOR)
    return secret


def _check_system(rt: Runtime, body: Any) -> None:
    """Where its endpoints point, checked before the write transaction (as PUT does)."""
    endpoints.check_urls(
        {"endpoint": body.endpoint, "rights_endpoint": body.rights_endpoint},
        allow_private=rt.settings.allow_private_endpoints,
    )


def _equal(current: Any, wanted: Any) -> bool:
    return bool(current == wanted)


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of configuration and its file `<name>.yaml`: a mapping of ids to what the
    API's PUT of that kind takes (`many`: a list of such bodies per id)."""

    name: str
    # Singular, for the plan's lines.
    noun: str
    body: type[BaseModel]
    read: Callable[[Connection, Runtime], dict[str, Any]]
    wanted: Callable[[Connection, Runtime, str, Any], Any]
    put: Callable[[Connection, Runtime, str, Any], str | None]
    many: bool = False
    same: Callable[[Any, Any], bool] = _equal
    # A check made before the write transaction opens (name resolution, for systems).
    check: Callable[[Runtime, Any], None] | None = None

    @property
    def file(self) -> str:
        return f"{self.name}.yaml"


# In the order they are applied: each may refer to the kinds above it.
KINDS: tuple[Kind, ...] = (
    Kind("purposes", "purpose", PurposeIn, _read_purposes, _purpose_wanted, _put_purpose),
    Kind(
        "notices",
        "notice",
        NoticeIn,
        _read_notices,
        _notice_wanted,
        _put_notice,
        many=True,
        same=_notice_same,
    ),
    Kind("schemas", "schema", SchemaIn, _read_schemas, _schema_wanted, _put_schema),
    Kind("vendors", "vendor", VendorIn, _read_vendors, _vendor_wanted, _put_vendor),
    Kind(
        "systems",
        "system",
        SystemIn,
        _read_systems,
        _system_wanted,
        _put_system,
        check=_check_system,
    ),
)


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]  # PyYAML ships no types
    """Text of several lines as a literal block, so a notice reads as it was written."""


def _text(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def dump(value: Any) -> str:
    return str(
        yaml.dump(
            value, Dumper=_Dumper, sort_keys=True, allow_unicode=True, default_flow_style=False
        )
    )


def export(rt: Runtime, directory: Path) -> list[Path]:
    """Write every kind's file into `directory` (made if missing); the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    with rt.store.read(snapshot=True) as conn:
        found = {kind.name: kind.read(conn, rt) for kind in KINDS}
    written = []
    for kind in KINDS:
        path = directory / kind.file
        path.write_text(dump(found[kind.name]), encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a plan: create, change, refuse (with the reason) or keep (on the server,
    not in the files: apply deletes nothing)."""

    action: str
    kind: str
    item: str
    reason: str = ""


@dataclass(slots=True)
class Plan:
    steps: list[Step] = field(default_factory=list)
    unchanged: int = 0
    # The signing secrets of the systems it creates (shown once, as PUT shows them).
    secrets: dict[str, str] = field(default_factory=dict)
    applied: bool = False

    @property
    def refused(self) -> list[Step]:
        return [s for s in self.steps if s.action == "refuse"]

    def count(self, action: str) -> int:
        return sum(1 for s in self.steps if s.action == action)


@dataclass(frozen=True, slots=True)
class Entry:
    """One id of a file: its value as written, the API body it makes (None when the body
    refuses it) and, then, each problem as (where in the entry, what is wrong)."""

    raw: Any
    body: Any
    problems: tuple[tuple[tuple[str | int, ...], str], ...] = ()

    @property
    def error(self) -> str | None:
        # Where and what, never the value refused.
        if self.body is not None:
            return None
        found = "; ".join(
            f"{'.'.join(map(str, loc)) or '(whole)'}: {msg}" for loc, msg in self.problems
        )
        return f"invalid_request: {found}"


def read_files(directory: Path) -> dict[str, dict[str, Entry]]:
    """Each kind's entries, validated against its PUT body (a missing file: no entries). An
    entry the body refuses is kept with the reason, to be shown refused in the plan."""
    if not directory.is_dir():
        raise InvalidConfigFile(f"{directory} is not a directory")
    out: dict[str, dict[str, Entry]] = {}
    for kind in KINDS:
        path = directory / kind.file
        raw: Any = {}
        if path.exists():
            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise InvalidConfigFile(f"{kind.file}: not YAML ({exc})") from None
            except UnicodeDecodeError:
                raise InvalidConfigFile(f"{kind.file}: not UTF-8 text") from None
            except OSError as exc:
                raise InvalidConfigFile(f"{kind.file}: cannot be read ({exc.strerror})") from None
        if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
            raise InvalidConfigFile(f"{kind.file}: a mapping of ids to definitions")
        out[kind.name] = {key: _validate(kind, value) for key, value in raw.items()}
    return out


def _validate(kind: Kind, value: Any) -> Entry:
    if kind.many and not isinstance(value, list):
        return Entry(value, None, (((), "a list of versions"),))
    values = value if kind.many else [value]
    bodies, problems = [], []
    for index, one in enumerate(values):
        try:
            bodies.append(kind.body.model_validate(one))
        except ValidationError as exc:
            at = (index,) if kind.many else ()
            problems += [(at + tuple(e["loc"]), e["msg"]) for e in exc.errors()]
    if problems:
        return Entry(value, None, tuple(problems))
    return Entry(value, bodies if kind.many else bodies[0])


class _DryRun(Exception):
    """Raised to roll the plan's transaction back."""


def apply(rt: Runtime, directory: Path, *, commit: bool) -> Plan:
    """Make the server's configuration equal to the files: every change is made in one
    transaction, each item in a savepoint through the service the API's PUT calls, so what
    the API refuses is refused here (and named in the plan). It commits only when `commit`
    and nothing was refused; otherwise it is rolled back whole, nothing changed."""
    files = read_files(directory)
    checked: dict[tuple[str, str], str] = {}
    for kind in KINDS:
        if kind.check is None:
            continue
        for key, entry in files[kind.name].items():
            if entry.error is None:
                try:
                    kind.check(rt, entry.body)
                except ConsentryError as exc:
                    checked[(kind.name, key)] = f"{exc.code}: {exc.detail}"
    plan = Plan()
    try:
        with rt.store.write() as conn:
            for kind in KINDS:
                _plan_kind(conn, rt, kind, files[kind.name], checked, plan)
            if not commit or plan.refused:
                raise _DryRun
    except _DryRun:
        plan.secrets.clear()
        return plan
    plan.applied = True
    return plan


def _plan_kind(
    conn: Connection,
    rt: Runtime,
    kind: Kind,
    entries: Mapping[str, Entry],
    checked: Mapping[tuple[str, str], str],
    plan: Plan,
) -> None:
    current = kind.read(conn, rt)
    for key in entries:
        entry = entries[key]
        action = "change" if key in current else "create"
        if entry.error is not None:
            plan.steps.append(Step("refuse", kind.noun, key, entry.error))
            continue
        try:
            with conn.begin_nested():
                wanted = kind.wanted(conn, rt, key, entry.body)
                if key in current and kind.same(current[key], wanted):
                    plan.unchanged += 1
                    continue
                # Its endpoints, checked before the transaction, count only for a change.
                early = checked.get((kind.name, key))
                if early is not None:
                    plan.steps.append(Step("refuse", kind.noun, key, early))
                    continue
                secret = kind.put(conn, rt, key, entry.body)
        except ConsentryError as exc:
            plan.steps.append(Step("refuse", kind.noun, key, f"{exc.code}: {exc.detail}"))
            continue
        plan.steps.append(Step(action, kind.noun, key, _changed(current.get(key), wanted)))
        if secret is not None:
            plan.secrets[key] = secret
    for key in sorted(set(current) - set(entries)):
        plan.steps.append(Step("keep", kind.noun, key, "not in the files; apply deletes nothing"))


def _changed(current: Any, wanted: Any) -> str:
    """The top-level fields a change sets (a list of versions: the new ones)."""
    if current is None:
        return ""
    if isinstance(wanted, list):
        new = [v["version"] for v in wanted if v not in current]
        return "versions " + ", ".join(new)
    names = sorted(k for k in wanted if current.get(k) != wanted.get(k))
    return ", ".join(names)
