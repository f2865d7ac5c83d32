"""Classifying HTTP requests: exploit probes, SQL injection, XSS, RCE payloads, scanner agents.

Most requests are benign, so the common path is cheap: segment look-ups in
frozensets and one character-class search; the expensive regular expressions
run only on requests with a suspicious character, and verdicts are cached per
distinct URL and user agent.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_plus

SENSITIVE_SEGMENTS = frozenset(
    {
        ".env",
        ".env.local",
        ".env.prod",
        ".env.production",
        ".env.backup",
        ".git",
        ".svn",
        ".hg",
        ".bzr",
        ".ds_store",
        ".htpasswd",
        ".htaccess",
        ".aws",
        ".ssh",
        ".bash_history",
        ".bashrc",
        ".zsh_history",
        ".npmrc",
        ".dockerenv",
        ".docker",
        ".kube",
        ".vscode",
        ".idea",
        ".config",
        ".cache",
        ".mysql_history",
        ".pgpass",
        ".netrc",
        ".git-credentials",
        ".gitconfig",
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "wp-config.php",
        "wp-config.php.bak",
        "wp-config.php.old",
        "wp-config.php~",
        "wp-config.bak",
        "config.php.bak",
        "configuration.php.bak",
        "settings.php.bak",
        "web.config.bak",
        "database.yml",
        "docker-compose.yml",
        "credentials",
        "credentials.json",
        "secrets.json",
        "phpinfo.php",
        "info.php",
        "eval-stdin.php",
        "boaform",
        "hnap1",
        "shell.php",
        "cmd.php",
        "c99.php",
        "r57.php",
        "webshell.php",
        "wso.php",
        "azenv.php",
        "timthumb.php",
        "alfa.php",
        "xleet.php",
        "backdoor.php",
        "mini.php",
        "up.php",
        "uploader.php",
        "passwd",
        "shadow",
        "win.ini",
        "boot.ini",
        "server-status",
        "server-info",
        "jmx-console",
        "invoker",
        "_ignition",
        "telescope",
        "sftp-config.json",
        "ftpsync.settings",
        "backup.sql",
        "dump.sql",
        "db.sql",
    }
)
ADMIN_SEGMENTS = frozenset(
    {
        "phpmyadmin",
        "pma",
        "myadmin",
        "mysqladmin",
        "mysql-admin",
        "phpmyadmin2",
        "phpmyadmin3",
        "sqladmin",
        "dbadmin",
        "db",
        "adminer",
        "adminer.php",
        "phpmyadmin-2.8.2.3",
        "wp-login.php",
        "wp-admin",
        "administrator",
        "admin",
        "admin.php",
        "manager",
        "solr",
        "actuator",
        "console",
        "webadmin",
        "cpanel",
        "whm",
        "plesk",
        "setup.php",
        "install.php",
        "installer.php",
        "vtigercrm",
        "owa",
        "autodiscover",
        "jenkins",
        "login.action",
        "cgi-bin",
        "scripts",
        "roundcube",
        "webmail",
        "mail",
        "horde",
        "squirrelmail",
        "phppgadmin",
        "pgadmin",
        "hudson",
        "zabbix",
        "nagios",
        "cacti",
        "xampp",
        "wordpress",
        "wp",
        "joomla",
        "drupal",
        "magento",
        "typo3",
        "fckeditor",
        "ckeditor",
        "elfinder",
        "filemanager",
        "kcfinder",
        "tinymce",
        "mcmanager",
        "recordings",
        "extmail",
        "mails",
        "v-webmail",
        "vwebmail",
        "mailman",
        "webmail2",
        "vendor",
        "druid",
        "geoserver",
        "weblogic",
        "wls-wsat",
        "struts",
        "axis2",
        "confluence",
    }
)
BACKUP_SUFFIXES = (
    ".bak",
    ".old",
    ".orig",
    ".swp",
    ".save",
    ".sql",
    ".sql.gz",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".zip",
    ".7z",
    ".rar",
    "~",
)
SCANNER_AGENTS = (
    "sqlmap",
    "nikto",
    "nmap",
    "masscan",
    "zgrab",
    "nuclei",
    "wpscan",
    "dirbuster",
    "dirb/",
    "gobuster",
    "ffuf",
    "feroxbuster",
    "fuzz faster",
    "acunetix",
    "nessus",
    "openvas",
    "w3af",
    "wfuzz",
    "hydra",
    "zmeu",
    "morfeus",
    "jorgee",
    "havij",
    "netsparker",
    "appscan",
    "webinspect",
    "arachni",
    "skipfish",
    "paros",
    "whatweb",
    "l9explore",
    "l9tcpid",
    "xfa1",
    "jaeles",
    "httpx - open-source",
    "wapiti",
    "commix",
    "joomscan",
    "droopescan",
    "cmsmap",
    "blackwidow",
    "grabber",
    "brutus",
    "muieblackcat",
    "fimap",
    "sysscan",
    "bsqlbf",
    "absinthe",
    "dotdotpwn",
    "friendly-scanner",
    "sipvicious",
    "pangolin",
)
_SUSPICIOUS = re.compile(
    r"[%'\"<>(){}$*;|`\\]|\.\.|select|union|script|passwd|etc/|http:|https:|php:|file:"
)
_SQLI = re.compile(
    r"union(?:\s|/\*.*?\*/)+(?:all(?:\s|/\*.*?\*/)+)?select|select\s.{0,80}\bfrom\b|information_schema|"
    r"\bsleep\s*\(|benchmark\s*\(|waitfor\s+delay|pg_sleep|'\s*(?:or|and)\s+'?\w+'?\s*=|"
    r"\b(?:or|and)\s+\d+\s*=\s*\d+|'\s*--|\)\s*--|/\*!\d*|extractvalue\s*\(|updatexml\s*\(|load_file\s*\(|"
    r"into\s+(?:out|dump)file|,null,null|\bchar\s*\(\d+\)|concat\s*\(|@@version|'\s*;\s*(?:drop|select|insert|update|delete)\b"
)
_XSS = re.compile(
    r"<\s*/?\s*(?:script|svg|iframe|img|body|input|table|object|embed|details|marquee|br|a\s|style|link|meta|video|audio)\b|"
    r"javascript\s*:|vbscript\s*:|\bon(?:error|load|mouseover|focus|click|toggle|begin|animationstart)\s*=|"
    r"\b(?:alert|prompt|confirm)\s*\(|document\.(?:cookie|domain|write)|string\.fromcharcode|expression\s*\("
)
_JNDI = re.compile(
    r"\$\{(?:[^}]*\$\{[^}]*\}[^}]*)*j\W*n\W*d\W*i|\$\{jndi:|\$\{\$\{(?:lower|upper|::-)"
)
_SHELLSHOCK = re.compile(r"\(\s*\)\s*\{\s*:?\s*;?\s*\}\s*;")
_RCE = re.compile(
    r"(?:;|\||`|\$\()\s*(?:wget|curl|bash|sh|nc|ncat|python|perl|php|chmod|rm|cat|id|uname|busybox|tftp)\b|/bin/(?:ba)?sh\b|cmd\.exe|powershell"
)
_TRAVERSAL = re.compile(
    r"\.\.[/\\]|/etc/(?:passwd|shadow|hosts|group)|proc/self/environ|win\.ini|boot\.ini|\.\./\.\."
)
_RFI = re.compile(r"=\s*(?:https?|ftp|php|data|expect|zip|phar)://")
_CACHE_LIMIT = 50_000

Verdict = tuple[tuple[str, str], ...]
"""(kind, tag) pairs: kind is probe | probe-4xx | sqli | xss | rce."""


def _decode(text: str) -> str:
    decoded = text
    for _ in range(2):  # double encoding (%252e) is common in probes
        if "%" not in decoded and "+" not in decoded:
            break
        decoded = unquote_plus(decoded)
    return decoded.lower()


class RequestClassifier:
    """Says what a request looks like; caches verdicts per URL and per user agent."""

    def __init__(self, extra_agents: tuple[str, ...] = ()) -> None:
        self._urls: dict[str, Verdict] = {}
        self._agents: dict[str, tuple[str, Verdict]] = {}
        self.agents = tuple(a.lower() for a in (*SCANNER_AGENTS, *extra_agents))

    def url(self, url: str) -> Verdict:
        """The verdicts for one request target (path and query)."""
        cached = self._urls.get(url)
        if cached is not None:
            return cached
        verdict = self._classify(url)
        if len(self._urls) >= _CACHE_LIMIT:
            self._urls.clear()
        self._urls[url] = verdict
        return verdict

    def _classify(self, url: str) -> Verdict:
        lowered = url.lower()
        found: list[tuple[str, str]] = []
        path = lowered.split("?", 1)[0]
        segments = path.split("/")
        if any(seg in SENSITIVE_SEGMENTS for seg in segments):
            found.append(("probe", "sensitive-file"))
        elif (
            any(seg in ADMIN_SEGMENTS for seg in segments)
            or path.endswith(BACKUP_SUFFIXES)
            or (path.endswith(".php") and "shell" in path)
        ):
            found.append(("probe-4xx", "admin-panel"))
        if _SUSPICIOUS.search(lowered) is None:
            return tuple(found)
        decoded = _decode(url)
        if _TRAVERSAL.search(decoded) or _TRAVERSAL.search(lowered):
            found.append(("probe", "path-traversal"))
        if _RFI.search(decoded):
            found.append(("probe", "remote-file-inclusion"))
        if _SQLI.search(decoded):
            found.append(("sqli", "sqli"))
        if _XSS.search(decoded):
            found.append(("xss", "xss"))
        found.extend(payload(decoded))
        return tuple(dict.fromkeys(found))

    def agent(self, agent: str) -> tuple[str, Verdict]:
        """The scanner a user agent names (or ""), and any RCE payload it carries."""
        cached = self._agents.get(agent)
        if cached is not None:
            return cached
        lowered = agent.lower()
        name = next((needle for needle in self.agents if needle in lowered), "")
        answer = (name, header_payload(lowered))
        if len(self._agents) >= _CACHE_LIMIT:
            self._agents.clear()
        self._agents[agent] = answer
        return answer


def header_payload(text: str) -> Verdict:
    """log4shell and shellshock payloads in a header (user agent, referer)."""
    if "${" not in text and "() {" not in text and "(){" not in text:
        return ()
    return tuple(item for item in payload(text) if item[1] != "command-injection")


def payload(text: str) -> list[tuple[str, str]]:
    """RCE payloads (log4shell, shellshock, command injection) in any header or target."""
    if (
        "$" not in text
        and "(" not in text
        and ";" not in text
        and "|" not in text
        and "`" not in text
        and "/bin/" not in text
    ):
        return []
    lowered = text.lower()
    found: list[tuple[str, str]] = []
    if _JNDI.search(lowered):
        found.append(("rce", "log4shell"))
    if _SHELLSHOCK.search(lowered):
        found.append(("rce", "shellshock"))
    if _RCE.search(lowered):
        found.append(("rce", "command-injection"))
    return found
