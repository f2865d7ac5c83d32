"""Process-wide counters and gauges, exposed on ``/metrics`` in the Prometheus text format.

Stdlib only, so every layer may count things without depending on an
exporter. Names follow Prometheus conventions (``dtim_..._total`` for
counters); label values are escaped on output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

Labels = tuple[tuple[str, str], ...]


class Metrics:
    """A registry of labelled counters and gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._values: dict[str, dict[Labels, float]] = {}

    def declare(self, name: str, kind: str, help_text: str) -> None:
        """Declare a metric once (kind ``counter`` or ``gauge``)."""
        with self._lock:
            self._help.setdefault(name, (kind, help_text))
            self._values.setdefault(name, {})

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        """Add to a counter."""
        key = _labels(labels)
        with self._lock:
            series = self._values.setdefault(name, {})
            series[key] = series.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """Set a gauge."""
        with self._lock:
            self._values.setdefault(name, {})[_labels(labels)] = value

    def value(self, name: str, **labels: str) -> float:
        """Current value of one series (0 when never touched)."""
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def render(self, extra: Iterable[tuple[str, str, str, Mapping[Labels, float]]] = ()) -> str:
        """The text exposition format, plus ``extra`` (name, kind, help, series) read per scrape."""
        with self._lock:
            families = [
                (name, *self._help.get(name, ("untyped", name)), dict(series))
                for name, series in self._values.items()
            ]
        lines: list[str] = []
        for name, kind, help_text, series in [*families, *extra]:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, number in sorted(series.items()):
                rendered = ",".join(f'{key}="{_escape(value)}"' for key, value in labels)
                lines.append(
                    f"{name}{{{rendered}}} {_number(number)}"
                    if rendered
                    else f"{name} {_number(number)}"
                )
        return "\n".join(lines) + "\n"


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted((key, str(value)) for key, value in labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


METRICS = Metrics()
"""The process-wide registry the node exposes."""
