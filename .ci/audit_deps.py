"""Audit DTIM's runtime dependencies, as installed in this environment, with pip-audit.

The audited set is the closure of the installed ``dtim`` distribution's requirements (with the
extras it asks for, such as ``psycopg[binary]``), pinned to the installed versions: what a node
runs, not the test and lint tools. pip-audit asks PyPI's vulnerability data first, then OSV.

Exit status:
  0  no known vulnerability; or no vulnerability service could be reached (a WARNING says that
     nothing was audited; ``--strict`` turns this into a failure)
  1  a known vulnerability was found (listed with its fixed versions)
  2  pip-audit failed for another reason, or the audit could not be set up
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SERVICES = ("pypi", "osv")
TIMEOUT_S = 300  # whole pip-audit run; each HTTP call has its own 15 s socket timeout
# pip-audit's tracebacks when the service's host cannot be reached.
NETWORK_ERROR = re.compile(
    r"ConnectionError|NameResolutionError|Max retries exceeded|ReadTimeout|ConnectTimeout"
)
HOST = re.compile(r"host='([^']+)'")
# PyPI's per-release JSON is missing (or blocked): the dependency was not audited.
NOT_AUDITED = re.compile(r"not found on PyPI|could not be audited")


def runtime_closure(root: str = "dtim") -> dict[str, str]:
    """Return ``{name: installed version}`` for ``root``'s runtime requirements, transitively."""
    pinned: dict[str, str] = {}
    pending: list[tuple[str, frozenset[str]]] = [(root, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        if key[0] != canonicalize_name(root):
            pinned[key[0]] = dist.version
        for requirement in _requirements(dist, extras):
            pending.append((requirement.name, frozenset(requirement.extras)))
    return pinned


def _requirements(dist: metadata.Distribution, extras: frozenset[str]) -> Iterator[Requirement]:
    """Yield ``dist``'s requirements that apply here, with ``extras`` selected."""
    for line in dist.requires or ():
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": e}) for e in extras | {""}):
            yield requirement


def audit(requirements: Path, service: str) -> tuple[str, dict[str, Any]]:
    """Run pip-audit once; return ``("ok" | "unreachable" | "error", report)``."""
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--disable-pip",
        "--no-deps",
        "--requirement",
        str(requirements),
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--timeout",
        "15",
    ]
    try:
        done = subprocess.run(  # noqa: S603  # fixed argv built above, no shell
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return "unreachable", {"error": f"pip-audit ({service}) took over {TIMEOUT_S} s"}
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        if NETWORK_ERROR.search(done.stderr):
            host = HOST.search(done.stderr)
            return "unreachable", {"error": f"cannot reach {host.group(1) if host else service}"}
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return "error", {"error": lines[-1]}
    deps = report["dependencies"]
    if deps and all(NOT_AUDITED.search(d.get("skip_reason", "")) for d in deps):
        return "unreachable", {"error": f"none of the {len(deps)} releases found on {service}"}
    return "ok", report


def main(argv: list[str] | None = None) -> int:
    """Audit the runtime closure; see the module docstring for the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--strict", action="store_true", help="fail when no vulnerability service answers"
    )
    args = parser.parse_args(argv)
    try:
        pinned = runtime_closure()
    except metadata.PackageNotFoundError as exc:
        print(f"audit: {exc.name} is not installed here (pip install -e .)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="dtim-audit-") as tmp:
        requirements = Path(tmp) / "runtime.txt"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pinned.items())))
        reasons = []
        for service in SERVICES:
            kind, report = audit(requirements, service)
            if kind == "error":
                print(f"audit: pip-audit ({service}) failed: {report['error']}", file=sys.stderr)
                return 2
            if kind == "unreachable":
                reasons.append(f"{service}: {report['error']}")
                continue
            return _verdict(report, service, len(pinned))
    level = "ERROR" if args.strict else "WARNING"
    print(
        f"audit: {level}: no vulnerability service could be reached; the {len(pinned)} runtime "
        f"dependencies were NOT audited ({'; '.join(reasons)})",
        file=sys.stderr,
    )
    return 1 if args.strict else 0


def _verdict(report: dict[str, Any], service: str, count: int) -> int:
    """Print the vulnerabilities in ``report``; return 1 if there are any."""
    found = [(d, v) for d in report["dependencies"] for v in d.get("vulns", ())]
    for dep, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions") or ()) or "none yet"
        print(f"audit: {dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
    for dep in report["dependencies"]:
        if "skip_reason" in dep:
            print(f"audit: WARNING: {dep['name']} skipped: {dep['skip_reason']}", file=sys.stderr)
    if found:
        print(f"audit: {len(found)} known vulnerabilities in DTIM's runtime dependencies")
        return 1
    print(f"audit: {count} runtime dependencies, no known vulnerabilities ({service})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
