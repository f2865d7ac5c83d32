"""CrowdSec as a benchmark peer: its hub scenarios replayed over the same generated logs.

Debian's ``crowdsec`` package carries the agent, ``cscli``, a snapshot of the
hub and its data files. It is not installed: its post-install script registers
with CrowdSec's online API, which a machine without the internet cannot reach.
Instead the package is downloaded with ``apt-get download`` and unpacked into a
cache directory (``dpkg-deb -x``), and every replay gets a private
configuration: the collections a site would install for the log (parsers,
scenarios, the default private-address whitelist), a local API on a loopback
port with its own SQLite database, no online client.

A replay runs the agent in CrowdSec's one-shot mode (``-dsn file://LOG
-type TYPE``), which reads the file on the log's own timestamps and pushes the
overflows to the local API; the alerts' source addresses are read back from
the API's database. Its CPU time is the agent's (all its threads), as
fail2ban-regex's is its own, less its start-up on an empty log.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dtim-bench" / "crowdsec"
# What every site has (CrowdSec's install sets them up with the linux collection): the raw
# stage (syslog and non-syslog lines), timestamps from the log, the private-address whitelist.
ALWAYS = (
    "crowdsecurity/syslog-logs",
    "crowdsecurity/dateparse-enrich",
    "crowdsecurity/whitelists",
)
LOGS = {
    # DTIM source: (CrowdSec acquisition type, collections a site would install for it)
    "nginx_access": ("nginx", ("crowdsecurity/nginx", "crowdsecurity/http-cve")),
    "apache_access": ("apache2", ("crowdsecurity/apache2", "crowdsecurity/http-cve")),
    "nginx_error": ("nginx", ("crowdsecurity/nginx",)),
    "apache_error": ("apache2", ("crowdsecurity/apache2",)),
    "ufw": ("syslog", ("crowdsecurity/linux", "crowdsecurity/iptables")),
    "suricata": ("suricata-evelogs", ("crowdsecurity/suricata",)),
}
KINDS = ("parsers", "scenarios", "postoverflows")


@dataclass(frozen=True)
class Replay:
    """One replay's agent CPU seconds and the alerts per source address."""

    seconds: float
    ips: Counter[str]
    scenarios: Counter[str]


class CrowdSecError(RuntimeError):
    """The CrowdSec peer could not be prepared or run."""


def unpacked(cache: Path = CACHE) -> Path:
    """The root of Debian's crowdsec package, unpacked into ``cache`` on first use."""
    root = cache / "root"
    if (root / "usr" / "bin" / "crowdsec").exists():
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise CrowdSecError("apt-get and dpkg-deb are needed to fetch Debian's crowdsec package")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as download:
        fetched = subprocess.run(
            ["apt-get", "download", "crowdsec"],
            cwd=download,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        debs = sorted(Path(download).glob("crowdsec_*.deb"))
        if fetched.returncode != 0 or not debs:
            raise CrowdSecError(f"apt-get download crowdsec failed: {fetched.stderr.strip()}")
        staging = Path(download) / "root"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(staging)], check=True, timeout=600)
        staging.rename(root)
    return root


def version(root: Path) -> str:
    done = subprocess.run(
        [str(root / "usr/bin/crowdsec"), "-version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    for line in (done.stdout + done.stderr).splitlines():
        if "version:" in line:
            return line.split("version:", 1)[1].strip()
    return "unknown"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Site:
    """A private CrowdSec configuration with the collections for one kind of log."""

    def __init__(self, root: Path, directory: Path, collections: tuple[str, ...]) -> None:
        self.root = root
        self.directory = directory
        self.hub = root / "usr/share/crowdsec/hub"
        self.index = json.loads((self.hub / ".index.json").read_text())
        self.port = _free_port()
        self.config = directory / "config.yaml"
        self.database = directory / "data" / "crowdsec.db"
        self.items: dict[str, set[str]] = {kind: set() for kind in KINDS}
        for name in collections:
            self._collect("collections", name)
        for name in ALWAYS:
            self.items["parsers"].add(name)
        self._write()

    def _collect(self, kind: str, name: str) -> None:
        item = self.index[kind].get(name)
        if item is None:
            raise CrowdSecError(f"{kind[:-1]} {name} is not in the packaged hub")
        if kind != "collections":
            self.items[kind].add(name)
            return
        for sub in ("parsers", "scenarios", "postoverflows", "collections"):
            for child in item.get(sub) or ():
                self._collect(sub, child)

    def _write(self) -> None:
        etc = self.directory / "etc"
        data = self.directory / "data"
        for path in (etc, data, etc / "acquis.d", etc / "notifications"):
            path.mkdir(parents=True, exist_ok=True)
        for kind, names in self.items.items():
            for name in sorted(names):
                entry = self.index[kind][name]
                target = etc / kind
                if kind != "scenarios":
                    target /= entry["stage"]
                target.mkdir(parents=True, exist_ok=True)
                # The agent loads an item when its link carries the hub file's own name.
                link = target / Path(entry["path"]).name
                link.symlink_to(self.hub / entry["path"])
        packaged = self.root / "usr/share/crowdsec"
        for data_file in (packaged / "data").iterdir():
            (data / data_file.name).symlink_to(data_file)
        (etc / "patterns").symlink_to(self.root / "etc/crowdsec/patterns")
        shutil.copy(self.root / "etc/crowdsec/profiles.yaml", etc / "profiles.yaml")
        (etc / "simulation.yaml").write_text("simulation: off\n")
        (etc / "acquis.yaml").write_text("")
        (etc / "local_api_credentials.yaml").write_text("")
        self.config.write_text(
            f"""common:
  daemonize: false
  log_media: stdout
  log_level: warning
  working_dir: {self.directory}
config_paths:
  config_dir: {etc}/
  data_dir: {data}/
  simulation_path: {etc}/simulation.yaml
  hub_dir: {self.hub}/
  index_path: {self.hub}/.index.json
  notification_dir: {etc}/notifications/
  plugin_dir: {self.root}/usr/lib/crowdsec/plugins/
crowdsec_service:
  acquisition_path: {etc}/acquis.yaml
  acquisition_dir: {etc}/acquis.d
  parser_routines: 1
cscli:
  output: json
db_config:
  log_level: warning
  type: sqlite
  db_path: {self.database}
  flush:
    max_items: 10000000
    max_age: 3650d
api:
  client:
    insecure_skip_verify: false
    credentials_path: {etc}/local_api_credentials.yaml
  server:
    log_level: warning
    listen_uri: 127.0.0.1:{self.port}
    profiles_path: {etc}/profiles.yaml
    trusted_ips:
      - 127.0.0.1
prometheus:
  enabled: false
"""
        )
        self._cscli(
            "machines", "add", "-a", "-f", str(etc / "local_api_credentials.yaml"), "--force"
        )

    def _cscli(self, *arguments: str) -> None:
        done = subprocess.run(
            [str(self.root / "usr/bin/cscli"), "-c", str(self.config), *arguments],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise CrowdSecError(f"cscli {' '.join(arguments)}: {done.stderr.strip()}")

    def replay(self, log: Path, log_type: str) -> Replay:
        """Start the local API, replay ``log`` through the agent, read back the alerts."""
        binary = str(self.root / "usr/bin/crowdsec")
        # The local API's output goes to a file: a pipe nobody reads would block it once full.
        api_log = self.directory / "api.log"
        with open(api_log, "ab") as output:
            api = subprocess.Popen(
                [binary, "-c", str(self.config), "-no-cs"],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_for_api(api, api_log)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            agent = subprocess.run(
                [
                    binary,
                    "-c",
                    str(self.config),
                    "-no-api",
                    "-dsn",
                    f"file://{log}",
                    "-type",
                    log_type,
                ],
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if agent.returncode != 0:
                raise CrowdSecError(f"crowdsec replay of {log}: {agent.stderr.strip()[-2000:]}")
        finally:
            api.terminate()
            try:
                api.wait(timeout=30)
            except subprocess.TimeoutExpired:
                api.kill()
                api.wait()
        seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        ips: Counter[str] = Counter()
        scenarios: Counter[str] = Counter()
        with sqlite3.connect(self.database) as database:
            for scenario, address in database.execute("SELECT scenario, source_ip FROM alerts"):
                ips[address] += 1
                scenarios[scenario] += 1
        return Replay(seconds, ips, scenarios)

    def _wait_for_api(self, api: subprocess.Popen[bytes], log: Path) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if api.poll() is not None:
                said = log.read_text(errors="replace")[-2000:]
                raise CrowdSecError(f"crowdsec local API exited: {said}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise CrowdSecError("crowdsec local API did not listen within 60 s")


def replay(source: str, log: Path, root: Path) -> Replay:
    """Replay ``log`` of DTIM's ``source`` (one of :data:`LOGS`) through CrowdSec."""
    log_type, collections = LOGS[source]
    with tempfile.TemporaryDirectory(prefix="dtim-crowdsec-") as directory:
        site = Site(root, Path(directory), collections)
        # Start-up (loading the hub, its data files, compiling patterns) is measured on an
        # empty log and taken off, as fail2ban-regex's is.
        empty = Path(directory) / "empty.log"
        empty.touch()
        startup = site.replay(empty, log_type).seconds
        measured = site.replay(log, log_type)
        return Replay(max(measured.seconds - startup, 1e-6), measured.ips, measured.scenarios)
