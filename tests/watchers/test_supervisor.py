"""The node's watchers on a real store: enabled by their paths, positions survive a restart,
counters published, a watcher that cannot start is reported and does not stop the others."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from dtim.config.settings import PrivacySettings, Settings, WatcherSettings
from dtim.crypto.evidence import open_evidence
from dtim.crypto.keyring import Keyring
from dtim.demo.generator import fail2ban_ban, ufw_scan
from dtim.service import StoreSink, watcher_config
from dtim.store import Store
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from dtim.watchers.supervisor import (
    STATS_STATE_KEY,
    WatcherConfig,
    WatcherSupervisor,
    enabled_watchers,
)

ATTACKERS = ("45.10.20.30", "62.40.50.60")


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def settings_for(tmp_path: Path, **watchers: object) -> WatcherConfig:
    return watcher_config(
        Settings(
            watchers=WatcherSettings(start_at="beginning", **watchers),  # type: ignore[arg-type]
            privacy=PrivacySettings(own_networks=("10.66.0.0/16",)),
        )
    )


def test_only_watchers_with_a_path_are_enabled(tmp_path: Path) -> None:
    specs = registered_watchers(make_plugin_manager(load_entrypoints=False))
    settings = Settings(
        watchers=WatcherSettings(
            ufw_log_path="/var/log/ufw.log",
            rules={"ufw": {"scan-ports": {"threshold": 5}}, "custom": {"path": "/x"}},
        )
    )
    enabled = enabled_watchers(watcher_config(settings), specs)
    assert [(e.spec.name, e.path) for e in enabled] == [("ufw", "/var/log/ufw.log")]
    assert dict(enabled[0].options) == {"scan-ports": {"threshold": 5}}


async def run_until(
    supervisor: WatcherSupervisor, condition: Callable[[], Awaitable[bool]]
) -> None:
    stop = asyncio.Event()
    running = asyncio.ensure_future(supervisor.run(stop))
    try:
        await wait_for(condition)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


async def test_watchers_commit_sightings_once_across_a_restart(
    store: Store, tmp_path: Path
) -> None:
    keyring = Keyring.load_or_create(tmp_path / "keys", now=datetime.now(UTC))
    ufw, fail2ban = tmp_path / "ufw.log", tmp_path / "fail2ban.log"
    now, rng = datetime.now(UTC), random.Random(3)
    ufw.write_text("\n".join(ufw_scan(ATTACKERS[0], now, rng)) + "\nnot a log line\n")
    fail2ban.write_text("")
    settings = settings_for(tmp_path, ufw_log_path=str(ufw), fail2ban_log_path=str(fail2ban))
    sink = StoreSink(store, keyring)
    first = WatcherSupervisor(settings, sink, store, poll_interval=0.05, stats_interval=0.05)
    assert first.names == ["fail2ban", "ufw"]

    async def scanner_stored() -> bool:
        return await store.find_indicator("ipv4", ATTACKERS[0]) is not None

    await run_until(first, scanner_stored)
    stats = await store.get_state(STATS_STATE_KEY)
    assert isinstance(stats, dict)
    ufw_stats = stats["ufw"]
    assert isinstance(ufw_stats, dict)
    assert ufw_stats["lines"] == 15
    assert ufw_stats["parse_errors"] == 1
    scanner = await store.find_indicator("ipv4", ATTACKERS[0])
    assert scanner is not None
    sightings = await store.sightings_for(scanner.id)
    assert sightings
    blob = sightings[0].sealed_evidence
    assert blob is not None
    assert any("SRC=" in line for line in open_evidence(keyring, blob, context=scanner.id).lines)

    # Restarted: the ufw lines already read are not read again; new fail2ban lines are.
    with fail2ban.open("a") as out:
        out.write("\n".join(fail2ban_ban(ATTACKERS[1], now, rng)) + "\n")
    second = WatcherSupervisor(settings, sink, store, poll_interval=0.05, stats_interval=0.05)

    async def banned_stored() -> bool:
        return await store.find_indicator("ipv4", ATTACKERS[1]) is not None

    await run_until(second, banned_stored)
    assert second.stats()["ufw"]["lines"] == 0  # type: ignore[index]
    assert len(await store.sightings_for(scanner.id)) == len(sightings)


async def test_clamav_without_an_engine_is_reported_and_others_run(
    store: Store, tmp_path: Path
) -> None:
    keyring = Keyring.load_or_create(tmp_path / "keys", now=datetime.now(UTC))
    ufw = tmp_path / "ufw.log"
    ufw.write_text("\n".join(ufw_scan(ATTACKERS[0], datetime.now(UTC), random.Random(1))) + "\n")
    scan_dir = tmp_path / "incoming"
    scan_dir.mkdir()
    settings = Settings(
        watchers=WatcherSettings(
            start_at="beginning",
            ufw_log_path=str(ufw),
            clamav_scan_dir=str(scan_dir),
            rules={
                "clamav": {
                    "clamd_socket": str(tmp_path / "no-clamd.sock"),
                    "clamscan": "no-such-clamscan",
                }
            },
        )
    )
    supervisor = WatcherSupervisor(
        watcher_config(settings),
        StoreSink(store, keyring),
        store,
        poll_interval=0.05,
        stats_interval=0.05,
    )

    async def both_reported() -> bool:
        stats = await store.get_state(STATS_STATE_KEY)
        if not isinstance(stats, dict):
            return False
        clamav, ufw_stats = stats.get("clamav"), stats.get("ufw")
        return (
            isinstance(clamav, dict)
            and bool(clamav["problems"])
            and isinstance(ufw_stats, dict)
            and ufw_stats["sightings"] != 0
        )

    await run_until(supervisor, both_reported)
    problems = supervisor.stats()["clamav"]["problems"]  # type: ignore[index]
    assert "no-such-clamscan" in str(problems)
