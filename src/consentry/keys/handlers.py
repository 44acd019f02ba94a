"""HTTP handlers for public key material."""

from __future__ import annotations

from typing import Any

from consentry.http.auth import RuntimeDep


async def jwks(runtime: RuntimeDep) -> dict[str, Any]:
    """The public keys that verify consent tokens and audit tree heads."""
    return runtime.signing_keys.jwks()
