"""Consent checks per second: in process (cache + policy, and with the version read) and over
HTTP against `consentry serve` on 127.0.0.1. Usage: python bench/consent_checks.py [subjects]"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2 as httpx

from consentry import clock
from consentry.consent import policy
from consentry.consent.service import ConsentWrite
from consentry.runtime import Runtime
from consentry.settings import Settings
from consentry.subjects.models import SubjectRef

ADMIN = "bench-admin-key"
MASTER = "YmVuY2gtbWFzdGVyLWtleS1ub3QtZm9yLXByb2QtdXNlIQ"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(subjects: int = 2000) -> None:
    data = Path(tempfile.mkdtemp(prefix="consentry-bench-"))
    settings = Settings(data_dir=data, admin_key=ADMIN, master_key=MASTER[:43])
    rt = Runtime(settings)
    with rt.store.write() as conn:
        from consentry.consent import notices  # noqa: PLC0415

        notices.publish(conn, rt.purposes, "n", "1", "notice", ["analytics"], actor="bench")
    ids = []
    started = time.perf_counter()
    for i in range(subjects):
        result = rt.consent.record(
            ConsentWrite(
                ref=_ref(i),
                purposes={"analytics": "granted" if i % 10 else "denied"},
                source="web",
                notice=("n", "1"),
            ),
            actor="bench",
        )
        ids.append(result.state.subject_id)
    writes = subjects / (time.perf_counter() - started)
    purposes = rt.purposes.cached()
    analytics = purposes["analytics"]
    now = clock.now()
    n = 200_000
    t0 = time.perf_counter()
    for i in range(n):
        policy.decide(analytics, rt.consent_cache.get(ids[i % subjects]), now)
    pure = n / (time.perf_counter() - t0)
    n2 = 20_000
    t0 = time.perf_counter()
    with rt.store.read() as conn:
        for i in range(n2):
            rt.consent.check(conn, SubjectRef(subject_id=ids[i % subjects]), "analytics")
    checked = n2 / (time.perf_counter() - t0)
    rt.close()
    http = _http(settings, ids)
    print(f"consent writes (in process, 1 purpose):        {writes:10,.0f}/s")
    print(f"checks, cache + policy (dict look-up):         {pure:10,.0f}/s")
    print(f"checks, ConsentService.check (version read):   {checked:10,.0f}/s")
    print(f"checks over HTTP, 1 uvicorn worker (wrk, 16 conn): {http:10,.0f}/s")


def _ref(i: int) -> SubjectRef:
    from consentry.subjects.normalise import normalise  # noqa: PLC0415
    from consentry.subjects.models import IdentityType  # noqa: PLC0415

    return SubjectRef(identities=(normalise(IdentityType.EMAIL, f"bench{i}@example.com"),))


def _http(settings: Settings, ids: list[str], seconds: float = 5.0) -> float:
    port = _port()
    env = {
        **os.environ,
        "CONSENTRY_DATA_DIR": str(settings.data_dir),
        "CONSENTRY_ADMIN_KEY": ADMIN,
        "CONSENTRY_MASTER_KEY": settings.master_key,
        "CONSENTRY_LOG_LEVEL": "warning",
    }
    exe = Path(sys.executable).parent / "consentry"
    proc = subprocess.Popen([str(exe), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        if shutil.which("wrk"):
            return _wrk(base, ids[0], seconds)
        counts = [0] * 4
        stop = time.monotonic() + seconds

        def client(slot: int) -> None:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {ADMIN}"}) as c:
                i = slot
                while time.monotonic() < stop:
                    body = {"subject": {"subject_id": ids[i % len(ids)]}, "purpose": "analytics"}
                    c.post("/v1/consents/check", json=body).raise_for_status()
                    counts[slot] += 1
                    i += 4

        threads = [threading.Thread(target=client, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts) / seconds
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wrk(base: str, subject_id: str, seconds: float) -> float:
    """Load from wrk (a C client on the other core), so the client is not the bottleneck."""
    script = Path(tempfile.mkdtemp()) / "check.lua"
    body = json.dumps({"subject": {"subject_id": subject_id}, "purpose": "analytics"})
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{body}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {ADMIN}"\n'
    )
    out = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{int(seconds)}s", "-s", str(script), f"{base}/v1/consents/check"],
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    return float(out.split("Requests/sec:")[1].split()[0])


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
