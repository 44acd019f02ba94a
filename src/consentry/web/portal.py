"""The customer privacy portal (API.md, Pages: /portal): entry by a minted link or an e-mail
code, each purpose with the notice text it was granted under and a toggle writing the
ledger, the customer's requests (access, a copy of their data, erasure after a confirmation)
and their status, and the download of each completed report or copy. No personal value in any
URL; every page and file `Cache-Control: no-store`."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from consentry import clock
from consentry.auth.limits import portal_opt_out
from consentry.consent import choices
from consentry.consent.service import ConsentWrite
from consentry.consent.signals import gpc_header
from consentry.dsr.entry import Entry
from consentry.dsr.models import DOWNLOADABLE, Level, RequestType, Status
from consentry.dsr.models import Request as DataRequest
from consentry.dsr.portal import PortalSession
from consentry.dsr.records import NewRequest
from consentry.errors import (
    ConsentryError,
    PortalSessionInvalid,
    RateLimited,
    SubjectErased,
    SubjectKeyDestroyed,
)
from consentry.http.errors import status_of
from consentry.http.headers import PAGE_HEADERS
from consentry.runtime import Runtime
from consentry.subjects.models import SubjectRef
from consentry.web.brand import brand_of
from consentry.web.pages import render
from consentry.web.routes import Form, Page, client_address, problem, see_other
from consentry.web.security import clear_session_cookie, set_session_cookie

COOKIE = "consentry_portal"
PATH = "/portal"
ACTOR = "portal"
# What a customer may ask for here, and how each is named to them.
ASKABLE = {
    RequestType.ACCESS: "A report of the data held about me",
    RequestType.PORTABILITY: "A copy of my data to take elsewhere",
    RequestType.ERASURE: "Erase my data",
}
# A downloaded file's name, before its request id (nothing personal in it).
DOWNLOAD_NAMES = {RequestType.ACCESS: "my-data-report", RequestType.PORTABILITY: "my-data"}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _session(request: Request, rt: Runtime) -> PortalSession | None:
    try:
        return rt.portal_sessions.check(request.cookies.get(COOKIE))
    except PortalSessionInvalid:
        return None


def _failed(
    request: Request, rt: Runtime, error: ConsentryError, back: str | None = PATH
) -> Response:
    response = problem(request, rt.settings, status_of(type(error)), error.title, str(error), back)
    if isinstance(error, RateLimited) and error.context.get("retry_after"):
        response.headers["Retry-After"] = str(error.context["retry_after"])
    return response


def _enter(request: Request, rt: Runtime, token: str) -> Response:
    response = see_other(PATH)
    set_session_cookie(
        response, request, COOKIE, token, path=PATH, trust_proxy=rt.settings.trust_proxy
    )
    return response


def portal(request: Request, form: Form) -> Response:
    """The portal: a link's way in, the way in by e-mail code, or the customer's own page."""
    rt = _runtime(request)
    link = request.query_params.get("link")
    if link is not None:
        # The token leaves the address bar at once: the answer is a redirect to /portal.
        try:
            entry = rt.portal_links.open(link)
            token, _ = rt.portal_sessions.open(entry, Entry.MINTED_LINK, link_id=entry.link_id)
        except ConsentryError as error:
            return _failed(request, rt, error, back=None)
        return _enter(request, rt, token)
    session = _session(request, rt)
    if session is None:
        return _page(request, rt, "portal_entry.html", codes=rt.portal_codes.enabled)
    limited = _limited(request, rt)
    if limited is not None:
        return limited
    return _home(request, rt, session)


def _page(
    request: Request, rt: Runtime, template: str, *, status: int = 200, **context: Any
) -> Response:
    settings = rt.settings
    return render(
        request,
        template,
        status=status,
        brand=brand_of(settings),
        **context,
    )


def _home(request: Request, rt: Runtime, session: PortalSession) -> Response:
    now = clock.now()
    requests = rt.requests.of_subject(session.subject_id)
    try:
        with rt.store.read() as conn:
            mine = choices.choices(conn, rt.purposes, rt.consent, session.subject_id, now)
    except SubjectErased:
        return _erased(request, rt, session, requests)
    return _page(
        request,
        rt,
        "portal.html",
        choices=mine,
        requests=list(reversed(requests)),
        downloads=[
            r for r in reversed(requests) if r.type in DOWNLOADABLE and r.status is Status.COMPLETED
        ],
        askable=ASKABLE,
        csrf=session.csrf,
        level=session.verification.level.value if session.verification else "none",
    )


def _erased(
    request: Request,
    rt: Runtime,
    session: PortalSession,
    requests: list[DataRequest] | None = None,
    *,
    status: int = 200,
) -> Response:
    """Nothing is left to choose nor to download: what remains is the record of the
    requests."""
    if requests is None:
        requests = rt.requests.of_subject(session.subject_id)
    return _page(
        request,
        rt,
        "portal_erased.html",
        status=status,
        requests=list(reversed(requests)),
        askable=ASKABLE,
        csrf=session.csrf,
    )


def request_code(request: Request, form: Form) -> Response:
    """Send a 6-digit code to the address typed, if it is one on record (the same answer
    either way)."""
    rt = _runtime(request)
    address = form.get("email", "").strip()
    try:
        sent = rt.portal_codes.request(address, client=client_address(request))
    except ConsentryError as error:
        return _failed(request, rt, error)
    return _page(request, rt, "portal_code.html", email=address, expires_at=sent.expires_at)


def check_code(request: Request, form: Form) -> Response:
    """The code typed: the portal opens, or the code is refused."""
    rt = _runtime(request)
    address = form.get("email", "").strip()
    try:
        entry = rt.portal_codes.check(
            address, form.get("code", "").strip(), client=client_address(request)
        )
        token, _ = rt.portal_sessions.open(entry, Entry.CODE)
    except ConsentryError as error:
        return _failed(request, rt, error)
    return _enter(request, rt, token)


def change_consent(request: Request, form: Form) -> Response:
    """A toggle: grant a purpose under its newest notice, or withdraw it (source `web`; a
    browser's Global Privacy Control signal is honoured)."""
    rt = _runtime(request)
    # Withdrawing is never held back (Art. 7(3)): no rate limit for it.
    session = _checked(request, rt, form, limited=not portal_opt_out(form.get("choice", "")))
    if isinstance(session, Response):
        return session
    purpose = form.get("purpose", "")
    gpc = gpc_header(request.headers.get("sec-gpc"))
    ref = SubjectRef(subject_id=session.subject_id)
    try:
        if form.get("choice") == "granted":
            with rt.store.read() as conn:
                notice = choices.offered(conn, purpose)
            write = ConsentWrite(
                ref=ref,
                purposes={purpose: "granted"},
                source="web",
                notice=(notice[0], notice[1]) if notice else None,
                gpc=gpc,
            )
            rt.consent.record(write, actor=ACTOR)
        elif form.get("choice") == "withdrawn":
            rt.consent.withdraw(ref, [purpose], "web", gpc=gpc, actor=ACTOR)
        else:
            return problem(
                request, rt.settings, 400, "Choose grant or withdraw", "Send the form again.", PATH
            )
    except ConsentryError as error:
        return _failed(request, rt, error)
    return see_other(f"{PATH}#purpose-{purpose}")


def ask(request: Request, form: Form) -> Response:
    """A request for access, a copy, or erasure; erasure asks to be confirmed first."""
    rt = _runtime(request)
    session = _checked(request, rt, form)
    if isinstance(session, Response):
        return session
    try:
        kind = RequestType(form.get("type", ""))
    except ValueError:
        kind = None
    if kind not in ASKABLE:
        return problem(
            request,
            rt.settings,
            400,
            "Unknown request",
            "Choose one of the requests offered.",
            PATH,
        )
    if kind is RequestType.ERASURE and form.get("confirm") != "yes":
        return _page(request, rt, "portal_confirm.html", csrf=session.csrf)
    with rt.store.read() as conn:
        subject = rt.subjects.get(conn, session.subject_id)
    new = NewRequest(
        type=kind,
        ref=SubjectRef(subject_id=session.subject_id),
        jurisdiction=subject.effective_jurisdiction,
        verification=session.verification,
    )
    try:
        rt.requests.create(new, actor=ACTOR)
    except ConsentryError as error:
        return _failed(request, rt, error)
    return see_other(f"{PATH}#requests")


def download(request: Request, form: Form) -> Response:
    """The customer's own completed report or copy, as a file: the result the API serves for
    that request (dsr/results.py), streamed. A form (POST) rather than a link: the read is
    audited, so it is an action and carries the session's CSRF token; the request id is the
    only thing it names, and no URL, history or cache keeps it."""
    rt = _runtime(request)
    session = _checked(request, rt, form)
    if isinstance(session, Response):
        return session
    try:
        result = rt.results.read(
            form.get("request", ""),
            actor=ACTOR,
            subject_id=session.subject_id,
            reader_level=session.verification.level if session.verification else Level.NONE,
        )
    except (SubjectErased, SubjectKeyDestroyed):
        # As the API's 410: the data is gone (its key destroyed), and the page says so.
        return _erased(request, rt, session, status=410)
    except ConsentryError as error:
        return _failed(request, rt, error)
    name = f"{DOWNLOAD_NAMES[result.type]}-{result.request_id}.{result.extension}"
    headers = PAGE_HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    return StreamingResponse(result.chunks(), media_type=result.media_type, headers=headers)


def sign_out(request: Request, form: Form) -> Response:
    """End the portal session."""
    rt = _runtime(request)
    session = _checked(request, rt, form)
    if isinstance(session, Response):
        return session
    rt.portal_sessions.close(request.cookies.get(COOKIE))
    response = _page(request, rt, "portal_signed_out.html")
    clear_session_cookie(response, COOKIE, path=PATH)
    return response


def _limited(request: Request, rt: Runtime) -> Response | None:
    """A page saying when to try again, when the session is over CONSENTRY_PORTAL_RATE_LIMIT;
    else None. Sessions are known by a hash of their cookie."""
    token = request.cookies.get(COOKIE, "")
    wait = rt.limits.portal.take(hashlib.sha256(token.encode()).hexdigest())
    if not wait:
        return None
    return _failed(
        request, rt, RateLimited(f"Too many requests: try again in {wait} s.", retry_after=wait)
    )


def _checked(
    request: Request, rt: Runtime, form: Form, *, limited: bool = True
) -> PortalSession | Response:
    """The session of a form, its CSRF token checked, within its rate limit unless `limited`
    is off; a problem page otherwise."""
    session = _session(request, rt)
    if session is None:
        return _failed(request, rt, PortalSessionInvalid("open the portal again"))
    if limited:
        refused = _limited(request, rt)
        if refused is not None:
            return refused
    if not rt.portal_sessions.csrf_ok(session, form.get("csrf")):
        return problem(
            request,
            rt.settings,
            403,
            "The form has expired",
            "Reload the page and try again.",
            PATH,
        )
    return session


PAGES: dict[tuple[str, str], Page] = {
    ("GET", PATH): portal,
    ("POST", f"{PATH}/code"): request_code,
    ("POST", f"{PATH}/code/check"): check_code,
    ("POST", f"{PATH}/consent"): change_consent,
    ("POST", f"{PATH}/requests"): ask,
    ("POST", f"{PATH}/download"): download,
    ("POST", f"{PATH}/signout"): sign_out,
}
