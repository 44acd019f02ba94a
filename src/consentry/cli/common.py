"""What every command shares: the command groups, the settings read from the environment, the
console, the development admin key."""

from __future__ import annotations

import os
import secrets
from typing import Any

import typer
from rich.console import Console

from consentry.auth import api_keys
from consentry.demo.server import ADMIN_KEY_FILE
from consentry.keys.sources import write_private_file
from consentry.settings import Settings


def group(help_text: str) -> typer.Typer:
    # Plain help, as click writes it: Typer's panels print a type beside every flag
    # (`--quick <bool>`, `--help <bool>`), which says nothing a reader needs.
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


app = group("Consentry: consent-aware privacy gateway.")
api_key_app = group("Create, list and revoke API keys.")
app.add_typer(api_key_app, name="api-key")
identity_secret_app = group(
    "Secrets a site vouches for its visitors' customer_id with (browser keys' identity_proof)."
)
app.add_typer(identity_secret_app, name="identity-secret")
delivery_app = group("Downstream deliveries: resend dead letters.")
app.add_typer(delivery_app, name="delivery")
audit_app = group("Verify the audit log; print its latest signed head.")
app.add_typer(audit_app, name="audit")
requests_app = group("Data-subject requests: run a pass of the runner.")
app.add_typer(requests_app, name="requests")
retention_app = group("Retention: sweep events whose retention ended.")
app.add_typer(retention_app, name="retention")
user_app = group("People who sign in to the pages: create, list, disable.")
app.add_typer(user_app, name="user")
keys_app = group("Key-encryption and signing keys.")
app.add_typer(keys_app, name="keys")
rotate_app = group("Rotate the master key (KEK) or the signing key, online.")
keys_app.add_typer(rotate_app, name="rotate")

CLI_ACTOR = "cli"
console = Console(stderr=True)


def env_settings() -> Settings:
    return Settings.from_env(os.environ)


def store_settings() -> Settings:
    """The settings of a command that opens the store, which makes the data directory."""
    settings = env_settings()
    hint_new_data_dir(settings)
    return settings


def hint_new_data_dir(settings: Settings) -> None:
    # A command run from another directory would otherwise start an empty store there in
    # silence, and its keys and requests would seem lost.
    if "CONSENTRY_DATA_DIR" in os.environ or settings.data_dir.exists():
        return
    typer.echo(
        f"Note: CONSENTRY_DATA_DIR is not set: creating a new data directory, "
        f"{settings.data_dir.resolve()}. To use an existing store, set CONSENTRY_DATA_DIR "
        f"or run from the directory that holds it.",
        err=True,
    )


def dev_admin_key(settings: Settings, **overrides: Any) -> tuple[Settings, str]:
    """The admin key to announce: CONSENTRY_ADMIN_KEY, or a development key kept in a 0600
    file in the data directory (made on first start); `overrides` as the command line set
    them."""
    if settings.admin_key:
        return settings, "the value of CONSENTRY_ADMIN_KEY"
    path = settings.data_dir / ADMIN_KEY_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        write_private_file(path, f"{api_keys.PREFIX}admin_{secrets.token_urlsafe(32)}\n")
    key = path.read_text().strip()
    return Settings.from_env(os.environ, admin_key=key, **overrides), key
