"""The dependency audit of `make lint`: pip-audit over the packages installed in this venv
(pyproject.toml's pins, the dev extra's, and what they pull in) against PyPI's advisory data.

A known vulnerability fails. When PyPI's advisory data cannot be had (no network, a proxy
refusing, or an index that serves none of the installed versions), the audit is skipped with a
message saying so, not failed: lint must still run offline. Any other error of pip-audit fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

COMMAND = [
    sys.executable,
    "-m",
    "pip_audit",
    "--vulnerability-service",
    "pypi",
    "--format",
    "json",
    "--progress-spinner",
    "off",
    # The project itself is not on PyPI.
    "--skip-editable",
    "--timeout",
    "15",
]
# What requests and pip-audit raise when pypi.org cannot be reached.
UNREACHABLE = re.compile(
    r"ConnectionError|ProxyError|SSLError|Timeout|Max retries exceeded|"
    r"Name or service not known|Temporary failure in name resolution|ServiceError"
)


def verdict(returncode: int, stdout: str, stderr: str) -> tuple[int, str]:
    """(exit status, message) of one pip-audit run."""
    try:
        report: dict[str, Any] = json.loads(stdout)
    except ValueError:
        if UNREACHABLE.search(stderr):
            last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
            return (
                0,
                f"dependency audit skipped: PyPI's advisory data is unreachable ({last[:200]})",
            )
        return returncode or 1, f"pip-audit failed ({returncode}):\n{stderr.strip()[-2000:]}"
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    if vulnerable:
        lines = [
            f"  {d['name']} {d['version']}: {v['id']} (fixed in {', '.join(v['fix_versions'])})"
            for d in vulnerable
            for v in d["vulns"]
        ]
        return 1, "dependency audit: known vulnerabilities\n" + "\n".join(lines)
    if returncode != 0:
        return returncode, f"pip-audit failed ({returncode}):\n{stderr.strip()[-2000:]}"
    skipped = sorted(d["name"] for d in dependencies if "skip_reason" in d)
    audited = len(dependencies) - len(skipped)
    if audited == 0:
        return 0, (
            "dependency audit skipped: PyPI's advisory data answered for none of the "
            f"{len(dependencies)} installed packages (no network, or an index that does not "
            "serve these versions)"
        )
    message = f"dependency audit: no known vulnerabilities in {audited} packages"
    if skipped:
        message += f"; not audited (not found on PyPI): {', '.join(skipped)}"
    return 0, message


def main(extra: list[str]) -> int:
    """Runs pip-audit (with `extra` arguments, e.g. --cache-dir) and prints its verdict."""
    # Our own command line: this interpreter's pip-audit and the arguments `make lint` gives.
    done = subprocess.run(COMMAND + extra, capture_output=True, text=True, check=False)  # noqa: S603
    status, message = verdict(done.returncode, done.stdout, done.stderr)
    print(message, file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
