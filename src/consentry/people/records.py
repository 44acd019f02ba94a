"""How a person is stored: the e-mail as a keyed blind index and sealed, the TOTP secret
sealed, tokens as SHA-256; rows back into Person."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from consentry.errors import InvalidEmail
from consentry.keys.envelope import Sealer
from consentry.people.models import Person, PersonRole, PersonStatus
from consentry.storage.engine import AnyRow

MAX_EMAIL = 254  # RFC 5321's limit on a path, less the angle brackets


def normalise_email(email: str) -> str:
    """The address trimmed and lower-cased (as subjects' e-mails are); InvalidEmail unless
    it has a local part, one `@` and a domain."""
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(value) > MAX_EMAIL
        or any(c.isspace() for c in value)
    ):
        raise InvalidEmail("give an e-mail address, as name@example.com")
    return value


def local_part(email: str) -> str:
    return email.rpartition("@")[0]


def token_hash(token: str) -> bytes:
    """What is stored of a token: tokens are 256-bit random, so a fast hash is the right one."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def new_person_id() -> str:
    return "per_" + secrets.token_hex(12)


class Vault:
    """The keyed blind index of e-mails and the sealing of e-mails and TOTP secrets, each
    sealed value bound to its person id (a row's value cannot be moved to another)."""

    def __init__(self, index_key: bytes, notes_key: bytes) -> None:
        if len(index_key) < 32:
            raise ValueError("the people index key must be at least 32 bytes")
        self._index = hmac.new(index_key, digestmod=hashlib.sha256)
        self._sealer = Sealer(notes_key)

    def index(self, email: str) -> bytes:
        """32 bytes naming a normalised e-mail to whoever holds the key, and nobody else."""
        mac = self._index.copy()
        mac.update(b"person-email\x00" + email.encode())
        return mac.digest()

    def client_tag(self, client: str) -> str:
        """What the audit log keeps of a client address: a keyed hash (an address is personal
        data), the same for the same address, so repeated attempts from one place show."""
        mac = self._index.copy()
        mac.update(b"client\x00" + client.encode())
        return mac.hexdigest()[:32]

    def seal_email(self, person_id: str, email: str) -> bytes:
        return self._sealer.seal(email.encode(), _aad("email", person_id))

    def open_email(self, person_id: str, sealed: bytes) -> str:
        return self._sealer.open(sealed, _aad("email", person_id)).decode()

    def seal_totp(self, person_id: str, secret: str) -> bytes:
        return self._sealer.seal(secret.encode(), _aad("totp", person_id))

    def open_totp(self, person_id: str, sealed: bytes) -> str:
        return self._sealer.open(sealed, _aad("totp", person_id)).decode()

    def person(self, row: AnyRow) -> Person:
        return Person(
            person_id=row.person_id,
            role=PersonRole(row.role),
            status=PersonStatus(row.status),
            email=self.open_email(row.person_id, bytes(row.email_ct)),
            created_at=row.created_at,
            enrolled_at=row.enrolled_at,
            locked_until=row.locked_until,
        )


def _aad(what: str, person_id: str) -> bytes:
    return f"consentry:person-{what}:{person_id}".encode()


def actor_of(person_id: str) -> str:
    """The audit actor of what a person does on the pages."""
    return f"person:{person_id}"
