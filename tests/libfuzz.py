"""atheris (libFuzzer for Python) in the suite, bounded in time: `run` fuzzes a target, a function
of bytes named "module:function", in a child process for a few seconds; the child imports the
target's module with consentry's modules instrumented for coverage, so libFuzzer's mutations
follow the branches of the decoder under test. A target raises only when it meets a bug (any
exception but the refusal its decoder documents), which libFuzzer reports as a crash: the run
fails with the input and the traceback. CI draws from a fixed seed (see tests/conftest.py's
"ci" profile), so its runs try the start of one sequence of inputs, longer or shorter with the
machine's speed; a developer's run draws new ones.

The child: python -m tests.libfuzz MODULE:FUNCTION INSTRUMENTED,MODULES [libFuzzer flags] [corpus]
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import os
import random
import resource
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

# Of fuzzing per target in the suite (`FUZZ_SECONDS` longer runs by hand).
SECONDS = 4
ROOT = Path(__file__).resolve().parent.parent


def run(
    target: str,
    instrumented: list[str],
    tmp_path: Path,
    seeds: list[bytes],
    seconds: float = SECONDS,
) -> subprocess.CompletedProcess[str]:
    """libFuzzer on `target` for `seconds`, starting from `seeds`, with coverage from the
    `instrumented` modules (the decoder's own: instrumenting all of consentry costs seconds);
    returns the finished child (status 0: no crash). Crashing inputs are written under
    `tmp_path`."""
    corpus = tmp_path / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for n, seed in enumerate(seeds):
        (corpus / f"seed-{n}").write_bytes(seed)
    seed = 1 if os.environ.get("CI") else random.SystemRandom().randrange(1, 2**31)
    if importlib.util.find_spec("atheris") is None:
        raise RuntimeError("atheris is not installed: `make install-dev` installs the dev extra")
    path = [str(ROOT), str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.libfuzz",
            target,
            ",".join(instrumented),
            f"-max_total_time={max(1, round(seconds))}",
            f"-seed={seed}",
            "-max_len=4096",
            f"-rss_limit_mb={_rss_limit_mb()}",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=seconds + 60,
    )


def _rss_limit_mb(headroom: int = 1024) -> int:
    """libFuzzer's memory limit for a child of this process: `headroom` MB over this process's
    peak. Linux keeps a process's peak resident size across fork and exec, and libFuzzer
    judges its child by that peak, so a child of a large test worker (gigabytes late in a
    suite) would otherwise count as out of memory before its first input."""
    return headroom + resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def report(done: subprocess.CompletedProcess[str]) -> str:
    """What a failing run shows: the end of libFuzzer's output (the traceback and the input)."""
    # atheris prints the Python traceback on stdout, libFuzzer the input on stderr.
    return f"libFuzzer status {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"


def _load(target: str, instrumented: list[str]) -> Callable[[bytes], None]:
    """The target, its module imported as is, then the functions of the `instrumented`
    modules given coverage (atheris.instrument_imports would take all of consentry, seconds
    of start-up)."""
    import atheris  # noqa: PLC0415 - the child alone needs it

    module_name, function = target.split(":")
    module = importlib.import_module(module_name)
    for name in instrumented:
        importlib.import_module(name)
    wanted = set(instrumented)
    for obj in gc.get_objects():
        if isinstance(obj, types.FunctionType) and obj.__module__ in wanted:
            atheris.instrument_func(obj)
    one_input: Callable[[bytes], None] = getattr(module, function)
    return one_input


def main(argv: list[str]) -> None:
    import atheris  # noqa: PLC0415

    one_input = _load(argv[1], argv[2].split(","))
    atheris.Setup([argv[0], *argv[3:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
