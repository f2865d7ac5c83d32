"""Realistic log lines for the demo: attacks worth sharing, mixed with internal noise.

Every line an attacker produces is in the real format of its source (nginx
combined, ufw kernel syslog, fail2ban), so the demo exercises the same
watchers a production node runs. The internal side of every line carries
canary strings (host names, user names, the organisation's name, private
addresses); the demo checks that none of them ever reaches a peer.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

EICAR = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DEMO_SIGNATURE = "Dtim.Demo.Dropper"
"""What the demo's own ClamAV database calls the EICAR file. ClamAV's stock name
(Eicar-Test-Signature) marks a test file, which DTIM keeps local; this one is shared."""

CANARIES = (
    "acme-canary",
    "dmz-web01",
    "jdoe.canary",
    "10.66.77.88",
    "/srv/acme-canary/",
    "ops-canary@acme-canary.example",
)
"""Strings that exist only inside a node's own logs; none may appear on a peer."""

INTERNAL_HOST = "dmz-web01.acme-canary.internal"
INTERNAL_ADDRESS = "10.66.77.88"

_PROBES = (
    "/.env",
    "/wp-login.php",
    "/phpmyadmin/index.php",
    "/.git/config",
    "/cgi-bin/../../../../etc/passwd",
    "/admin/config.php",
)
_SQLI = "/products.php?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--"
_XSS = "/search?q=%3Cscript%3Ealert(document.cookie)%3C/script%3E"
_SCANNER_AGENTS = (
    "Mozilla/5.0 zgrab/0.x",
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Nikto/2.5.0",
    "masscan/1.3",
)
_BENIGN_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


@dataclass
class AttackPlan:
    """Which public addresses attack which node, so some are seen by several organisations."""

    seed: int = 7
    attackers_per_node: int = 4
    shared_attackers: int = 2
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311  # nosec B311  # reproducible demo traffic, not secrets

    def public_address(self) -> str:
        """A routable address outside reserved, documentation and well-known benign ranges."""
        first = self.rng.choice((45, 62, 77, 91, 103, 141, 176, 185, 193, 212))
        rng = self.rng
        return f"{first}.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}"

    def attackers(self, nodes: int) -> tuple[list[str], list[list[str]]]:
        """(attackers every node sees, attackers per node)."""
        shared = [self.public_address() for _ in range(self.shared_attackers)]
        own = [
            [self.public_address() for _ in range(self.attackers_per_node)] for _ in range(nodes)
        ]
        return shared, own


def nginx_access(attacker: str, now: datetime, rng: random.Random) -> list[str]:
    """Exploit probes, SQL injection and XSS with a scanner agent from one address, and noise."""
    stamp = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    agent = rng.choice(_SCANNER_AGENTS)
    lines = [
        f'{attacker} - - [{stamp}] "GET {path} HTTP/1.1" 404 153 "-" "{agent}"' for path in _PROBES
    ]
    lines.append(f'{attacker} - - [{stamp}] "GET {_SQLI} HTTP/1.1" 200 512 "-" "{agent}"')
    lines.append(f'{attacker} - - [{stamp}] "GET {_XSS} HTTP/1.1" 200 498 "-" "{agent}"')
    lines.append(
        f"{INTERNAL_ADDRESS} - jdoe.canary [{stamp}] "
        f'"GET /srv/acme-canary/reports/q3.pdf HTTP/1.1" 200 1024 '
        f'"http://{INTERNAL_HOST}/" "{_BENIGN_AGENT}"'
    )
    return lines


def ufw_scan(attacker: str, now: datetime, rng: random.Random) -> list[str]:
    """A port scan: many distinct destination ports blocked within a minute."""
    stamp = f"{now:%b} {now.day:2d} {now:%H:%M:%S}"  # syslog pads the day with a space
    ports = rng.sample(range(1, 65535), 14)
    return [
        f"{stamp} dmz-web01 kernel: "
        f"[{rng.randrange(10000, 99999)}.{rng.randrange(100000, 999999)}] [UFW BLOCK] "
        f"IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 "
        f"SRC={attacker} DST={INTERNAL_ADDRESS} LEN=44 TOS=0x00 "
        f"PREC=0x00 TTL=243 ID={rng.randrange(1, 65535)} PROTO=TCP "
        f"SPT={rng.randrange(1024, 65535)} DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0"
        for port in ports
    ]


def fail2ban_ban(attacker: str, now: datetime, rng: random.Random) -> list[str]:
    """Failed SSH logins found by fail2ban, then a ban."""
    stamp = now.strftime("%Y-%m-%d %H:%M:%S") + f",{rng.randrange(100, 999)}"
    found = [
        f"{stamp} fail2ban.filter         [1042]: INFO    [sshd] "
        f"Found {attacker} - {now.strftime('%Y-%m-%d %H:%M:%S')}"
        for _ in range(5)
    ]
    return [*found, f"{stamp} fail2ban.actions        [1042]: NOTICE  [sshd] Ban {attacker}"]


def signature_database(directory: Path, signature: str = DEMO_SIGNATURE) -> Path:
    """Write a ClamAV MD5 signature database (``.hdb``) that detects the EICAR string.

    freshclam needs the internet; this one-line database lets clamscan (``-d``) and clamd
    (``DatabaseDirectory``) detect the demo's infected file offline, in milliseconds.
    """
    data = EICAR.encode()
    digest = hashlib.md5(data, usedforsecurity=False).hexdigest()  # ClamAV's .hdb format
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dtim-demo.hdb"
    path.write_text(f"{digest}:{len(data)}:{signature}\n", encoding="ascii")
    return path
