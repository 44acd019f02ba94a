"""The dashboard's pages (API.md, Pages: /dashboard): the figures, the request backlog with an
action on each request, the consent report with its filters and CSV. Each page reads the same
service calls as the API; each action validates its form with the API's own body model and
calls the same method, as the signed-in person (`person:<id>` in the audit log)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from consentry.audit.verify import verify_now
from consentry.auth.models import Permission
from consentry.consent import report
from consentry.consent.models import Source, State
from consentry.dsr.handlers import AckIn, DecisionIn, ExtendIn, RejectIn, VerificationIn
from consentry.dsr.records import REQUEST_ID
from consentry.http.headers import PAGE_HEADERS
from consentry.people.models import Session
from consentry.runtime import Runtime
from consentry.web import dashboard
from consentry.web.brand import brand_of
from consentry.web.pages import render
from consentry.web.routes import Form, Page, problem, see_other
from consentry.web.staff import may, runtime_of, signed_in

REPORT_ROWS = 100


def _actor(session: Session) -> str:
    return f"person:{session.person_id}"


def _page(
    request: Request, session: Session, template: str, *, status: int = 200, **context: Any
) -> Response:
    rt = runtime_of(request)
    return render(
        request,
        template,
        status=status,
        brand=brand_of(rt.settings),
        role=session.role.value,
        csrf=session.csrf_token,
        can_act=may(session, Permission.REQUESTS_MANAGE),
        can_report=may(session, report.PERMISSION),
        can_verify=may(session, Permission.AUDIT_READ),
        can_assess=may(session, Permission.ASSESSMENTS_READ),
        **context,
    )


def dashboard_page(request: Request, form: Form) -> Response:
    """The dashboard: every figure, the backlog, deliveries, the audit log."""
    session = signed_in(request)
    if session is None:
        return see_other("/signin")
    return _page(request, session, "dashboard.html", **dashboard.view(runtime_of(request)))


def _filters(request: Request) -> report.ReportFilter | str:
    """The report's filters from the query, or what is wrong with them."""
    q = request.query_params

    def when(name: str) -> datetime | None:
        """A day from the form's date field, as its start in UTC."""
        value = q.get(name, "")
        return datetime.combine(date.fromisoformat(value), time(), UTC) if value else None

    try:
        start, end = when("from"), when("to")
    except ValueError:
        return "Dates are written YYYY-MM-DD."
    try:
        # The API's own types: a state or source it knows, or none.
        state = State(q["state"]).value if q.get("state") else None
        source = Source(q["source"]).value if q.get("source") else None
    except ValueError:
        return "Choose a state and a source from the lists."
    if start and end and start > end:
        return "The first day is after the last."
    return report.ReportFilter(q.get("purpose") or None, state, source, start, end)


def report_page(request: Request, form: Form) -> Response:
    """The consent report: the first entries of the filters chosen, and a CSV of them all."""
    session = signed_in(request)
    if session is None:
        return see_other("/signin")
    rt = runtime_of(request)
    if not may(session, report.PERMISSION):
        return problem(request, rt.settings, 403, "Not for your role", "Ask a DPO.", "/dashboard")
    wanted = _filters(request)
    if isinstance(wanted, str):
        return problem(
            request, rt.settings, 422, "The filters are not right", wanted, "/dashboard/consents"
        )
    rows = report.page(rt.store, wanted, after=0, limit=REPORT_ROWS, actor=_actor(session))
    with rt.store.read() as conn:
        purposes = sorted(rt.purposes.all(conn))
    return _page(
        request,
        session,
        "consents.html",
        rows=rows,
        limit=REPORT_ROWS,
        purposes=purposes,
        states=[s.value for s in State],
        sources=[s.value for s in Source],
        query=request.url.query,
        chosen=request.query_params,
    )


def report_csv(request: Request, form: Form) -> Response:
    """The whole consent report of the filters chosen, as CSV."""
    session = signed_in(request)
    if session is None:
        return see_other("/signin")
    rt = runtime_of(request)
    wanted = _filters(request)
    if not may(session, report.PERMISSION) or isinstance(wanted, str):
        return problem(
            request,
            rt.settings,
            403,
            "Not available",
            "Check the filters and your role.",
            "/dashboard",
        )
    lines = report.csv_lines(rt.store, wanted, actor=_actor(session))
    first = next(lines)

    def body() -> Any:
        yield first
        yield from lines

    headers = {**PAGE_HEADERS, "Content-Disposition": 'attachment; filename="consent-report.csv"'}
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)


def _acting(
    request: Request, form: Form, permission: Permission
) -> tuple[Runtime, Session] | Response:
    """A form sent by a signed-in person whose role holds `permission`, with the session's
    CSRF token; otherwise the page to answer with."""
    session = signed_in(request)
    if session is None:
        return see_other("/signin")
    rt = runtime_of(request)
    if not rt.people.csrf_ok(session, form.get("csrf", "")):
        return problem(
            request, rt.settings, 403, "The form has expired", "Reload the page.", "/dashboard"
        )
    if not may(session, permission):
        return problem(
            request,
            rt.settings,
            403,
            "Not for your role",
            "Your role does not allow this.",
            "/dashboard",
        )
    return rt, session


def verify_audit(request: Request, form: Form) -> Response:
    """Verify the whole audit log now (as `consentry audit verify`); the dashboard then shows
    this verification as the last."""
    acting = _acting(request, form, Permission.AUDIT_READ)
    if isinstance(acting, Response):
        return acting
    rt, session = acting
    verify_now(rt.store, rt.signing_keys, actor=_actor(session))
    return see_other("/dashboard#h-audit")


def _action(
    model: type[BaseModel],
    act: Callable[[Any, str, BaseModel, str], object],
    fields: Callable[[Form], dict[str, Any]],
) -> Page:
    """A backlog action: the session and its CSRF token, the role's right to act, the form
    validated by the API's body model, then the same call the API makes."""

    def page(request: Request, form: Form) -> Response:
        acting = _acting(request, form, Permission.REQUESTS_MANAGE)
        if isinstance(acting, Response):
            return acting
        rt, session = acting
        request_id = form.get("request_id", "")
        if not REQUEST_ID.fullmatch(request_id):
            return problem(
                request, rt.settings, 404, "No such request", "Reload the page.", "/dashboard"
            )
        try:
            body = model.model_validate(fields(form))
        except ValidationError as error:
            detail = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
            )
            return problem(
                request,
                rt.settings,
                422,
                "The form is not complete",
                detail,
                "/dashboard#h-requests",
            )
        act(rt.requests, request_id, body, _actor(session))
        return see_other(f"/dashboard#request-{request_id}")

    return page


def _verify(requests: Any, request_id: str, body: Any, actor: str) -> object:
    return requests.verify(request_id, body.to_verification(), actor=actor)


def _extend(requests: Any, request_id: str, body: Any, actor: str) -> object:
    return requests.extend(
        request_id,
        months=body.months,
        days=body.days,
        reason=body.reason,
        subject_notified_at=body.subject_notified_at,
        actor=actor,
    )


def _reject(requests: Any, request_id: str, body: Any, actor: str) -> object:
    return requests.reject(request_id, body.reason, actor=actor)


def _decide(requests: Any, request_id: str, body: Any, actor: str) -> object:
    return requests.decide(request_id, body.purpose, body.outcome, body.grounds, actor=actor)


def _acknowledge(requests: Any, request_id: str, body: Any, actor: str) -> object:
    return requests.acknowledge(request_id, body.system_id, actor=actor, via="manual")


def _int(value: str) -> int | str | None:
    """A whole number as typed (the model refuses anything else); None when left empty."""
    value = value.strip()
    if not value:
        return None
    return int(value) if value.isascii() and value.isdecimal() and len(value) <= 6 else value


def _day(value: str) -> str:
    """A date typed as YYYY-MM-DD, as the start of that day in UTC (the model refuses
    anything else)."""
    value = value.strip()
    return f"{value}T00:00:00Z" if len(value) == 10 else value


PAGES: dict[tuple[str, str], Page] = {
    ("GET", "/dashboard"): dashboard_page,
    ("GET", "/dashboard/consents"): report_page,
    ("GET", "/dashboard/consents.csv"): report_csv,
    ("POST", "/dashboard/audit/verify"): verify_audit,
    ("POST", "/dashboard/requests/verify"): _action(
        VerificationIn,
        _verify,
        lambda f: {"method": f.get("method", ""), "level": f.get("level", "")},
    ),
    ("POST", "/dashboard/requests/extend"): _action(
        ExtendIn,
        _extend,
        lambda f: {
            "months": _int(f.get("months", "")),
            "days": _int(f.get("days", "")),
            "reason": f.get("reason", ""),
            "subject_notified_at": _day(f.get("notified_on", "")),
        },
    ),
    ("POST", "/dashboard/requests/acknowledge"): _action(
        AckIn, _acknowledge, lambda f: {"system_id": f.get("system_id", "")}
    ),
    ("POST", "/dashboard/requests/reject"): _action(
        RejectIn, _reject, lambda f: {"reason": f.get("reason", "")}
    ),
    ("POST", "/dashboard/requests/decide"): _action(
        DecisionIn,
        _decide,
        lambda f: {
            "purpose": f.get("purpose", ""),
            "outcome": f.get("outcome", ""),
            "grounds": f.get("grounds", ""),
        },
    ),
}
