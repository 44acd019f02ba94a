"""`People`: the one object the CLI and the pages use for accounts, enrolment, sign-in and
sessions (`runtime.people`)."""

from __future__ import annotations

from argon2 import PasswordHasher

from consentry.errors import SessionInvalid
from consentry.people import accounts, enrolment, sessions, signin
from consentry.people.models import Enrolment, NewSession, Person, PersonRole, Session, TotpSetup
from consentry.people.passwords import Passwords
from consentry.people.records import Vault
from consentry.storage.engine import Store


class People:
    """People who sign in to the pages. The e-mail is kept only as a keyed blind index and
    sealed; passwords as argon2id hashes; the TOTP secret sealed; tokens as SHA-256. Every
    method opens its own transactions and audits what it changes (never an e-mail or a
    secret)."""

    def __init__(
        self,
        store: Store,
        index_key: bytes,
        notes_key: bytes,
        base_url: str,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._store = store
        self._vault = Vault(index_key, notes_key)
        self._passwords = Passwords(hasher)
        self._base = base_url

    # Accounts (the operator's `consentry user ...`).

    def create(self, email: str, role: PersonRole, *, actor: str) -> Enrolment:
        """A pending account and its one-time enrolment link `{base}/enrol?token=...`, valid
        24 hours. PersonExists when the address has an account; InvalidEmail."""
        with self._store.write() as conn:
            return accounts.create(conn, self._vault, email, role, self._base, actor=actor)

    def get(self, person_id: str) -> Person:
        """PersonNotFound for an unknown id."""
        with self._store.read() as conn:
            return accounts.get(conn, self._vault, person_id)

    def everyone(self) -> list[Person]:
        """Every account, oldest first."""
        with self._store.read() as conn:
            return accounts.everyone(conn, self._vault)

    def disable(self, person_id: str, *, actor: str) -> Person:
        """Disable for good; the person's sessions end at once. PersonNotFound."""
        with self._store.write() as conn:
            return accounts.disable(conn, self._vault, person_id, actor=actor)

    # Enrolment (the /enrol page).

    def open_enrolment(self, token: str) -> Person:
        """The pending person an enrolment link's token names. EnrolmentInvalid when the
        token is unknown, expired or used, or the account is no longer pending."""
        return enrolment.open_enrolment(self._store, self._vault, token)

    def set_password(self, token: str, password: str) -> TotpSetup:
        """Set the password (12 to 1024 characters, not containing the e-mail's local part:
        PasswordRejected with its `reason` otherwise) and make a new TOTP secret, returned
        for the authenticator app. May be repeated until confirm_totp succeeds."""
        return enrolment.set_password(self._store, self._vault, self._passwords, token, password)

    def confirm_totp(self, token: str, code: str) -> Person:
        """Activate the account with the authenticator's current code and use the link up.
        TotpCodeInvalid for a wrong code, EnrolmentOutOfOrder before set_password."""
        return enrolment.confirm_totp(self._store, self._vault, token, code)

    # Signing in and out (the /signin page).

    def sign_in(self, email: str, password: str, code: str, *, client: str) -> NewSession:
        """A new session when the password and a TOTP code not used before both match an
        active account. SignInFailed, the same for any cause; AccountLocked (`unlocks_at`)
        after 5 failures in a row, for 15 minutes. `client` (the remote address, say) is
        kept in the audit log as a keyed hash only."""
        tag = self._vault.client_tag(client)
        return signin.sign_in(
            self._store, self._vault, self._passwords, email, password, code, client=tag
        )

    def check(self, token: str) -> Session | None:
        """The live session of a session token, or None (unknown, signed out, idle 30
        minutes, older than 12 hours, person disabled)."""
        return sessions.check(self._store, token)

    def require(self, token: str) -> Session:
        """As check(), but SessionInvalid instead of None."""
        session = sessions.check(self._store, token)
        if session is None:
            raise SessionInvalid("the session has ended: sign in again")
        return session

    def sign_out(self, token: str, *, client: str) -> bool:
        """End the session; False when there was none. `client` as for sign_in."""
        return sessions.sign_out(self._store, token, client=self._vault.client_tag(client))

    @staticmethod
    def csrf_ok(session: Session, presented: str) -> bool:
        """Whether a form's CSRF token is the session's (constant-time)."""
        return sessions.csrf_ok(session, presented)
