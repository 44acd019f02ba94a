"""Authentication and authorisation of API calls: a secret key (Authorization: Bearer) or a
browser key (X-Consentry-Key, from one of its origins, for one subject) -> Principal ->
permission, then the caller's rate limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from consentry import jsonlimits
from consentry.auth import browser
from consentry.auth.browser import Scope
from consentry.auth.limits import OptOut, TokenBuckets
from consentry.auth.models import Permission, Principal, Role
from consentry.consent.signals import gpc_header
from consentry.errors import (
    ConsentryError,
    Forbidden,
    OriginNotAllowed,
    RateLimited,
    SubjectNotAllowed,
    Unauthenticated,
)
from consentry.ingest import decode
from consentry.runtime import Runtime
from consentry.subjects.models import SubjectRef

# A route open to any valid secret key, whatever its role.
AUTHENTICATED = "authenticated"
KEY_HEADER = "X-Consentry-Key"
# Where the CORS middleware finds the origin a browser key was honoured from (http/cors.py).
CORS_ORIGIN = "cors_origin"


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    if not isinstance(runtime, Runtime):
        raise TypeError("the app was started without a Runtime")
    return runtime


class Authorize:
    """A route dependency: resolve the caller's key, check it holds `permission`, and spend a
    token of its rate limit. It runs on the event loop; only a key not seen within the last
    second costs a thread and a read. A browser key reaches only routes with a `browser`
    scope, from its own origins, for the subject its request names (auth/browser.py)."""

    def __init__(
        self,
        permission: Permission | str,
        *,
        browser_scope: Scope | None = None,
        opt_out: OptOut | None = None,
    ) -> None:
        self.permission = permission
        self.browser_scope = browser_scope
        self.opt_out = opt_out

    async def __call__(self, request: Request) -> Principal:
        runtime = get_runtime(request)
        publishable = request.headers.get(KEY_HEADER)
        if publishable is not None:
            principal = await self._browser(request, runtime, publishable.strip())
        else:
            principal = await self._secret(request, runtime)
        request.state.principal = principal
        return principal

    async def _secret(self, request: Request, runtime: Runtime) -> Principal:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise Unauthenticated("send Authorization: Bearer <api key>")
        principal = await _authenticate(runtime, presented)
        if principal.role is Role.BROWSER:
            # A publishable key opens nothing a server-side caller would use.
            raise Unauthenticated(
                f"a browser key is sent as {KEY_HEADER} from a page of one of its origins; "
                "a server uses a secret key"
            )
        self._check_permission(principal)
        await self._limit(request, runtime.limits.key, principal.key_id)
        return principal

    async def _browser(self, request: Request, runtime: Runtime, presented: str) -> Principal:
        if "authorization" in request.headers:
            raise Unauthenticated(f"send one key: Authorization or {KEY_HEADER}, not both")
        if not presented:
            raise Unauthenticated(f"{KEY_HEADER} is empty")
        principal = await _authenticate(runtime, presented)
        if principal.role is not Role.BROWSER:
            raise Unauthenticated(
                f"{KEY_HEADER} takes a browser key; a secret key goes in Authorization: Bearer "
                "and never in a web page"
            )
        origin = request.headers.get("origin")
        if origin is None or origin not in principal.origins:
            raise OriginNotAllowed(
                "a browser key is honoured only from the origins it lists; a server-side "
                "caller uses a secret key"
            )
        # From here on the page may read the answer, refusals included (http/cors.py).
        setattr(request.state, CORS_ORIGIN, origin)
        if self.browser_scope is None:
            raise Forbidden(
                "a browser key may not use this route",
                role=principal.role.value,
                permission=str(self.permission),
            )
        self._check_permission(principal)
        client = request.client.host if request.client else ""
        await self._limit(request, runtime.limits.browser, f"{principal.key_id} {client}")
        if self.browser_scope is not Scope.NONE:
            body = await request.body()
            header = request.headers.get(browser.HEADER)
            path_id = request.path_params.get("subject_id")
            await run_in_threadpool(
                _check_subject, runtime, self.browser_scope, header, body, path_id
            )
        return principal

    def _check_permission(self, principal: Principal) -> None:
        if isinstance(self.permission, Permission) and not principal.may(self.permission):
            raise Forbidden(
                f"role {principal.role} may not {self.permission}",
                role=principal.role.value,
                permission=self.permission.value,
            )

    async def _limit(self, request: Request, buckets: TokenBuckets, key: str) -> None:
        wait = buckets.take(key)
        if not wait:
            return
        if self.opt_out is not None:
            raw = await request.body()
            try:
                body: Any = jsonlimits.decode(raw) if raw.strip() else None
            except ConsentryError:
                body = None
            if self.opt_out(body, gpc_header(request.headers.get("sec-gpc"))):
                return
        raise RateLimited(f"too many requests: try again in {wait} s", retry_after=wait)


async def _authenticate(runtime: Runtime, presented: str) -> Principal:
    principal = runtime.authenticator.remembered(presented)
    if principal is None:
        principal = await run_in_threadpool(
            runtime.authenticator.authenticate, runtime.store, presented
        )
    if principal is None:
        raise Unauthenticated("the API key is unknown or revoked")
    return principal


def _check_subject(
    runtime: Runtime, scope: Scope, header: str | None, body: bytes, path_id: str | None
) -> None:
    """Refuse a browser request that acts on another subject than the one it names."""
    vouched = browser.vouched(header, runtime.identity_secrets.verify)
    if scope is Scope.BODY:
        browser.check_body(vouched, jsonlimits.decode(body) if body.strip() else None)
    elif scope is Scope.EVENTS:
        browser.check_events(vouched, decode.subjects(body))
    elif scope is Scope.PATH:
        with runtime.store.read() as conn:
            found = {
                subject.subject_id
                for identity in vouched.identities
                if (subject := runtime.subjects.find(conn, SubjectRef(identities=(identity,))))
                is not None
            }
        if path_id not in found:
            raise SubjectNotAllowed(f"the subject is not the one {browser.HEADER} names")


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a handler works with: the services and the authorised caller."""

    runtime: Runtime
    principal: Principal

    @property
    def actor(self) -> str:
        return self.principal.actor


async def _context(request: Request) -> RequestContext:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise Unauthenticated("this route was registered without authorisation")
    return RequestContext(get_runtime(request), principal)


Ctx = Annotated[RequestContext, Depends(_context)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
