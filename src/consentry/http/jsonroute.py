"""The route class of every API route: its JSON body is decoded by `consentry.jsonlimits` (the
one rule of every route) before FastAPI validates it against the route's model."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from consentry import jsonlimits
from consentry.errors import BodyNotObject, MalformedJSON


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            value = jsonlimits.decode(await self.body())
            if not isinstance(value, dict):
                raise BodyNotObject("the body must be a JSON object")
            self._json = value
        return self._json


class JsonRoute(APIRoute):
    """An APIRoute whose body, when it takes one, is read as `_JsonRequest` reads it: an empty
    body is malformed JSON (never a missing field), and the JSON rules hold before any model."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        required = self.body_field.field_info.is_required()

        async def checked(request: Request) -> Response:
            request = _JsonRequest(request.scope, request.receive)
            if required and not (await request.body()).strip():
                raise MalformedJSON("the body is empty: send a JSON object")
            return await handler(request)

        return checked
