"""The route class of the hot paths (`POST /v1/events`, `POST /v1/consents/check`): no FastAPI
dependency solving and no pydantic, in or out; the handler gets its body decoded by msgspec
(http/bodies.py) or reads the raw body itself, and returns its own Response."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, get_type_hints

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from consentry.auth.models import Principal
from consentry.errors import Unauthenticated
from consentry.http.auth import RequestContext, get_runtime
from consentry.http.bodies import BodyDecoder

# The endpoint's parameter that receives the decoded body; its annotation is the Struct.
BODY = "body"


class RawRoute(APIRoute):
    """Calls the endpoint as `endpoint(request, ctx, [body=Struct], **headers)`.

    In the order a pydantic route answers: a body that breaks the JSON rules is refused first,
    then the route's dependencies run (its key check; each is called with the request, the
    last one's answer is the caller), then a body that does not fit its Struct is refused.
    Header parameters of the signature are passed as plain strings. The signature without
    `body` documents the route as any route's; its request body comes from
    openapi.RAW_BODIES, and its answer is documented as a JSON object unless RAW_BODIES names
    its model."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        kwargs["response_model"] = dict[str, Any]
        self.call = endpoint
        self.body: BodyDecoder[Any] | None = None
        signature = inspect.signature(endpoint)
        if BODY in signature.parameters:
            self.body = BodyDecoder(get_type_hints(endpoint)[BODY])

            def documented(*_args: Any, **_kwargs: Any) -> Any:
                raise TypeError("a raw route's endpoint is called by RawRoute")

            functools.update_wrapper(documented, endpoint)
            shown = [p for p in signature.parameters.values() if p.name != BODY]
            documented.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
            endpoint = documented
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        checks = [depends.dependency for depends in self.dependencies]
        headers = [(field.name, field.alias) for field in self.dependant.header_params]
        if not checks or self.dependant.query_params or self.dependant.body_params:
            raise TypeError(f"{self.path}: a raw route has a key check and no other parameters")
        call, body = self.call, self.body

        async def handle(request: Request) -> Response:
            values: dict[str, Any] = {name: request.headers.get(alias) for name, alias in headers}
            fault: RequestValidationError | None = None
            if body is not None:
                try:
                    values[BODY] = body.decode(await request.body())
                except RequestValidationError as exc:
                    fault = exc
            principal = None
            for check in checks:
                if check is not None:
                    principal = await check(request)
            if not isinstance(principal, Principal):
                raise Unauthenticated("this route was registered without authorisation")
            if fault is not None:
                raise fault
            response: Response = await call(
                request, RequestContext(get_runtime(request), principal), **values
            )
            return response

        return handle
