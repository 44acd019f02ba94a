"""The pages people who run Consentry sign in through (API.md, Operations: People): sign-in
with a password and a TOTP code, enrolment from a one-time link (password, then the second
factor), sign-out. Sessions are HttpOnly, SameSite=Strict cookies; the sign-in form carries a
token of its own cookie, so no other site can sign a browser in."""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from consentry.auth.models import Permission, Role, allows
from consentry.errors import (
    AccountLocked,
    ConsentryError,
    EnrolmentInvalid,
    PasswordRejected,
    SignInFailed,
    TotpCodeInvalid,
)
from consentry.http.errors import status_of
from consentry.people.models import Session
from consentry.runtime import Runtime
from consentry.web.brand import brand_of
from consentry.web.pages import render
from consentry.web.routes import Form, Page, client_address, problem, see_other
from consentry.web.security import clear_session_cookie, set_session_cookie

COOKIE = "consentry_session"
# The sign-in form's own token (login CSRF), in a cookie of its own and in the form.
FORM_COOKIE = "consentry_signin"
HOME = "/dashboard"


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def signed_in(request: Request) -> Session | None:
    """The session of the request's cookie, or None."""
    token = request.cookies.get(COOKIE)
    return runtime_of(request).people.check(token) if token else None


def may(session: Session, permission: Permission) -> bool:
    """Whether the person's role holds `permission` (the API keys' roles, API.md)."""
    return allows(Role(session.role.value), permission)


def _page(request: Request, template: str, *, status: int = 200, **context: object) -> Response:
    rt = runtime_of(request)
    return render(request, template, status=status, brand=brand_of(rt.settings), **context)


def sign_in_page(request: Request, form: Form) -> Response:
    """The sign-in form (an open session goes to the dashboard)."""
    if signed_in(request) is not None:
        return see_other(HOME)
    return _sign_in_form(request)


def _sign_in_form(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    rt = runtime_of(request)
    token = secrets.token_urlsafe(24)
    response = _page(request, "signin.html", status=status, form_token=token, error=error)
    set_session_cookie(
        response, request, FORM_COOKIE, token, path="/signin", trust_proxy=rt.settings.trust_proxy
    )
    return response


def sign_in(request: Request, form: Form) -> Response:
    """Both factors: a session, and the dashboard; else the form again, saying why."""
    rt = runtime_of(request)
    expected = request.cookies.get(FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, form.get("form_token", "")):
        return _sign_in_form(request, status=403, error="The form had expired. Sign in again.")
    try:
        opened = rt.people.sign_in(
            form.get("email", ""),
            form.get("password", ""),
            form.get("code", "").strip(),
            client=client_address(request),
        )
    except SignInFailed:
        return _sign_in_form(
            request, status=401, error="The e-mail, password or code is not right."
        )
    except AccountLocked as locked:
        until = locked.context.get("unlocks_at", "")
        return _sign_in_form(
            request,
            status=status_of(AccountLocked),
            error=f"Too many failed sign-ins: the account is locked until {until}.",
        )
    response = see_other(HOME)
    set_session_cookie(
        response, request, COOKIE, opened.token, path="/", trust_proxy=rt.settings.trust_proxy
    )
    clear_session_cookie(response, FORM_COOKIE, path="/signin")
    return response


def sign_out(request: Request, form: Form) -> Response:
    """End the session (its CSRF token checked) and go back to the sign-in form."""
    rt = runtime_of(request)
    session = signed_in(request)
    if session is not None:
        if not rt.people.csrf_ok(session, form.get("csrf", "")):
            return problem(request, rt.settings, 403, "The form has expired", "Reload the page.")
        rt.people.sign_out(request.cookies.get(COOKIE, ""), client=client_address(request))
    response = see_other("/signin")
    clear_session_cookie(response, COOKIE, path="/")
    return response


def enrol_page(request: Request, form: Form) -> Response:
    """An enrolment link: the password form."""
    token = request.query_params.get("token", "")
    try:
        person = runtime_of(request).people.open_enrolment(token)
    except EnrolmentInvalid as error:
        return _failed(request, error)
    return _page(request, "enrol.html", token=token, email=person.email, error=None)


def enrol_password(request: Request, form: Form) -> Response:
    """The password set: the second factor to add to an authenticator app."""
    rt = runtime_of(request)
    token = form.get("token", "")
    try:
        person = rt.people.open_enrolment(token)
        if form.get("password", "") != form.get("again", ""):
            return _page(
                request,
                "enrol.html",
                status=422,
                token=token,
                email=person.email,
                error="The two passwords differ.",
            )
        setup = rt.people.set_password(token, form.get("password", ""))
    except PasswordRejected as error:
        return _page(
            request, "enrol.html", status=422, token=token, email=person.email, error=str(error)
        )
    except EnrolmentInvalid as error:
        return _failed(request, error)
    return _page(request, "enrol_totp.html", token=token, setup=setup, error=None)


def enrol_confirm(request: Request, form: Form) -> Response:
    """The authenticator's code: the account is ready."""
    rt = runtime_of(request)
    token = form.get("token", "")
    try:
        rt.people.confirm_totp(token, form.get("code", "").strip())
    except TotpCodeInvalid:
        return _page(
            request,
            "enrol_totp.html",
            status=422,
            token=token,
            setup=None,
            error="That code is not the authenticator's current one. Try the next code.",
        )
    except ConsentryError as error:
        return _failed(request, error)
    return _page(request, "enrolled.html")


def _failed(request: Request, error: ConsentryError) -> Response:
    rt = runtime_of(request)
    return problem(request, rt.settings, status_of(type(error)), error.title, str(error))


PAGES: dict[tuple[str, str], Page] = {
    ("GET", "/signin"): sign_in_page,
    ("POST", "/signin"): sign_in,
    ("POST", "/signout"): sign_out,
    ("GET", "/enrol"): enrol_page,
    ("POST", "/enrol/password"): enrol_password,
    ("POST", "/enrol/confirm"): enrol_confirm,
}
