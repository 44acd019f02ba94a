"""Interop with Fides: purposes, event schemas and systems as fideslang data uses, datasets and
systems (YAML), out and back in. What fideslang has no field for travels where fideslang keeps
what it does not model: a data use's `tags` (`consentry:<field>=<value>`) and a dataset's or
system's `meta.consentry`; so an export imported into an empty server exports the same again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from consentry.consent.models import LegalBasis, Purpose
from consentry.errors import InvalidFideslang, MalformedYaml
from consentry.governance.datamap import to_definition as system_definition
from consentry.governance.models import System
from consentry.ingest.models import FieldType, Treatment, is_personal
from consentry.ingest.schemas import CompiledSchema

TAG = "consentry:"
# The data subject of every declaration and dataset: the customer whose events these are.
SUBJECT = "customer"
# Resource types imported; the other fideslang types are validated and ignored.
IMPORTED = ("data_use", "dataset", "system")
# Fideslang's GDPR Art. 6 bases on a privacy declaration.
LEGAL_BASIS = {
    LegalBasis.CONSENT: "Consent",
    LegalBasis.CONTRACT: "Contract",
    LegalBasis.LEGAL_OBLIGATION: "Legal obligations",
    LegalBasis.VITAL_INTERESTS: "Vital interests",
    LegalBasis.PUBLIC_TASK: "Public interest",
    LegalBasis.LEGITIMATE_INTEREST: "Legitimate interests",
}
# Fides's data types (fideslang DATA_TYPE_NAMES) for a field's type; Fides has no time type.
DATA_TYPE = {
    FieldType.STRING: "string",
    FieldType.INTEGER: "integer",
    FieldType.NUMBER: "float",
    FieldType.BOOLEAN: "boolean",
    FieldType.TIMESTAMP: "string",
}
# A purpose's fields fideslang has no place for, in the order its tags carry them.
_PURPOSE_TAGS = (
    "legal_basis",
    "retention_days",
    "consent_ttl_days",
    "sale_or_share",
    "direct_marketing",
    "strictly_necessary",
    "special_category_condition",
    "us_ca_model",
    "retain_identities",
)
_INTEGERS = frozenset({"retention_days", "consent_ttl_days"})
_BOOLEANS = frozenset(
    {"sale_or_share", "direct_marketing", "strictly_necessary", "retain_identities"}
)
# Of a system's API shape, what its privacy declarations carry instead of meta.consentry.
_DECLARED = ("name", "purposes", "data_categories")


def data_use_key(purpose: Purpose) -> str:
    """A purpose's fideslang data-use key: under its fideslang data use when it names one (a
    custom data use, as Fides extends its taxonomy), else the purpose's own key."""
    return purpose.key if purpose.data_use is None else f"{purpose.data_use}.{purpose.key}"


def export(
    purposes: Mapping[str, Purpose],
    schemas: Mapping[str, CompiledSchema],
    systems: Mapping[str, System],
) -> str:
    """The configuration as one fideslang document (YAML), checked by fideslang's own models."""
    keys = {key: data_use_key(p) for key, p in purposes.items()}
    document = {
        "data_use": [_data_use(p) for _, p in sorted(purposes.items())],
        "dataset": [_dataset(c, keys) for _, c in sorted(schemas.items())],
        "system": [_system(s, purposes, keys) for _, s in sorted(systems.items())],
    }
    _validate(document)
    text: str = yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    return text


def _data_use(purpose: Purpose) -> dict[str, Any]:
    out: dict[str, Any] = {"fides_key": data_use_key(purpose), "name": purpose.name}
    if purpose.description:
        out["description"] = purpose.description
    out["parent_key"] = purpose.data_use
    tags = []
    for name in _PURPOSE_TAGS:
        value = getattr(purpose, name)
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        tags.append(f"{TAG}{name}={text}")
    out["tags"] = tags
    return out


def _dataset(compiled: CompiledSchema, keys: Mapping[str, str]) -> dict[str, Any]:
    schema = compiled.schema
    fields = []
    details: dict[str, Any] = {}
    for spec in sorted(schema.fields, key=lambda s: s.name):
        field: dict[str, Any] = {"name": spec.name, "data_categories": [spec.category]}
        if spec.purposes is not None:
            field["data_uses"] = sorted(keys[p] for p in spec.purposes)
        field["fides_meta"] = {"data_type": DATA_TYPE[spec.type]}
        fields.append(field)
        details[spec.name] = {
            "type": spec.type.value,
            "treatment": spec.treatment.value,
            "required": spec.required,
        }
    return {
        "fides_key": schema.event_type,
        "name": schema.event_type,
        "meta": {"consentry": {"fields": details}},
        "data_uses": [keys[p] for p in schema.purposes],
        "data_subjects": [SUBJECT],
        "collections": [{"name": schema.event_type, "fields": fields}],
    }


def _system(
    system: System, purposes: Mapping[str, Purpose], keys: Mapping[str, str]
) -> dict[str, Any]:
    details = system_definition(system)
    for name in _DECLARED:
        details.pop(name)
    declarations = [
        {
            "name": key,
            "data_use": keys[key],
            "data_categories": sorted(system.data_categories),
            "data_subjects": [SUBJECT],
            "legal_basis_for_processing": LEGAL_BASIS[purposes[key].legal_basis],
            "retention_period": f"{purposes[key].retention_days} days",
        }
        for key in sorted(system.purposes)
        if key in purposes
    ]
    return {
        "fides_key": system.system_id,
        "name": system.name,
        "system_type": system.kind.value,
        "meta": {"consentry": details},
        "privacy_declarations": declarations,
    }


class _Loader(yaml.SafeLoader):  # type: ignore[misc] # PyYAML is untyped
    """Plain data only: no aliases (a few bytes of them expand into a body's worth many times
    over), and dates stay strings, as the API takes them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise MalformedYaml("YAML aliases are not accepted")
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(body: bytes) -> dict[str, list[dict[str, Any]]]:
    """A fideslang document from a YAML body, checked by fideslang's models: its resources by
    type (each a list of mappings)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedYaml("the body is not UTF-8") from None
    if not text.strip():
        raise MalformedYaml("the body is empty: send a fideslang YAML document")
    try:
        value = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise MalformedYaml(f"the body is not valid YAML{where}") from None
    except RecursionError:
        raise MalformedYaml("the YAML is nested too deep") from None
    return checked(value)


def checked(value: Any) -> dict[str, list[dict[str, Any]]]:
    """`value` (YAML or JSON, decoded) as a fideslang document, checked by fideslang's models:
    its resources by type, each a list of mappings."""
    if not isinstance(value, dict):
        raise InvalidFideslang("a fideslang document is a mapping of resource types to lists")
    from fideslang.models import Taxonomy  # noqa: PLC0415 - heavy, used rarely

    unknown = sorted(str(k) for k in value if k not in Taxonomy.model_fields)
    if unknown:
        raise InvalidFideslang(f"{unknown[0]!r} is not a fideslang resource type")
    for kind, resources in value.items():
        if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
            raise InvalidFideslang(f"{kind} is a list of resources")
    _validate(value)
    return value


def _validate(document: Mapping[str, Any]) -> None:
    from fideslang.models import Taxonomy  # noqa: PLC0415 - heavy, used rarely

    try:
        Taxonomy.model_validate(document)
    except (ValidationError, ValueError, TypeError) as exc:
        if isinstance(exc, ValidationError) and exc.errors():
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidFideslang(f"{where}: {first['msg']}") from None
        raise InvalidFideslang("the document is not valid fideslang") from None


class Bodies:
    """An imported document as API bodies: purposes, schemas and systems by their keys, in the
    shapes of their PUT routes (validated there), and the count of resources ignored."""

    def __init__(self) -> None:
        self.purposes: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, dict[str, Any]] = {}
        self.systems: dict[str, dict[str, Any]] = {}
        self.ignored: dict[str, int] = {}


def bodies(document: Mapping[str, list[dict[str, Any]]], existing: Mapping[str, Purpose]) -> Bodies:
    """What the document asks of the configuration; InvalidFideslang for what Consentry cannot
    map (a data use without its legal basis, a system without its endpoint, ...)."""
    out = Bodies()
    keys = {data_use_key(p): key for key, p in existing.items()}
    for resource in document.get("data_use", []):
        key, purpose = _purpose(resource)
        out.purposes[key] = purpose
        keys[resource["fides_key"]] = key
    for resource in document.get("dataset", []):
        out.schemas[resource["fides_key"]] = _schema(resource, keys)
    for resource in document.get("system", []):
        out.systems[resource["fides_key"]] = _system_body(resource, keys)
    for kind, resources in document.items():
        if kind not in IMPORTED and resources:
            out.ignored[kind] = len(resources)
    return out


def _purpose(resource: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    fides_key = str(resource["fides_key"])
    key = fides_key.rsplit(".", 1)[-1]
    body: dict[str, Any] = {
        "name": resource.get("name") or key,
        "description": resource.get("description") or "",
        "data_use": resource.get("parent_key"),
    }
    for tag in resource.get("tags") or ():
        if not isinstance(tag, str) or not tag.startswith(TAG) or "=" not in tag:
            continue
        name, _, value = tag[len(TAG) :].partition("=")
        if name not in _PURPOSE_TAGS:
            raise InvalidFideslang(f"data use {fides_key}: no purpose field {name!r}")
        body[name] = _tag_value(fides_key, name, value)
    for needed in ("legal_basis", "retention_days"):
        if needed not in body:
            raise InvalidFideslang(
                f"data use {fides_key}: a purpose needs its {needed} (tag {TAG}{needed}=...)"
            )
    return key, body


def _tag_value(fides_key: str, name: str, value: str) -> Any:
    if name in _INTEGERS:
        if not value.isdigit() or len(value) > 6:
            raise InvalidFideslang(f"data use {fides_key}: {name} is a number of days")
        return int(value)
    if name in _BOOLEANS:
        if value not in {"true", "false"}:
            raise InvalidFideslang(f"data use {fides_key}: {name} is true or false")
        return value == "true"
    return value


def _schema(resource: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    event_type = str(resource["fides_key"])
    collections = resource.get("collections") or []
    if len(collections) != 1:
        raise InvalidFideslang(f"dataset {event_type}: one collection, the event type's fields")
    details = _consentry(resource, f"dataset {event_type}").get("fields") or {}
    if not isinstance(details, dict):
        raise InvalidFideslang(f"dataset {event_type}: meta.consentry.fields is a mapping")
    fields: dict[str, Any] = {}
    for field in collections[0].get("fields") or []:
        name = str(field["name"])
        where = f"dataset {event_type}, field {name}"
        if field.get("fields"):
            raise InvalidFideslang(f"{where}: an event's fields are not nested")
        categories = field.get("data_categories") or []
        if len(categories) != 1:
            raise InvalidFideslang(f"{where}: one data category")
        detail = details.get(name) or {}
        if not isinstance(detail, dict):
            raise InvalidFideslang(f"{where}: meta.consentry.fields.{name} is a mapping")
        fides_type = (field.get("fides_meta") or {}).get("data_type")
        spec: dict[str, Any] = {
            "type": detail.get("type") or ("number" if fides_type == "float" else "string"),
            "category": categories[0],
            # Without a treatment of its own, nothing personal is stored until one is declared.
            "treatment": detail.get("treatment")
            or (Treatment.DROP.value if is_personal(categories[0]) else Treatment.KEEP.value),
            "required": detail.get("required", False),
        }
        if field.get("data_uses") is not None:
            spec["purposes"] = [_purpose_of(use, keys, where) for use in field["data_uses"]]
        fields[name] = spec
    uses = resource.get("data_uses") or []
    return {
        "purposes": [_purpose_of(use, keys, f"dataset {event_type}") for use in uses],
        "fields": fields,
    }


def _system_body(resource: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    system_id = str(resource["fides_key"])
    details = _consentry(resource, f"system {system_id}")
    if not details:
        raise InvalidFideslang(
            f"system {system_id}: meta.consentry holds its kind, endpoint, region, transfer "
            "mechanism and DPA"
        )
    purposes: list[str] = []
    categories: set[str] = set()
    for declaration in resource.get("privacy_declarations") or []:
        key = _purpose_of(declaration["data_use"], keys, f"system {system_id}")
        purposes.append(key)
        categories.update(declaration.get("data_categories") or [])
    body = dict(details)
    body.setdefault("kind", resource.get("system_type"))
    return body | {
        "name": resource.get("name") or system_id,
        "purposes": list(dict.fromkeys(purposes)),
        "data_categories": sorted(categories),
    }


def _consentry(resource: Mapping[str, Any], where: str) -> dict[str, Any]:
    meta = resource.get("meta") or {}
    details = meta.get("consentry") if isinstance(meta, dict) else None
    if details is None:
        return {}
    if not isinstance(details, dict):
        raise InvalidFideslang(f"{where}: meta.consentry is a mapping")
    return details


def _purpose_of(use: Any, keys: Mapping[str, str], where: str) -> str:
    key = keys.get(str(use))
    if key is None:
        raise InvalidFideslang(f"{where}: data use {use!r} is no purpose here or in the document")
    return key
