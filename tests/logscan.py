"""The log scan: every log record the suite makes is kept in memory (never on disk) and, at the end
of the session, searched for the fictional identity values the tests used; one hit fails the run.

What is searched for:
- the fictional shapes of the test data: e-mail addresses at the reserved example domains
  (example.com, .org, .net, any `.example`, `.test`, `.invalid`), numbers of Ofcom's drama range
  +44 7700 900000-900999 in any spelling, and the demo's people ("Ana Garcia");
- every identity value the product was handed during the session (each `Identity` made): e-mail
  addresses and phone numbers as given and as normalised, and other identifiers of 12
  characters or more (shorter ones, "c1", would match by chance).

What is searched: each record's message with its arguments, and the type and message of its
exception and of the exceptions chained to it (not the traceback's source lines: those quote the
tests' own code). Every logger counts, at every level it emits, except the tests' own
machinery: the HTTP client of the tests (`httpx`, `httpcore`: TestClient's requests), the SMTP
server of the tests (aiosmtpd's `mail.*`) and `tests.*`. The product's loggers (`consentry`)
and uvicorn's (`uvicorn`, `uvicorn.error`, `uvicorn.access`) are set to DEBUG before each test,
so what they would write at any level is searched.

Records are taken where a logger hands them to its handlers (after its filters, e.g. the access
log's query-string cut), whatever handlers a test or uvicorn's dictConfig installs. Under
pytest-xdist each worker scans its own records and sends its hits to the controller
(`workeroutput`), which fails the run; without xdist the process fails its own run.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from consentry.demo.traffic import FIRST, LAST
from consentry.subjects.models import Identity, IdentityType

# Loggers set to DEBUG before each test: what the product and its server would write.
VERBOSE = ("consentry", "uvicorn")
# Loggers of the tests' own machinery, not the product's output.
HARNESS = ("httpx", "httpcore", "mail", "tests")
SHAPES = re.compile(
    r"[\w.%+-]+@(?:[\w-]+\.)*(?:example\.(?:com|org|net)|example|test|invalid)\b"
    r"|(?<![\d+])(?:\+|00)?(?:44[\s.-]?|0)7700[\s.-]?900[\s.-]?\d{3}(?!\d)"
    rf"|\b(?:{'|'.join(FIRST)})[\s._-]?(?:{'|'.join(LAST)})\b",
    re.IGNORECASE,
)
# Identifiers shorter than this (other than e-mail and phone) are not searched for.
MIN_IDENTIFIER = 12
WORKER_KEY = "logscan"
# Hits shown, at most, in the run's summary.
SHOWN = 20


class LogScan:
    """Keeps the session's log texts and identity values, and finds the ones in the other."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}  # text -> the logger that wrote it first
        self.values: set[str] = set()
        self.hits: list[str] = []
        # (log texts, identity values, seconds) of each process that scanned.
        self.scanned: list[tuple[int, int, float]] = []
        self._saved: dict[str, Any] = {}

    # Capture -------------------------------------------------------------------------------

    def start(self) -> None:
        scan = self
        call_handlers = logging.Logger.callHandlers
        identity_init = Identity.__init__

        def callHandlers(logger: logging.Logger, record: logging.LogRecord) -> None:
            scan.keep(record)
            call_handlers(logger, record)

        def init(identity: Identity, type: IdentityType, value: str) -> None:
            identity_init(identity, type, value)
            scan.note(type, value)

        self._saved = {"callHandlers": call_handlers, "__init__": identity_init}
        logging.Logger.callHandlers = callHandlers  # type: ignore[method-assign]
        Identity.__init__ = init  # type: ignore[method-assign]

    def stop(self) -> None:
        if self._saved:
            logging.Logger.callHandlers = self._saved["callHandlers"]  # type: ignore[method-assign]
            Identity.__init__ = self._saved["__init__"]  # type: ignore[method-assign]
            self._saved = {}

    def keep(self, record: logging.LogRecord) -> None:
        if record.name.split(".", 1)[0] in HARNESS:
            return
        try:
            text = record.getMessage()
        except Exception as exc:  # a record that does not format is logging's fault
            text = f"{record.msg!r} {record.args!r} ({type(exc).__name__})"
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(_exception_lines(record.exc_info[1]))
        if record.stack_info:
            text += "\n" + record.stack_info
        self.texts.setdefault(text, record.name)

    def note(self, kind: IdentityType, value: object) -> None:
        if not isinstance(value, str):
            return
        text = value.strip()
        personal = kind in {IdentityType.EMAIL, IdentityType.PHONE}
        if len(text) >= (6 if personal else MIN_IDENTIFIER):
            self.values.add(text.lower())

    # Scan ----------------------------------------------------------------------------------

    def scan(self) -> list[str]:
        """Each log text holding a fictional value or an identity value, with what it holds."""
        found: list[str] = []
        # One pass over all the texts per value, then only the values found in any of them.
        everything = "\n".join(self.texts).lower()
        values = sorted(v for v in self.values if v in everything)
        for text, logger in self.texts.items():
            lowered = text.lower()
            held = {m.group(0) for m in SHAPES.finditer(text)}
            held |= {v for v in values if v in lowered}
            if held:
                found.append(f"{logger}: {', '.join(sorted(held))} in {text[:300]!r}")
        return found


def _exception_lines(exc: BaseException) -> Iterator[str]:
    """The type and message of `exc` and of every exception chained to it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield from traceback.format_exception_only(type(current), current)
        current = current.__cause__ or current.__context__


_SCAN = LogScan()


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and _controls_workers(config):
        return  # the controller of xdist workers runs no test: it gathers their hits
    _SCAN.start()


def _controls_workers(config: pytest.Config) -> bool:
    dist = getattr(config.option, "dist", "no")
    workers = getattr(config.option, "numprocesses", None)
    return dist != "no" and bool(workers)


def pytest_unconfigure(config: pytest.Config) -> None:
    _SCAN.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    for name in VERBOSE:
        logging.getLogger(name).setLevel(logging.DEBUG)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if _SCAN._saved:
        started = time.perf_counter()
        _SCAN.hits = _SCAN.scan()
        _SCAN.scanned.append((len(_SCAN.texts), len(_SCAN.values), time.perf_counter() - started))
        workeroutput = getattr(config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[WORKER_KEY] = {"hits": _SCAN.hits, "scanned": _SCAN.scanned}
            return
    if _SCAN.hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist's controller: a worker's hits (the worker has finished its session)."""
    found = getattr(node, "workeroutput", {}).get(WORKER_KEY, {})
    _SCAN.hits.extend(found.get("hits", []))
    _SCAN.scanned.extend(found.get("scanned", []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if hasattr(terminalreporter.config, "workerinput") or not _SCAN.scanned:
        return
    texts, values, seconds = (sum(s[i] for s in _SCAN.scanned) for i in range(3))
    if not _SCAN.hits:
        terminalreporter.write_line(
            f"log scan: {texts} distinct log texts, {values} identity values and the fictional "
            f"shapes: no hit ({seconds:.1f} s)"
        )
        return
    terminalreporter.section("log scan: personal data in the logs", red=True)
    for hit in _SCAN.hits[:SHOWN]:
        terminalreporter.line(hit)
    if len(_SCAN.hits) > SHOWN:
        terminalreporter.line(f"... and {len(_SCAN.hits) - SHOWN} more")
