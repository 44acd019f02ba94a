"""Whether a processing needs a data-protection impact assessment (Art. 35): its triggers, the
Art. 35(3) cases and WP248 criteria they meet, and a 0-100 risk score (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from consentry.consent.models import Purpose
from consentry.consent.policy import is_special_category


class Trigger(StrEnum):
    """API.md, Governance: Assessments (in that order)."""

    SPECIAL_CATEGORY = "special_category"
    SYSTEMATIC_MONITORING = "systematic_monitoring"
    AUTOMATED_DECISIONS = "automated_decisions"
    TRANSFER_WITHOUT_ADEQUACY = "transfer_without_adequacy"
    CHILDRENS_DATA = "childrens_data"
    NEW_TECHNOLOGY = "new_technology"
    PROFILING = "profiling"
    LARGE_SCALE = "large_scale"
    COMBINED_DATASETS = "combined_datasets"
    VULNERABLE_SUBJECTS = "vulnerable_subjects"


T = Trigger

# Each trigger's share of the risk score: the score is their sum, capped at 100, so a trigger
# more never lowers it (docs/decisions.md).
WEIGHTS: Mapping[Trigger, int] = {
    T.SPECIAL_CATEGORY: 25,
    T.AUTOMATED_DECISIONS: 25,
    T.CHILDRENS_DATA: 20,
    T.SYSTEMATIC_MONITORING: 15,
    T.PROFILING: 15,
    T.TRANSFER_WITHOUT_ADEQUACY: 15,
    T.LARGE_SCALE: 15,
    T.VULNERABLE_SUBJECTS: 15,
    T.NEW_TECHNOLOGY: 10,
    T.COMBINED_DATASETS: 10,
}

# The WP248 rev.01 criterion each trigger meets (children's data is a kind of vulnerable
# subjects: both meet criterion 7, counted once). Two criteria met: an assessment is required.
CRITERIA: Mapping[Trigger, str] = {
    T.PROFILING: "evaluation_or_scoring",
    T.AUTOMATED_DECISIONS: "automated_decision_with_legal_effect",
    T.SYSTEMATIC_MONITORING: "systematic_monitoring",
    T.SPECIAL_CATEGORY: "sensitive_data",
    T.LARGE_SCALE: "large_scale",
    T.COMBINED_DATASETS: "matching_or_combining_datasets",
    T.VULNERABLE_SUBJECTS: "vulnerable_subjects",
    T.CHILDRENS_DATA: "vulnerable_subjects",
    T.NEW_TECHNOLOGY: "innovative_technology",
    T.TRANSFER_WITHOUT_ADEQUACY: "transfer_outside_adequacy",
}

# Categories whose collection in events is continuous tracking of behaviour or whereabouts.
MONITORING_PREFIXES = ("user.location", "user.behavior", "user.device")
# Employees are vulnerable subjects (WP248: the power imbalance with their employer).
EMPLOYEE_PREFIXES = ("user.workplace", "user.job_title")
CHILDREN_PREFIXES = ("user.childrens",)
# Data uses that evaluate a person to tailor what they see (profiling, WP248 criterion 1).
PROFILING_USES = ("personalize", "marketing.advertising")
# Uses whose outcome is a decision about a person (fraud refusals, hiring, credit) or an
# explicit profiling use: the stand-in for the purpose flag `automated_decision_basis`.
DECISION_USES = (
    "essential.fraud_detection",
    "employment.recruitment",
    "finance",
    "personalize.profiling",
    "personalize.content.profiling",
    "marketing.advertising.profiling",
)
# Uses that run a model (training an AI system): the stand-in for recorded model inferences.
INFERENCE_USES = ("train_ai_system",)


@dataclass(frozen=True, slots=True)
class Scope:
    """One processing (one purpose): what it collects and where it goes, and its volumes."""

    purpose: str
    event_types: tuple[str, ...]
    # Categories its events keep for it and its systems receive.
    categories: frozenset[str]
    systems: tuple[str, ...]
    # Its systems outside the exporter's area with no adequacy decision covering them.
    unprotected_transfers: tuple[str, ...]
    subjects: int
    # Of its subjects, those of a minor age band, and those under 13.
    minors: int
    under_13: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    triggers: tuple[Trigger, ...]
    score: int
    required: bool
    # The Art. 35(3) points that apply ("a", "b", "c") and the WP248 criteria met.
    art35_3: tuple[str, ...]
    criteria: tuple[str, ...]


def _under(value: str | None, prefixes: Iterable[str]) -> bool:
    return value is not None and any(value == p or value.startswith(p + ".") for p in prefixes)


def _any_under(categories: Collection[str], prefixes: Iterable[str]) -> bool:
    return any(_under(c, prefixes) for c in categories)


# The two triggers another change wires to recorded facts (the purpose flag
# `automated_decision_basis`, model inferences): until then, from the purpose's data use.
def _automated_decision_purposes(purposes: Iterable[Purpose]) -> frozenset[str]:
    """Purposes whose processing makes automated decisions about people (Art. 22): those
    with a basis for significant ones (`automated_decision_basis`), and those whose fideslang
    data use is one."""
    return frozenset(
        p.key
        for p in purposes
        if p.automated_decision_basis is not None or _under(p.data_use, DECISION_USES)
    )


def _model_inference_purposes(
    purposes: Iterable[Purpose], inferred: frozenset[str]
) -> frozenset[str]:
    """Purposes served by model inference (new technology, WP248 criterion 8): those some
    recorded inference names, and those whose data use is one."""
    return frozenset(
        p.key for p in purposes if p.key in inferred or _under(p.data_use, INFERENCE_USES)
    )


def evaluate_all(
    purposes: Mapping[str, Purpose],
    scopes: Mapping[str, Scope],
    large_scale_subjects: int,
    inferred: frozenset[str] = frozenset(),
) -> dict[str, Evaluation]:
    """Each purpose's evaluation (a purpose without a scope is evaluated as collecting
    nothing); `inferred`: the purposes recorded model inferences name."""
    automated = _automated_decision_purposes(purposes.values())
    inference = _model_inference_purposes(purposes.values(), inferred)
    out = {}
    for key, purpose in purposes.items():
        scope = scopes.get(key) or Scope(key, (), frozenset(), (), (), 0, 0, 0)
        found = triggers(
            purpose,
            scope,
            large_scale_subjects,
            automated=key in automated,
            inference=key in inference,
        )
        out[key] = evaluation(found)
    return out


def triggers(
    purpose: Purpose,
    scope: Scope,
    large_scale_subjects: int,
    *,
    automated: bool,
    inference: bool,
) -> frozenset[Trigger]:
    """The triggers one processing meets (docs/governance.md, Assessments, says each rule)."""
    cats = scope.categories
    found = set()
    if purpose.special_category_condition or any(is_special_category(c) for c in cats):
        found.add(T.SPECIAL_CATEGORY)
    if _any_under(cats, MONITORING_PREFIXES):
        found.add(T.SYSTEMATIC_MONITORING)
    if automated:
        found.add(T.AUTOMATED_DECISIONS)
    if scope.unprotected_transfers:
        found.add(T.TRANSFER_WITHOUT_ADEQUACY)
    if scope.minors > 0 or _any_under(cats, CHILDREN_PREFIXES):
        found.add(T.CHILDRENS_DATA)
    if inference:
        found.add(T.NEW_TECHNOLOGY)
    if _under(purpose.data_use, PROFILING_USES):
        found.add(T.PROFILING)
    if scope.subjects >= large_scale_subjects:
        found.add(T.LARGE_SCALE)
    if len(scope.event_types) >= 2:
        found.add(T.COMBINED_DATASETS)
    if (
        scope.under_13 > 0
        or _any_under(cats, EMPLOYEE_PREFIXES)
        or _under(purpose.data_use, ("employment",))
    ):
        found.add(T.VULNERABLE_SUBJECTS)
    return frozenset(found)


def evaluation(found: Collection[Trigger]) -> Evaluation:
    """Score, Art. 35(3) cases and WP248 criteria of a set of triggers: required when a case
    applies or two criteria are met."""
    ordered = tuple(t for t in Trigger if t in found)
    cases = []
    # (a) systematic and extensive evaluation by automated processing with decisions.
    if T.AUTOMATED_DECISIONS in found:
        cases.append("a")
    # (b) special categories on a large scale; (c) systematic monitoring on a large scale.
    if T.LARGE_SCALE in found and T.SPECIAL_CATEGORY in found:
        cases.append("b")
    if T.LARGE_SCALE in found and T.SYSTEMATIC_MONITORING in found:
        cases.append("c")
    criteria = tuple(dict.fromkeys(CRITERIA[t] for t in ordered))
    return Evaluation(
        triggers=ordered,
        score=min(100, sum(WEIGHTS[t] for t in ordered)),
        required=bool(cases) or len(criteria) >= 2,
        art35_3=tuple(cases),
        criteria=criteria,
    )
