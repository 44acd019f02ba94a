"""`consentry evaluate`: no server, no database. One violation of each rule gives exactly those
(code, file, path) and exit 1; what export-config writes from a clean server gives exit 0;
`--json` parses; a file that is not YAML exits 2; every rule is in the documentation."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from consentry.app import create_app
from consentry.cli import app
from consentry.cli.evaluation import RULES
from consentry.settings import Settings
from tests.cli.test_configfiles import cli, configure

DOCS = Path(__file__).parents[2] / "docs" / "privacy-as-code.md"
# No store: evaluate reads only the files, and the exporter's region from the settings.
ENV = {"CONSENTRY_EXPORTER": "EU"}


def system(**fields: Any) -> dict[str, Any]:
    return {
        "name": "A system",
        "kind": "webhook",
        "endpoint": "https://receiver.example.com/hook",
        "purposes": ["analytics"],
        "data_categories": ["system.operations"],
        "region": "EU",
        "transfer_mechanism": "none",
        "dpa_signed": True,
    } | fields


PURPOSES = {
    "analytics": {"name": "Analytics", "legal_basis": "consent", "retention_days": 395},
    "loyalty": {"name": "Loyalty", "legal_basis": "contract", "retention_days": 730},
    "care": {
        "name": "Care",
        "legal_basis": "contract",
        "retention_days": 3650,
        "special_category_condition": "h",
    },
    "advertising": {
        "name": "Advertising",
        "legal_basis": "consent",
        "retention_days": 90,
        "sale_or_share": True,
    },
    "promo": {"name": "Promo", "legal_basis": "consent"},
}


def field(category: str | None, treatment: str = "keep", **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "treatment": treatment} | more
    if category is not None:
        out["category"] = category
    return out


SCHEMAS = {
    "page_view": {
        "purposes": ["analytics", "loyalty"],
        "fields": {
            "url": field("system.operations"),
            # Kept for analytics only, which works on pseudonyms: in clear for nothing.
            "email": field("user.contact.email", purposes=["analytics"]),
            # Kept for loyalty too (a contract): it may stay as it is.
            "phone": field("user.contact.phone_number"),
            "visitor": field("user.unique_id", "pseudonymise"),
            "symptom": field("user.health_and_medical"),
            "note": field(None, "redact"),
        },
    },
    "visit": {
        "purposes": ["care"],
        # Art. 9(2)(h): a health purpose may keep health data.
        "fields": {"diagnosis": field("user.health_and_medical", "tokenise")},
    },
}

SYSTEMS = {
    "offshore": system(region="OTHER"),
    "safe": system(region="US", transfer_mechanism="scc", tia_ref="TIA-7"),
    "agency": system(vendor="agency", dpa_signed=False),
    "broker": system(purposes=["advertising"], ccpa_role="third_party"),
    "partner": system(
        purposes=["advertising"],
        ccpa_role="third_party",
        rights_endpoint="https://partner.example.com/rights",
    ),
    "nameless": {k: v for k, v in system().items() if k != "kind"},
}

VENDORS = {
    "agency": {
        "name": "Agency Ltd",
        "dpa_signed_at": "2025-01-15",
        "risk": "low",
        "reviewed_at": "2026-06-01",
    },
    "undated": {"name": "Undated Ltd", "risk": "high"},
}

NOTICES = {"main": [{"version": "1", "text": "We use data.", "purposes": ["nothing"]}]}

EXPECTED = {
    ("unknown_purpose", "notices.yaml", "main.0.purposes"),
    ("purpose_without_retention", "purposes.yaml", "promo.retention_days"),
    ("personal_field_in_clear", "schemas.yaml", "page_view.fields.email"),
    ("special_category_without_condition", "schemas.yaml", "page_view.fields.symptom"),
    ("field_without_category", "schemas.yaml", "page_view.fields.note.category"),
    ("transfer_blocked", "systems.yaml", "offshore.transfer_mechanism"),
    ("dpa_missing", "systems.yaml", "agency.dpa_signed"),
    ("sale_without_opt_out_path", "systems.yaml", "broker.rights_endpoint"),
    ("invalid_request", "systems.yaml", "nameless.kind"),
    ("invalid_request", "vendors.yaml", "undated.reviewed_at"),
}


def write(directory: Path, **kinds: Any) -> Path:
    directory.mkdir(exist_ok=True)
    for kind, content in kinds.items():
        (directory / f"{kind}.yaml").write_text(yaml.safe_dump(content), encoding="utf-8")
    return directory


@pytest.fixture
def violating(tmp_path: Path) -> Path:
    return write(
        tmp_path / "config",
        purposes=PURPOSES,
        schemas=SCHEMAS,
        systems=SYSTEMS,
        notices=NOTICES,
        vendors=VENDORS,
    )


def evaluate(directory: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["evaluate", str(directory), *args], env=ENV)


def test_one_violation_of_each_rule_gives_exactly_those(violating: Path) -> None:
    result = evaluate(violating, "--json")
    assert result.exit_code == 1, result.output
    found = json.loads(result.output)
    assert {(v["code"], v["file"], v["path"]) for v in found["violations"]} == EXPECTED
    assert found["count"] == len(EXPECTED)
    rules = {v["code"]: v["rule"] for v in found["violations"]}
    assert "pseudonymise, tokenise or drop it" in rules["personal_field_in_clear"]
    assert "OTHER under EU rules" in rules["transfer_blocked"]
    # Every rule of the table is exercised.
    assert {code for code, _, _ in RULES} <= set(rules)


def test_the_text_output_names_file_path_and_code(violating: Path) -> None:
    result = evaluate(violating)
    assert result.exit_code == 1, result.output
    assert "schemas.yaml: page_view.fields.email  personal_field_in_clear" in result.output
    assert "systems.yaml: agency.dpa_signed  dpa_missing" in result.output
    assert result.output.rstrip().endswith(f"{len(EXPECTED)} violation(s).")


def test_each_fix_clears_its_violation(violating: Path) -> None:
    purposes = PURPOSES | {"promo": PURPOSES["promo"] | {"retention_days": 30}}
    fields = dict(SCHEMAS["page_view"]["fields"])  # type: ignore[call-overload]
    fields |= {
        "email": field("user.contact.email", "pseudonymise", purposes=["analytics"]),
        "symptom": field("user.health_and_medical", "drop"),
        "note": field("user.content", "redact"),
    }
    schemas = SCHEMAS | {"page_view": SCHEMAS["page_view"] | {"fields": fields}}
    systems = {
        "offshore": system(region="JP", transfer_mechanism="adequacy"),
        "agency": system(vendor="agency", dpa_signed=True),
        "broker": SYSTEMS["partner"],
        "nameless": system(),
    }
    notices = {"main": [{"version": "1", "text": "We use data.", "purposes": ["analytics"]}]}
    vendors = {"agency": VENDORS["agency"]}
    write(
        violating,
        purposes=purposes,
        schemas=schemas,
        systems=systems,
        notices=notices,
        vendors=vendors,
    )
    result = evaluate(violating)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "No violations."


def test_a_uk_exporter_judges_transfers_by_uk_rules(tmp_path: Path) -> None:
    # An adequacy the EU granted (Korea, 2021) and the UK only in 2022: both hold today.
    seoul = system(region="KR", transfer_mechanism="none")
    files = write(tmp_path / "c", purposes=PURPOSES, systems={"seoul": seoul})
    for exporter in ("EU", "UK"):
        result = CliRunner().invoke(
            app, ["evaluate", str(files)], env={"CONSENTRY_EXPORTER": exporter}
        )
        # `none` is no ground even where an adequacy decision holds: delivery refuses it.
        assert f"KR under {exporter} rules" in result.output, result.output
    write(files, systems={"seoul": system(region="KR", transfer_mechanism="adequacy")})
    result = evaluate(files)
    assert "seoul" not in result.output, result.output


def test_the_vendor_register_decides_dpas_and_onward_transfers(tmp_path: Path) -> None:
    register = {
        "lapsed": VENDORS["agency"] | {"dpa_expires_at": "2025-12-31"},
        "onward": VENDORS["agency"]
        | {
            "sub_processors": [
                {"name": "Far Co.", "region": "OTHER", "authorised_at": "2025-01-15"}
            ]
        },
    }
    systems = {
        "unknown": system(vendor="nobody"),
        "expired": system(vendor="lapsed"),
        "relayed": system(vendor="onward"),
    }
    clean = {k: v for k, v in PURPOSES.items() if k != "promo"}
    files = write(tmp_path / "c", purposes=clean, vendors=register, systems=systems)
    found = json.loads(evaluate(files, "--json").output)["violations"]
    assert {(v["code"], v["path"]) for v in found} == {
        ("dpa_missing", "unknown.vendor"),
        ("dpa_missing", "expired.vendor"),
        # Its vendor passes the data on to a region no ground covers.
        ("transfer_blocked", "relayed.vendor"),
    }
    rules = {v["path"]: v["rule"] for v in found}
    assert "not in vendors.yaml" in rules["unknown.vendor"]
    assert "no DPA in force" in rules["expired.vendor"]
    assert "a sub-processor of vendor onward under EU rules" in rules["relayed.vendor"]


def test_a_notice_id_the_api_could_not_address_is_a_violation(tmp_path: Path) -> None:
    """The id rule is notices.check_id's, the route's and apply's alike."""
    clean = {k: v for k, v in PURPOSES.items() if k != "promo"}
    version = {"version": "1", "text": "We use data.", "purposes": sorted(clean)[:1]}
    files = write(tmp_path / "n", purposes=clean, notices={"bad id/..": [version], "ok": [version]})
    found = json.loads(evaluate(files, "--json").output)["violations"]
    assert [(v["code"], v["file"], v["path"]) for v in found] == [
        ("invalid_request", "notices.yaml", "bad id/..")
    ]


def test_a_file_that_is_not_yaml_exits_2(tmp_path: Path) -> None:
    files = tmp_path / "broken"
    files.mkdir()
    (files / "systems.yaml").write_text("warehouse: [unclosed")
    result = evaluate(files, "--json")
    assert result.exit_code == 2
    assert "invalid_config_file" in result.output
    assert evaluate(tmp_path / "missing").exit_code == 2
    # Not UTF-8, or not a file: the same refusal, never a traceback.
    (files / "systems.yaml").write_bytes(b"\xff\xfe\x00warehouse: {}")
    (files / "purposes.yaml").mkdir()
    for fix in ((files / "purposes.yaml").rmdir, lambda: None):
        result = evaluate(files)
        assert result.exit_code == 2, result.output
        assert "invalid_config_file" in result.output
        assert "Traceback" not in result.output
        fix()


def test_the_command_runs_as_a_process_without_a_store(violating: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")} | ENV
    proc = subprocess.run(
        [sys.executable, "-m", "consentry.cli", "evaluate", str(violating), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    found = json.loads(proc.stdout)
    assert {(v["code"], v["file"], v["path"]) for v in found["violations"]} == EXPECTED
    # No data directory was made: it opened nothing.
    assert not (tmp_path / "consentry-data").exists()
    assert "CONSENTRY_DATA_DIR" not in proc.stderr


@pytest.fixture
def source(settings: Settings) -> Iterator[TestClient]:
    configured = dataclasses.replace(settings, allow_private_endpoints=True)
    with TestClient(create_app(configured)) as client:
        yield client


def test_what_export_config_writes_from_a_clean_server_passes(
    source: TestClient, settings: Settings, tmp_path: Path
) -> None:
    configure(source)
    files = tmp_path / "exported"
    assert cli(settings, "export-config", str(files)).exit_code == 0
    result = evaluate(files)
    assert result.exit_code == 0, result.output
    found = json.loads(evaluate(files, "--json").output)
    assert found == {"violations": [], "count": 0}


def test_every_rule_is_documented_with_its_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for code, _, home in RULES:
        assert f"| `{code}` |" in text, code
        assert home.split()[0] in text, home
