"""`consentry serve --ssl-certfile --ssl-keyfile`: the gateway speaks TLS itself, with a
certificate made here by a throwaway CA, on one worker and on several; answers then carry HSTS;
TLS files that cannot serve stop the command before it starts, with the setting's code."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from consentry.errors import InvalidSetting
from consentry.http.headers import HSTS
from consentry.settings import Settings
from tests.conftest import ADMIN_KEY, MASTER_KEY
from tests.servers import free_port, serving


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_key: Path
    locked_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: bytes = b"") -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA made for this test, and a certificate it signed for 127.0.0.1 (and its key)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("Consentry test CA"))
        .issuer_name(_name("Consentry test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        folder / "ca.pem",
        folder / "cert.pem",
        folder / "key.pem",
        folder / "other-key.pem",
        folder / "locked-key.pem",
    )
    pki.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.key, key)
    _write_key(pki.other_key, ec.generate_private_key(ec.SECP256R1()))
    _write_key(pki.locked_key, key, password=b"correct horse")
    return pki


def _env(data: Path) -> dict[str, str]:
    return os.environ | {
        "CONSENTRY_DATA_DIR": str(data),
        "CONSENTRY_MASTER_KEY": MASTER_KEY,
        "CONSENTRY_ADMIN_KEY": ADMIN_KEY,
        "CONSENTRY_DSR_POLL_SECONDS": "0",
    }


@pytest.fixture(scope="module", params=[1, 2], ids=["one_worker", "two_workers"])
def tls_server(
    request: pytest.FixtureRequest, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    port = free_port()
    trusting = ssl.create_default_context(cafile=pki.ca)
    args = ["--ssl-certfile", str(pki.cert), "--ssl-keyfile", str(pki.key)]
    data = tmp_path_factory.mktemp("tls-serve") / "data"
    with serving(port, _env(data), workers=request.param, args=args, tls=trusting, stop_seconds=30):
        yield port


def test_the_gateway_speaks_tls_with_hsts(tls_server: int, pki: Pki) -> None:
    trusting = ssl.create_default_context(cafile=pki.ca)
    base = f"https://127.0.0.1:{tls_server}"
    with urllib.request.urlopen(f"{base}/healthz", context=trusting, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Strict-Transport-Security"] == HSTS
    me = urllib.request.Request(f"{base}/v1/me", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    with urllib.request.urlopen(me, context=trusting, timeout=10) as resp:
        assert json.load(resp)["role"] == "admin"
        assert resp.headers["Strict-Transport-Security"] == HSTS
        assert resp.headers["Cache-Control"] == "no-store"
    # A page counts as served over TLS (http/headers.py decides it for pages and HSTS alike).
    with urllib.request.urlopen(f"{base}/portal", context=trusting, timeout=10) as resp:
        assert resp.headers["Strict-Transport-Security"] == HSTS


def test_the_certificate_is_the_one_given(tls_server: int) -> None:
    # The machine's own trust store does not know the test CA: the handshake fails.
    with pytest.raises(urllib.error.URLError) as failed:
        urllib.request.urlopen(
            f"https://127.0.0.1:{tls_server}/healthz",
            context=ssl.create_default_context(),
            timeout=10,
        )
    assert isinstance(failed.value.reason, ssl.SSLCertVerificationError)
    # And nothing answers in plain HTTP on the TLS port.
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{tls_server}/healthz", timeout=10)


def _serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    consentry = Path(sys.executable).parent / "consentry"
    return subprocess.run(
        [str(consentry), "serve", "--port", str(free_port()), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_tls_file_that_cannot_serve_stops_the_command(pki: Pki, tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["--ssl-certfile", str(tmp_path / "nope.pem"), "--ssl-keyfile", str(pki.key)]
    done = _serve(args, _env(data))
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join(done.stderr.split())
    assert said.startswith("error invalid_setting: "), said
    assert "CONSENTRY_SSL_CERTFILE (--ssl-certfile) cannot be read" in said
    assert "No such file or directory" in said
    # Refused before anything started: no store, no banner, no traceback.
    assert not data.exists()
    assert "Traceback" not in done.stderr
    assert "Consentry on" not in done.stdout


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("missing_cert", "CONSENTRY_SSL_CERTFILE (--ssl-certfile) cannot be read"),
        ("missing_key", "CONSENTRY_SSL_KEYFILE (--ssl-keyfile) cannot be read"),
        ("cert_alone", "go together"),
        ("key_alone", "go together"),
        ("not_its_key", "are not a PEM certificate and its unencrypted private key"),
        ("not_pem", "are not a PEM certificate and its unencrypted private key"),
        ("encrypted_key", "(the private key is encrypted)"),
    ],
)
def test_tls_settings_that_cannot_serve_are_refused(
    pki: Pki, tmp_path: Path, which: str, expected: str
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    cert, key = {
        "missing_cert": (tmp_path / "nope.pem", pki.key),
        "missing_key": (pki.cert, tmp_path / "nope.pem"),
        "cert_alone": (pki.cert, None),
        "key_alone": (None, pki.key),
        "not_its_key": (pki.cert, pki.other_key),
        "not_pem": (garbage, garbage),
        "encrypted_key": (pki.cert, pki.locked_key),
    }[which]
    env = {
        name: str(path)
        for name, path in (("CONSENTRY_SSL_CERTFILE", cert), ("CONSENTRY_SSL_KEYFILE", key))
        if path is not None
    }
    with pytest.raises(InvalidSetting, match=re.escape(expected)):
        Settings.from_env(env)


def test_the_links_made_point_at_https(pki: Pki) -> None:
    tls = Settings.from_env(
        {"CONSENTRY_SSL_CERTFILE": str(pki.cert), "CONSENTRY_SSL_KEYFILE": str(pki.key)}
    )
    assert tls.base_url() == "https://127.0.0.1:8000"
    assert Settings().base_url() == "http://127.0.0.1:8000"
