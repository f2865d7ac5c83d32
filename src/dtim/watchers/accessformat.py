"""Access log formats: combined, common, vhost_combined, and configured nginx/Apache formats.

A configured format is the server's own format string, nginx ``log_format``
style (``$remote_addr - $remote_user [$time_local] "$request" ...``) or Apache
``LogFormat`` style (``%h %l %u %t \\"%r\\" %>s %b ...``), compiled to a regular
expression whose groups name the fields detection needs.
"""

from __future__ import annotations

import re

from dtim.errors import ConfigError

FIELDS = ("vhost", "ip", "user", "time", "request", "status", "referer", "agent", "method", "url")
# Fast path: no escaped quotes inside fields. The robust path accepts \" escapes.
COMBINED_FAST = re.compile(
    r"^(\S+) \S+ (\S+) \[([^\]]+)\] "
    r'"(?:([A-Z]{3,8}) (\S+) HTTP/[0-9.]+|([^"]*))" (\d{3}) \S+(?: "([^"]*)" "([^"]*)")?'
)
COMBINED_VHOST = re.compile(
    r"^([^\s\[]+) (\S+) \S+ (\S+) \[([^\]]+)\] "
    r'"(?:([A-Z]{3,8}) (\S+) HTTP/[0-9.]+|([^"]*))" (\d{3}) \S+(?: "([^"]*)" "([^"]*)")?'
)
COMBINED_ESCAPED = re.compile(
    r"^(?:(?P<vhost>[^\s\[]+) (?=\S+ \S+ \S+ \[))?(?P<ip>\S+) \S+ (?P<user>\S+) "
    r"\[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) \S+'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?'
)
_QUOTED = r'(?:[^"\\]|\\.)*'
_NGINX_VARS = {
    "remote_addr": r"(?P<ip>\S+)",
    "http_x_real_ip": r"(?P<ip>\S+)",
    "realip_remote_addr": r"(?P<ip>\S+)",
    "remote_user": r"(?P<user>\S+)",
    "time_local": r"(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})",
    "time_iso8601": r"(?P<time>\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)?)",
    "request": rf"(?P<request>{_QUOTED})",
    "request_method": r"(?P<method>[A-Z]+)",
    "request_uri": r"(?P<url>\S+)",
    "status": r"(?P<status>\d{3})",
    "http_referer": rf"(?P<referer>{_QUOTED})",
    "http_user_agent": rf"(?P<agent>{_QUOTED})",
    "host": r"(?P<vhost>\S+)",
    "server_name": r"(?P<vhost>\S+)",
    "http_host": r"(?P<vhost>\S+)",
}
_APACHE_VARS = {
    "h": _NGINX_VARS["remote_addr"],
    "a": _NGINX_VARS["remote_addr"],
    "u": _NGINX_VARS["remote_user"],
    "t": r"\[(?P<time>[^\]]+)\]",
    "r": _NGINX_VARS["request"],
    ">s": _NGINX_VARS["status"],
    "s": _NGINX_VARS["status"],
    "m": _NGINX_VARS["request_method"],
    "U": r"(?P<url>\S+)",
    "v": _NGINX_VARS["host"],
    "V": _NGINX_VARS["host"],
    "{Referer}i": _NGINX_VARS["http_referer"],
    "{User-Agent}i": _NGINX_VARS["http_user_agent"],
    "{User-agent}i": _NGINX_VARS["http_user_agent"],
}
_NGINX_TOKEN = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_APACHE_TOKEN = re.compile(r"%[<>]?(?:\{[^}]+\}[a-zA-Z]|[a-zA-Z])|%%")


def compile_format(fmt: str, key: str) -> re.Pattern[str]:
    """Compile an nginx ``log_format`` or Apache ``LogFormat`` string to a regular expression.

    Raises:
        ConfigError: the format does not capture the client address, time and status.
    """
    text = fmt.replace('\\"', '"')
    out: list[str] = ["^"]
    position = 0
    apache = "%" in text and "$" not in text
    tokens = _APACHE_TOKEN if apache else _NGINX_TOKEN
    used: set[str] = set()
    for match in tokens.finditer(text):
        out.append(re.escape(text[position : match.start()]))
        position = match.end()
        if apache:
            name = match.group(0)[1:].lstrip("<>") if match.group(0) != "%%" else "%"
            name = ">s" if match.group(0) == "%>s" else name
            pattern = _APACHE_VARS.get(name, r"\S*" if name != "%" else "%")
        else:
            name = match.group(1) or match.group(2)
            pattern = _NGINX_VARS.get(name, _QUOTED if _is_quoted(text, match.start()) else r"\S*")
        group = re.search(r"\?P<(\w+)>", pattern)
        if group is not None:
            if group.group(1) in used:
                pattern = re.sub(r"\?P<\w+>", "?:", pattern)
            used.add(group.group(1))
        out.append(pattern)
    out.append(re.escape(text[position:]))
    missing = {"ip", "time", "status"} - used
    if missing:
        raise ConfigError(f"the log format does not capture {', '.join(sorted(missing))}", key=key)
    if "request" not in used and "url" not in used:
        raise ConfigError("the log format captures neither $request nor $request_uri", key=key)
    return re.compile("".join(out))


def _is_quoted(text: str, index: int) -> bool:
    return index > 0 and text[index - 1] == '"'
