"""HTTP handlers for public key material."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool

from consentry.http.auth import RuntimeDep
from consentry.keys.ring import REFRESH_SECONDS


async def jwks(runtime: RuntimeDep) -> dict[str, Any]:
    """The public keys that verify consent tokens and audit tree heads. Read again from the
    store every few seconds: a signing rotation run elsewhere is published at once, and this
    process signs with the new key from then on."""
    if runtime.signing_keys.stale(REFRESH_SECONDS):
        await run_in_threadpool(runtime.reload_signing_keys)
    return runtime.signing_keys.jwks()
