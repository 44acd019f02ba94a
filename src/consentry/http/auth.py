"""Authentication and authorisation of API calls: Bearer key -> Principal -> permission."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from consentry.auth.models import Permission, Principal
from consentry.errors import Forbidden, Unauthenticated
from consentry.runtime import Runtime

# A route open to any valid key, whatever its role.
AUTHENTICATED = "authenticated"


def get_runtime(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    if not isinstance(runtime, Runtime):
        raise TypeError("the app was started without a Runtime")
    return runtime


class Authorize:
    """A route dependency: resolve the caller's key and check it holds `permission`. It runs
    on the event loop; only a key not seen within the last second costs a thread and a read."""

    def __init__(self, permission: Permission | str) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        presented = presented.strip()
        if scheme.lower() != "bearer" or not presented:
            raise Unauthenticated("send Authorization: Bearer <api key>")
        runtime = get_runtime(request)
        principal = runtime.authenticator.remembered(presented)
        if principal is None:
            principal = await run_in_threadpool(
                runtime.authenticator.authenticate, runtime.store, presented
            )
        if principal is None:
            raise Unauthenticated("the API key is unknown or revoked")
        if isinstance(self.permission, Permission) and not principal.may(self.permission):
            raise Forbidden(
                f"role {principal.role} may not {self.permission}",
                role=principal.role.value,
                permission=self.permission.value,
            )
        request.state.principal = principal
        return principal


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
