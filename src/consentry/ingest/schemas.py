"""Event schemas: validated once, compiled once into the native core's schema of their
properties (unknown fields refused, types checked), and held in memory until the
configuration version moves."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection

from consentry import clock, native
from consentry.audit import log as audit
from consentry.audit.events import AuditAction
from consentry.configuration import VersionedCopy
from consentry.consent.models import Purpose
from consentry.errors import InvalidCategory, InvalidSchema, UnknownPurpose
from consentry.ingest.models import EventSchema, FieldSpec, FieldType, Treatment
from consentry.storage import ingest as sql
from consentry.storage.configuration import bump_config_version

NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
EVENT_TYPE = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
MAX_FIELDS = 200
# Treatments that turn a value into something else only make sense for some types.
TREATABLE: dict[Treatment, frozenset[FieldType]] = {
    Treatment.KEEP: frozenset(FieldType),
    Treatment.DROP: frozenset(FieldType),
    Treatment.REDACT: frozenset({FieldType.STRING}),
    Treatment.PSEUDONYMISE: frozenset({FieldType.STRING, FieldType.INTEGER}),
    Treatment.TOKENISE: frozenset({FieldType.STRING, FieldType.INTEGER}),
}


@cache
def fideslang_categories() -> frozenset[str]:
    """The data-category keys of fideslang's default taxonomy."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY  # noqa: PLC0415 - heavy, used rarely

    return frozenset(category.fides_key for category in DEFAULT_TAXONOMY.data_category)


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """A schema and its `properties` compiled in the core."""

    schema: EventSchema
    properties: native.Properties
    fields: Mapping[str, FieldSpec]
    # Special-category fields make minimisation depend on the subject's explicit grants.
    has_special: bool
    # Each field's data category, and the fields of sensitive personal information (for
    # the delivery of each accepted event, held once per schema).
    categories: Mapping[str, str]
    sensitive: frozenset[str]
    # The fields stored sealed under the subject's key (FieldSpec.sealed): personal values
    # kept in clear or redacted.
    sealed: frozenset[str]

    @property
    def names(self) -> tuple[str, ...]:
        """Every field's name, in the schema's order."""
        return tuple(self.fields)


def parse(
    event_type: str, definition: Mapping[str, Any], purposes: Mapping[str, Purpose]
) -> EventSchema:
    """Check a schema definition whole; InvalidSchema (or a subclass) naming what is wrong."""
    if not EVENT_TYPE.fullmatch(event_type):
        raise InvalidSchema("an event type is 1-64 of a-z, 0-9, _ . -, starting with a letter")
    schema_purposes = tuple(dict.fromkeys(definition["purposes"]))
    if not schema_purposes:
        raise InvalidSchema("a schema serves at least one purpose")
    for key in schema_purposes:
        if key not in purposes:
            raise UnknownPurpose(f"no purpose {key!r}", purpose=key)
    fields = definition["fields"]
    if len(fields) > MAX_FIELDS:
        raise InvalidSchema(f"a schema has at most {MAX_FIELDS} fields")
    specs = []
    categories = fideslang_categories()
    for name, spec in fields.items():
        if not NAME.fullmatch(name):
            raise InvalidSchema(
                f"field name {name!r} is not 1-64 of A-Z, a-z, 0-9 and _, starting with a letter"
            )
        category = spec["category"]
        if category not in categories:
            raise InvalidCategory(
                f"field {name!r}: {category!r} is not a fideslang data category", field=name
            )
        ftype, treatment = FieldType(spec["type"]), Treatment(spec["treatment"])
        if ftype not in TREATABLE[treatment]:
            raise InvalidSchema(f"field {name!r}: a {ftype} field cannot be {treatment}d")
        own = spec.get("purposes")
        if own is not None:
            own = frozenset(own)
            if not own or not own <= set(schema_purposes):
                raise InvalidSchema(
                    f"field {name!r}: its purposes must be some of the schema's purposes",
                    field=name,
                )
        specs.append(FieldSpec(name, ftype, category, treatment, own, bool(spec.get("required"))))
    return EventSchema(event_type, 0, schema_purposes, tuple(specs))


def compile_schema(schema: EventSchema) -> CompiledSchema:
    """The schema's properties compiled once in the core (consentry_core::decode::schema):
    unknown fields refused, types checked, integers within signed 64 bits, times with a zone,
    and the strings of screened fields (FieldSpec.screened) redacted where they hold personal
    data."""
    return CompiledSchema(
        schema,
        native.Properties(
            [(spec.name, spec.type.value, spec.required) for spec in schema.fields],
            [spec.name for spec in schema.fields if spec.screened],
        ),
        {spec.name: spec for spec in schema.fields},
        any(spec.special for spec in schema.fields),
        {spec.name: spec.category for spec in schema.fields},
        frozenset(spec.name for spec in schema.fields if spec.sensitive),
        frozenset(spec.name for spec in schema.fields if spec.sealed),
    )


def to_definition(schema: EventSchema) -> dict[str, Any]:
    """The schema in the shape of `PUT /v1/schemas/{event_type}`."""
    fields: dict[str, Any] = {}
    for spec in schema.fields:
        field: dict[str, Any] = {
            "type": spec.type.value,
            "category": spec.category,
            "treatment": spec.treatment.value,
            "required": spec.required,
        }
        if spec.purposes is not None:
            field["purposes"] = sorted(spec.purposes)
        fields[spec.name] = field
    return {"purposes": list(schema.purposes), "fields": fields}


class SchemaRegistry:
    """Every compiled schema, reloaded when the configuration version moves."""

    def __init__(self) -> None:
        self._copy: VersionedCopy[dict[str, CompiledSchema]] = VersionedCopy(_load, {})

    def all(self, conn: Connection, version: int | None = None) -> dict[str, CompiledSchema]:
        """The current compiled schemas (see VersionedCopy.get)."""
        return self._copy.get(conn, version)

    def last(self) -> dict[str, CompiledSchema]:
        """The schemas as last loaded, without touching storage (maybe no longer current)."""
        return self._copy.last()

    def put(
        self,
        conn: Connection,
        event_type: str,
        definition: Mapping[str, Any],
        purposes: Mapping[str, Purpose],
        *,
        actor: str,
    ) -> tuple[EventSchema, bool]:
        """Create or replace a schema (a new version); returns it and whether it is new."""
        schema = parse(event_type, definition, purposes)
        previous = sql.get_schema(conn, event_type)
        version = 1 if previous is None else int(previous.version) + 1
        schema = EventSchema(event_type, version, schema.purposes, schema.fields)
        compile_schema(schema)
        sql.put_schema(
            conn,
            event_type,
            version,
            json.dumps(to_definition(schema), sort_keys=True),
            clock.now(),
            exists=previous is not None,
        )
        bump_config_version(conn)
        audit.record(
            conn,
            AuditAction.SCHEMA_UPDATED,
            actor=actor,
            details={
                "event_type": event_type,
                "version": version,
                "purposes": list(schema.purposes),
            },
        )
        return schema, previous is None


def _load(conn: Connection) -> dict[str, CompiledSchema]:
    return {row.event_type: compile_schema(_schema(row)) for row in sql.list_schemas(conn)}


def _schema(row: Any) -> EventSchema:
    definition = json.loads(row.definition)
    specs: Sequence[FieldSpec] = [
        FieldSpec(
            name,
            FieldType(spec["type"]),
            spec["category"],
            Treatment(spec["treatment"]),
            frozenset(spec["purposes"]) if "purposes" in spec else None,
            bool(spec["required"]),
        )
        for name, spec in definition["fields"].items()
    ]
    return EventSchema(
        row.event_type, int(row.version), tuple(definition["purposes"]), tuple(specs)
    )
