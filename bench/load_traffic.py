"""Traffic for ``bench/load.py``: latency records, the log writer and the TAXII consumers.

The log writer and the TAXII consumers each run in their own process (started
by ``bench/load.py`` with the ``spawn`` context), so neither the node nor the
simulated peers slow them down, and each writes what it measured to a JSON
file when it ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from dtim.demo.generator import AttackPlan, fail2ban_ban, nginx_access, ufw_scan

ROTATE_BYTES = 64 * 1024 * 1024
"""A log file is rotated (renamed to ``.1``, as logrotate does) beyond this size."""
PAGE = 1000
TAXII_ACCEPT = "application/taxii+json;version=2.1"


@dataclass(frozen=True)
class Start:
    """A start line for a worker process: it says it is ready, then waits for the go."""

    ready: Any
    go: Any

    def wait(self, timeout: float = 600.0) -> None:
        """Report ready (imports and set-up done) and wait for the driver's go."""
        self.ready.set()
        if not self.go.wait(timeout):
            raise TimeoutError("no start signal from bench/load.py")


@dataclass
class Timings:
    """Latencies (seconds) and errors per endpoint, as one side of the traffic saw them."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def ok(self, endpoint: str, seconds: float) -> None:
        """Record one successful call."""
        self.latencies.setdefault(endpoint, []).append(seconds)

    def failed(self, endpoint: str, reason: str) -> None:
        """Record one failed call (the first 20 reasons are kept)."""
        self.errors[endpoint] = self.errors.get(endpoint, 0) + 1
        if len(self.samples) < 20:
            self.samples.append(f"{endpoint}: {reason}"[:300])

    def calls(self) -> dict[str, int]:
        """Successful calls per endpoint."""
        return {name: len(values) for name, values in self.latencies.items()}

    def to_json(self) -> dict[str, Any]:
        """Everything, for the driver."""
        return {"latencies": self.latencies, "errors": self.errors, "samples": self.samples}

    def merge(self, other: dict[str, Any]) -> None:
        """Add another side's records (from :meth:`to_json`)."""
        for name, values in other.get("latencies", {}).items():
            self.latencies.setdefault(name, []).extend(values)
        for name, count in other.get("errors", {}).items():
            self.errors[name] = self.errors.get(name, 0) + count
        self.samples.extend(other.get("samples", [])[: max(0, 20 - len(self.samples))])


def time_calls(
    timings: Timings, prefix: str, call: Callable[..., Awaitable[Any]]
) -> Callable[..., Awaitable[Any]]:
    """Wrap ``HttpTransport._call`` (peer, path, ...) so every request to a peer is timed.

    The transport has no timing hook, and wrapping the one method every
    request goes through measures exactly what a peer waits for: TLS, the
    signed request, the handler and the signed response.
    """

    async def timed(peer: Any, path: str, **kwargs: Any) -> Any:
        name = prefix + path.rsplit("/", 1)[-1]
        began = time.perf_counter()
        try:
            response = await call(peer, path, **kwargs)
        except asyncio.CancelledError:
            raise  # the session's own deadline or the end of the run: counted where it happens
        except Exception as exc:
            cause = f" ({exc.__cause__.__class__.__name__})" if exc.__cause__ else ""
            timings.failed(name, f"{exc.__class__.__name__}{cause}: {exc}")
            raise
        timings.ok(name, time.perf_counter() - began)
        return response

    return timed


def write_json(path: Path, document: object) -> None:
    """Write a JSON file atomically (readers never see half of it)."""
    partial = path.with_suffix(".part")
    partial.write_bytes(orjson.dumps(document))
    os.replace(partial, path)


# -- the log writer ---------------------------------------------------------------------------


def _rotate(path: Path) -> None:
    rotated = path.with_name(path.name + ".1")
    rotated.unlink(missing_ok=True)  # the tailer finished it one rotation ago
    path.rename(rotated)
    path.touch()


def write_logs(
    paths: dict[str, str],
    rate: float,
    duration: float,
    attackers: int,
    seed: int,
    out: str,
    start: Start,
) -> None:
    """Append ufw, nginx and fail2ban lines at ``rate`` lines/s for ``duration`` seconds.

    Attackers come from a fixed pool of ``attackers`` public addresses, so the
    set of indicators stops growing once every one was seen (memory can level
    off) while every line still has to be read, parsed and detected.
    """
    plan = AttackPlan(seed=seed)
    pool = [plan.public_address() for _ in range(attackers)]
    rng = random.Random(seed)
    makers = {"ufw": ufw_scan, "nginx_access": nginx_access, "fail2ban": fail2ban_ban}
    written = dict.fromkeys(makers, 0)
    rotations = 0
    handles = {name: open(paths[name], "a", encoding="utf-8") for name in makers}  # noqa: SIM115
    start.wait()
    began = time.monotonic()
    total = 0
    try:
        while (elapsed := time.monotonic() - began) < duration:
            target = int(rate * elapsed)
            now = datetime.now(UTC)
            buffers: dict[str, list[str]] = {name: [] for name in makers}
            while total < target:
                name = rng.choice(("ufw", "nginx_access", "fail2ban"))
                lines = makers[name](rng.choice(pool), now, rng)
                buffers[name].extend(lines)
                total += len(lines)
            for name, lines in buffers.items():
                if not lines:
                    continue
                handle = handles[name]
                handle.write("\n".join(lines) + "\n")
                handle.flush()
                written[name] += len(lines)
                if handle.tell() > ROTATE_BYTES:
                    handle.close()
                    _rotate(Path(paths[name]))
                    handles[name] = open(paths[name], "a", encoding="utf-8")  # noqa: SIM115
                    rotations += 1
            time.sleep(0.05)  # a writer's pace: batches every 50 ms, the rate set by the target
    finally:
        for handle in handles.values():
            handle.close()
    write_json(
        Path(out),
        {"written": written, "seconds": time.monotonic() - began, "rotations": rotations},
    )


# -- the TAXII consumers ----------------------------------------------------------------------


async def _get(
    http: httpx.AsyncClient, timings: Timings, name: str, url: str, params: dict[str, str]
) -> dict[str, Any] | None:
    began = time.perf_counter()
    try:
        response = await http.get(url, params=params)
    except httpx.HTTPError as exc:
        timings.failed(name, f"{exc.__class__.__name__}: {exc}")
        return None
    if response.status_code != 200:
        timings.failed(name, f"HTTP {response.status_code}: {response.text[:200]}")
        return None
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        timings.failed(name, f"not JSON: {exc}")
        return None
    timings.ok(name, time.perf_counter() - began)
    return body if isinstance(body, dict) else None


async def _consume(
    base: str,
    context: ssl.SSLContext,
    auth: tuple[str, str],
    deadline: float,
    pause: float,
    timings: Timings,
    counts: dict[str, int],
) -> None:
    """Walk discovery, then page through every readable collection, again and again."""
    headers = {"Accept": TAXII_ACCEPT}
    timeout = httpx.Timeout(30.0)
    async with httpx.AsyncClient(
        verify=context, auth=auth, headers=headers, timeout=timeout, trust_env=False
    ) as http:
        while time.monotonic() < deadline:
            await _get(http, timings, "taxii discovery", f"{base}/taxii2/", {})
            listed = await _get(
                http, timings, "taxii collections", f"{base}/taxii2/api/collections/", {}
            )
            for collection in (listed or {}).get("collections", []):
                if not collection.get("can_read") or time.monotonic() >= deadline:
                    continue
                url = f"{base}/taxii2/api/collections/{collection['id']}/objects/"
                params = {"limit": str(PAGE)}
                while time.monotonic() < deadline:
                    page = await _get(http, timings, "taxii objects", url, params)
                    if page is None:
                        break
                    counts["objects"] += len(page.get("objects", []))
                    counts["pages"] += 1
                    if not page.get("more"):
                        break
                    params = {"limit": str(PAGE), "next": str(page["next"])}
            counts["passes"] += 1
            await asyncio.sleep(pause)


def consume_taxii(
    base: str, ca_path: str, user: str, password: str, clients: int, duration: float,
    pause: float, out: str, start: Start,
) -> None:  # fmt: skip
    """Run ``clients`` TAXII consumers for ``duration`` seconds; write what they saw to ``out``."""
    context = ssl.create_default_context(cafile=ca_path)
    timings = Timings()
    counts = {"objects": 0, "pages": 0, "passes": 0}

    async def run() -> None:
        deadline = time.monotonic() + duration
        await asyncio.gather(
            *(
                _consume(base, context, (user, password), deadline, pause, timings, counts)
                for _ in range(clients)
            )
        )

    start.wait()
    began = time.monotonic()
    asyncio.run(run())
    write_json(
        Path(out),
        {"timings": timings.to_json(), "counts": counts, "seconds": time.monotonic() - began},
    )


def read_json(path: Path) -> Any:
    """A JSON file written by :func:`write_json` (None while it does not exist)."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
