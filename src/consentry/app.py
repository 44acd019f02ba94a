"""`create_app(settings)`: the ASGI application; its lifespan opens and closes the Runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from consentry import __version__
from consentry.governance import vendors
from consentry.governance.datamap import plaintext_systems
from consentry.http import errors, logs, openapi, routes
from consentry.http.cors import Cors
from consentry.http.headers import SecurityHeaders
from consentry.http.middleware import BodyLimits
from consentry.http.timing import RequestTimer
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.web import console as web_console
from consentry.web import pages as web_pages
from consentry.web import portal as web_portal
from consentry.web import routes as web_routes
from consentry.web import staff as web_staff

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    """The gateway. Storage, migrations and keys open when the app starts, not on import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        _warn_plaintext_systems(runtime)
        _warn_unregistered_vendors(runtime)
        worker = runtime.delivery_worker() if settings.delivery_worker else None
        if worker is not None:
            worker.start()
        signer = asyncio.create_task(runtime.heads.run())
        # Data-subject requests go on in the background, resuming whatever a stopped
        # process left half done (their state is in the database).
        runtime.runner.start()
        # Retention sweeps every CONSENTRY_RETENTION_SWEEP_SECONDS, resuming one a stopped
        # process left half done.
        runtime.retention.start()
        runtime.alerts.start()
        # Mail (portal codes) is sent in the background while a mail server is configured.
        runtime.mail.start()
        try:
            yield
        finally:
            runtime.mail.stop()
            runtime.alerts.stop()
            signer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await signer
            if worker is not None:
                worker.stop()
            _sign_last_head(runtime)
            runtime.close()

    app = FastAPI(
        title="Consentry",
        version=__version__,
        description="Consent-aware privacy gateway for real-time CX analytics.",
        lifespan=lifespan,
        # Served by openapi.install, with assets of our own rather than a CDN's.
        docs_url=None,
        redoc_url=None,
        # No OpenTelemetry from FastAPI: the gateway's metrics are Prometheus's (`/metrics`,
        # http/timing.py), and asking OpenTelemetry for its providers costs every request
        # three environment look-ups (docs/decisions.md, "The HTTP hot paths without pydantic").
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    errors.install(app)
    logs.install()
    routes.register(app)
    web_routes.register(app, settings, web_portal.PAGES | web_staff.PAGES | web_console.PAGES)
    openapi.install(app)
    app.add_middleware(
        BodyLimits,
        max_bytes=settings.max_body_bytes,
        read_timeout=settings.body_timeout_seconds,
    )
    # Preflights are answered before the body limits (they have no body).
    app.add_middleware(Cors)
    # Around everything that answers, refusals and preflights included.
    app.add_middleware(
        SecurityHeaders,
        trust_proxy=settings.trust_proxy,
        assets=(f"{web_pages.STATIC_URL}/", f"{openapi.ASSETS_URL}/"),
    )
    # Outermost, so that refusals by the body limits are timed too.
    app.add_middleware(RequestTimer)
    return app


def _sign_last_head(runtime: Runtime) -> None:
    """Cover the entries of the last moments with a head before the server stops."""
    try:
        runtime.heads.sign_now()
    except Exception:  # shutting down regardless; the next start signs the head
        log.exception("signing the last audit tree head failed")


def _warn_unregistered_vendors(runtime: Runtime) -> None:
    """Systems naming a vendor the register lacks (their `vendor` was free text before the
    register) get nothing (`dpa_missing`) until it is registered; say so at start."""
    with runtime.store.read() as conn:
        found = vendors.unregistered(runtime.datamap.all(conn))
    if found:
        log.warning(
            "systems naming a vendor the vendor register lacks get nothing (dpa_missing): %s; "
            "register the vendor with its DPA (PUT /v1/vendors/{vendor_id}) and name it by id",
            ", ".join(found),
        )


def _warn_plaintext_systems(runtime: Runtime) -> None:
    """Systems stored with `http://` while it reached any host: without private endpoints
    allowed, every send to them is refused (`endpoint_not_allowed`); say so at start."""
    if runtime.settings.allow_private_endpoints:
        return
    with runtime.store.read() as conn:
        found = plaintext_systems(runtime.datamap.all(conn))
    if found:
        log.warning(
            "systems with http:// endpoints get nothing (endpoint_not_allowed): %s; give them "
            "https:// (or, for receivers on a private network, set "
            "CONSENTRY_ALLOW_PRIVATE_ENDPOINTS=1)",
            ", ".join(found),
        )
