"""`consentry evaluate`: the configuration files checked without a server, each rule by the
function the server itself decides it with (RULES, and docs/privacy-as-code.md), plus what
`apply` would refuse, so a pull request fails before a bad configuration is applied."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from consentry.cli.configfiles import Entry, read_files
from consentry.consent import notices, policy, purposes
from consentry.consent.models import Purpose
from consentry.errors import ConsentryError
from consentry.governance import datamap, lineage, transfers, vendors
from consentry.governance.models import Region, System, Vendor
from consentry.ingest import schemas
from consentry.ingest.handlers import SchemaIn
from consentry.ingest.models import EventSchema, Treatment

PERSONAL_FIELD_IN_CLEAR = "personal_field_in_clear"
SPECIAL_CATEGORY_WITHOUT_CONDITION = "special_category_without_condition"
PURPOSE_WITHOUT_RETENTION = "purpose_without_retention"
TRANSFER_BLOCKED = "transfer_blocked"
DPA_MISSING = "dpa_missing"
SALE_WITHOUT_OPT_OUT_PATH = "sale_without_opt_out_path"
FIELD_WITHOUT_CATEGORY = "field_without_category"

# Every rule's code, what it says, and the function it is decided by (the server's own).
RULES: tuple[tuple[str, str, str], ...] = (
    (
        PERSONAL_FIELD_IN_CLEAR,
        "a personal field (fideslang user.*) kept as it is, though none of the purposes it is "
        "kept for needs it in clear",
        "consent/policy.py needs_raw_value; governance/lineage.py field_purposes",
    ),
    (
        SPECIAL_CATEGORY_WITHOUT_CONDITION,
        "a special-category field (Art. 9/10) kept for no purpose with an Art. 9(2) condition",
        "consent/policy.py is_special_category, special_category_purpose",
    ),
    (
        PURPOSE_WITHOUT_RETENTION,
        "a purpose without a retention period (retention_days, at least one day)",
        "consent/handlers.py PurposeIn (the body of PUT /v1/purposes)",
    ),
    (
        TRANSFER_BLOCKED,
        "a system, or its vendor's sub-processor, outside the exporter's area with no Chapter V "
        "ground (adequacy decision, DPF in force, or a safeguard with a transfer impact "
        "assessment)",
        "governance/transfers.py chapter_v_allowed",
    ),
    (
        DPA_MISSING,
        "a system run by a vendor without a DPA in force (Art. 28): its own dpa_signed and the "
        "vendor register's DPA dates",
        "governance/transfers.py dpa_in_force",
    ),
    (
        SALE_WITHOUT_OPT_OUT_PATH,
        "a sale_or_share purpose delivered to a CCPA third party that has no rights_endpoint "
        "to pass a consumer's opt-out on to (regs §7026(f))",
        "governance/transfers.py opt_out_unreachable",
    ),
    (
        FIELD_WITHOUT_CATEGORY,
        "a schema field without a data category",
        "ingest/handlers.py FieldIn (the body of PUT /v1/schemas)",
    ),
)

# Body-model problems that are a rule of their own rather than a malformed entry: per kind,
# the rule's code and where in an entry its problems are.
_BODY_RULES: dict[str, tuple[str, Callable[[tuple[str | int, ...]], bool]]] = {
    "purposes": (PURPOSE_WITHOUT_RETENTION, lambda loc: loc[:1] == ("retention_days",)),
    "schemas": (
        FIELD_WITHOUT_CATEGORY,
        lambda loc: len(loc) == 3 and loc[0] == "fields" and loc[2] == "category",
    ),
}


@dataclass(frozen=True, slots=True)
class Violation:
    code: str
    file: str
    path: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "file": self.file, "path": self.path, "rule": self.rule}


def evaluate(directory: Path, exporter: Region, today: date) -> list[Violation]:
    """Every violation in the files of `directory`, in file then id order. InvalidConfigFile
    (as `apply`) for a file that is not YAML or not a mapping of ids. `exporter`: the
    controller's region (CONSENTRY_EXPORTER), which decides what counts as a transfer."""
    files = read_files(directory)
    found = list(_malformed(files))
    known = _purposes(files["purposes"], found)
    found += _notices(files["notices"], known)
    parsed = _schemas(files["schemas"], known, found)
    found += _fields(parsed, known)
    register = _vendors(files["vendors"], found)
    found += _systems(files["systems"], known, register, exporter, today)
    order = {name: i for i, name in enumerate(files)}
    return sorted(found, key=lambda v: (order[v.file.removesuffix(".yaml")], v.path, v.code))


def _malformed(files: Mapping[str, Mapping[str, Entry]]) -> Iterator[Violation]:
    """What the API's body models refuse, each problem where it is (as `apply` refuses it)."""
    for kind, entries in files.items():
        code, ruled = _BODY_RULES.get(kind, ("invalid_request", lambda loc: False))
        for key, entry in entries.items():
            for loc, message in entry.problems:
                where = ".".join(str(p) for p in (key, *loc))
                if ruled(loc):
                    yield _violation(code, kind, where, message)
                else:
                    yield Violation("invalid_request", f"{kind}.yaml", where, message)


def _violation(code: str, kind: str, path: str, detail: str = "") -> Violation:
    rule = next(text for c, text, _ in RULES if c == code)
    return Violation(code, f"{kind}.yaml", path, f"{rule} ({detail})" if detail else rule)


def _refused(kind: str, path: str, error: ConsentryError) -> Violation:
    return Violation(error.code, f"{kind}.yaml", path, error.detail)


def _where(key: str, error: ConsentryError, field: object = None) -> str:
    """Where in entry `key` an error of the API points (a purpose it names, a field)."""
    if "purpose" in error.context:
        return f"{key}.purposes"
    return f"{key}.{field}" if field else key


def _purposes(entries: Mapping[str, Entry], found: list[Violation]) -> dict[str, Purpose]:
    """The purposes the API would take (purposes.validate), the others reported."""
    out = {}
    for key, entry in entries.items():
        if entry.body is None:
            continue
        purpose = Purpose(key=key, **entry.body.model_dump())
        try:
            purposes.validate(purpose)
        except ConsentryError as exc:
            found.append(_refused("purposes", key, exc))
            continue
        out[key] = purpose
    return out


def _notices(entries: Mapping[str, Entry], known: Mapping[str, Purpose]) -> list[Violation]:
    found = []
    for key, entry in entries.items():
        try:
            notices.check_id(key)
        except ConsentryError as exc:
            found.append(_refused("notices", key, exc))
        for index, body in enumerate(entry.body or []):
            try:
                notices.check_purposes(body.purposes, known)
            except ConsentryError as exc:
                found.append(_refused("notices", f"{key}.{index}.purposes", exc))
    return found


def _schemas(
    entries: Mapping[str, Entry], known: Mapping[str, Purpose], found: list[Violation]
) -> list[EventSchema]:
    """The schemas as `PUT /v1/schemas` parses them (schemas.parse), the others reported."""
    out = []
    for key, entry in entries.items():
        body = entry.body if entry.body is not None else _sound_fields(entry)
        if body is None:
            continue
        try:
            out.append(schemas.parse(key, body.model_dump(), known))
        except ConsentryError as exc:
            field = exc.context.get("field")
            path = f"{key}.fields.{field}" if field else _where(key, exc)
            found.append(_refused("schemas", path, exc))
    return out


def _sound_fields(entry: Entry) -> Any:
    """A schema whose body is refused only for some of its fields, without those fields (each
    already reported), so the rules still look at the others; None when that is not so."""
    if not entry.problems or not isinstance(entry.raw, dict):
        return None
    if not all(len(loc) > 1 and loc[0] == "fields" for loc, _ in entry.problems):
        return None
    bad = {loc[1] for loc, _ in entry.problems}
    fields = entry.raw.get("fields")
    if not isinstance(fields, dict):
        return None
    rest = {name: spec for name, spec in fields.items() if name not in bad}
    try:
        return SchemaIn.model_validate(entry.raw | {"fields": rest})
    except ValidationError:
        return None


def _fields(parsed: list[EventSchema], known: Mapping[str, Purpose]) -> Iterator[Violation]:
    """Rules 1 and 2: what each field is kept for, by lineage's own rule (the schema's or the
    field's purposes; for special-category data only those with an Art. 9(2) condition)."""
    for schema in parsed:
        for spec in schema.fields:
            path = f"{schema.event_type}.fields.{spec.name}"
            kept_for = lineage.field_purposes(schema.purposes, spec, known)
            if spec.special and spec.treatment is not Treatment.DROP and not kept_for:
                yield _violation(SPECIAL_CATEGORY_WITHOUT_CONDITION, "schemas", path, spec.category)
            elif (
                spec.personal
                and spec.treatment is Treatment.KEEP
                and kept_for
                and not any(policy.needs_raw_value(known[p]) for p in kept_for)
            ):
                yield _violation(
                    PERSONAL_FIELD_IN_CLEAR,
                    "schemas",
                    path,
                    f"{spec.category} kept for {', '.join(kept_for)}: pseudonymise, tokenise "
                    "or drop it",
                )


def _vendors(entries: Mapping[str, Entry], found: list[Violation]) -> dict[str, Vendor]:
    """The vendor register as `PUT /v1/vendors` parses it (vendors.parse), the others
    reported (a system naming one of those has no record: dpa_missing)."""
    out = {}
    for key, entry in entries.items():
        if entry.body is None:
            continue
        try:
            out[key] = vendors.parse(key, entry.body.model_dump())
        except ConsentryError as exc:
            found.append(_refused("vendors", key, exc))
    return out


def _systems(
    entries: Mapping[str, Entry],
    known: Mapping[str, Purpose],
    register: Mapping[str, Vendor],
    exporter: Region,
    today: date,
) -> Iterator[Violation]:
    """Systems as `PUT /v1/systems` parses them (datamap.parse; where an endpoint resolves is
    checked by `apply`, not here: no network), then the delivery's own gates."""
    # Whose transfer rules may cover the data: the exporter's, or (outside Europe) those of
    # its EU and UK customers.
    regimes = sorted({r for j in ("EU", "UK") if (r := transfers.regime(exporter, j))})
    for key, entry in entries.items():
        if entry.body is None:
            continue
        try:
            parsed = datamap.parse(key, entry.body.model_dump(), known)
        except ConsentryError as exc:
            yield _refused("systems", _where(key, exc, exc.context.get("field")), exc)
            continue
        system = replace(parsed, vendor_record=vendors.record_of(parsed.vendor, register))
        for regime in regimes:
            if not transfers.chapter_v_allowed(system, regime, today):
                yield _violation(
                    TRANSFER_BLOCKED, "systems", *_transfer_gap(key, system, regime, today)
                )
        if not transfers.dpa_in_force(system, today):
            yield _violation(DPA_MISSING, "systems", *_dpa_gap(key, system))
        unreachable = transfers.opt_out_unreachable(system, known, today)
        if unreachable:
            yield _violation(
                SALE_WITHOUT_OPT_OUT_PATH,
                "systems",
                f"{key}.rights_endpoint",
                f"sells or shares for {', '.join(unreachable)}",
            )


def _transfer_gap(key: str, system: System, regime: Region, today: date) -> tuple[str, str]:
    """Where a blocked transfer shows in the files: the system's own, or its vendor's."""
    mechanism = f"mechanism {system.transfer_mechanism}"
    if transfers.transfer_allowed(system, regime, today):
        return (
            f"{key}.vendor",
            f"a sub-processor of vendor {system.vendor} under {regime} rules, {mechanism}",
        )
    return f"{key}.transfer_mechanism", f"{system.region} under {regime} rules, {mechanism}"


def _dpa_gap(key: str, system: System) -> tuple[str, str]:
    """Where a missing DPA shows in the files, and what is missing."""
    if not system.dpa_signed:
        return f"{key}.dpa_signed", f"vendor {system.vendor}: dpa_signed is false"
    if system.vendor_record is None:
        return f"{key}.vendor", f"vendor {system.vendor} is not in vendors.yaml (named by its id)"
    return (
        f"{key}.vendor",
        f"vendor {system.vendor}: no DPA in force today (dpa_signed_at, dpa_expires_at)",
    )


def as_json(violations: list[Violation]) -> dict[str, Any]:
    return {"violations": [v.as_dict() for v in violations], "count": len(violations)}
