"""Per-key event counting over log time, in bounded memory.

One :class:`Tracker` serves one rule. Keys (usually source addresses) live in
two generations of plain dicts: every ``rule.span`` seconds of log time the
older generation is dropped whole, so a key nobody touched for a full span
disappears without per-key bookkeeping, and a cap on the number of keys
drops the least recently used generation early. A key seen once costs one
float; only keys seen twice or more get a bucket with their recent lines.
That keeps a million one-off visitors well under 200 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from dtim.watchers.rules import Bucket, Rule

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule crossed its threshold for one key.

    Attributes:
        rule: the rule that fired.
        key: the key it fired for (an address, a flow, a jail + address ...).
        count: events (or distinct values) that made it fire.
        first: log time of the oldest counted event.
        last: log time of the event that completed it.
        lines: the most recent raw lines of that key (evidence), oldest first.
        values: the distinct values counted (ports ...), for distinct rules.
    """

    rule: Rule
    key: str
    count: int
    first: float
    last: float
    lines: tuple[str, ...]
    values: tuple[str, ...] = ()


class _Counter:
    """State of a key seen more than once (or muted, or counting distinct values)."""

    __slots__ = ("level", "lines", "muted_until", "times", "values")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lines: list[str] = []
        self.values: dict[str, float] | None = None
        self.muted_until = 0.0
        self.level = 0.0


class Tracker:
    """Counts one rule's events per key and says when the rule fires.

    Args:
        rule: thresholds, window and cooldown.
        max_keys: most keys kept; beyond it the least recently used generation is dropped.
        evidence_lines: how many recent lines per key are kept for evidence.
        distinct: count distinct ``value`` arguments (ports) rather than events.
    """

    def __init__(
        self,
        rule: Rule,
        *,
        max_keys: int = 1_000_000,
        evidence_lines: int = 5,
        distinct: bool = False,
    ) -> None:
        self.rule = rule
        self.max_keys = max(2, max_keys)
        self.evidence_lines = evidence_lines
        self.distinct = distinct
        self._current: dict[str | int, float | _Counter] = {}
        self._previous: dict[str | int, float | _Counter] = {}
        self._horizon = float("-inf")
        self._span = rule.span

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def _advance(self, ts: float) -> None:
        if ts <= self._horizon:
            return
        if ts > self._horizon + self._span:
            self._previous = {}
        else:
            self._previous = self._current
        self._current = {}
        self._horizon = ts + self._span

    def _make_room(self) -> None:
        if len(self._current) + len(self._previous) < self.max_keys:
            return
        if self._previous:
            self._previous = {}
        else:
            self._previous, self._current = self._current, {}

    def hit(self, key: str | int, ts: float, line: str, value: str | None = None) -> Firing | None:
        """Count one event of ``key`` at log time ``ts``; a Firing when the threshold is crossed."""
        rule = self.rule
        if not rule.enabled:
            return None
        if ts > self._horizon:
            self._advance(ts)
        current = self._current
        state = current.get(key)
        if state is None:
            if self._previous:
                state = self._previous.pop(key, None)
            if state is None:
                self._make_room()
                current = self._current
        if self.distinct or rule.threshold <= 1 or rule.bucket is Bucket.LEAKY:
            counter = state if isinstance(state, _Counter) else self._promote(state)
            current[key] = counter
            return self._count(counter, key, ts, line, value)
        if state is None:
            current[key] = ts
            return None
        if not isinstance(state, _Counter):
            if ts - state > rule.window:
                current[key] = ts
                return None
            counter = _Counter()
            counter.times.append(state)
            state = counter
        current[key] = state
        return self._count(state, key, ts, line, value)

    def _promote(self, state: float | _Counter | None) -> _Counter:
        counter = _Counter()
        if state is not None and not isinstance(state, _Counter):
            counter.times.append(state)
            counter.level = 1.0
        return counter

    def _count(
        self, counter: _Counter, key: str | int, ts: float, line: str, value: str | None
    ) -> Firing | None:
        rule = self.rule
        if counter.muted_until > ts:
            return None
        lines = counter.lines
        lines.append(line)
        if len(lines) > self.evidence_lines:
            del lines[0]
        cutoff = ts - rule.window
        if self.distinct:
            values = counter.values if counter.values is not None else {}
            counter.values = values
            values[value or ""] = ts
            if len(values) >= rule.threshold:
                for stale in [v for v, seen in values.items() if seen < cutoff]:
                    del values[stale]
            count = len(values)
            first = min(values.values())
        elif rule.bucket is Bucket.LEAKY:
            last = counter.times[-1] if counter.times else ts
            level = counter.level - max(0.0, ts - last) * rule.threshold / rule.window
            if level <= 0.0:
                level, first = 0.0, ts
            else:
                first = counter.times[0]
            counter.level = level + 1.0
            counter.times = [first, ts]
            count = int(counter.level + 1e-9)
        else:
            times = counter.times
            times.append(ts)
            if times[0] < cutoff:
                times[:] = [t for t in times if t >= cutoff]
            count = len(times)
            first = times[0] if times else ts
        if count < rule.threshold:
            return None
        firing = Firing(
            rule=rule,
            key=str(key),
            count=count,
            first=min(first, ts),
            last=ts,
            lines=tuple(lines),
            values=tuple(sorted(counter.values)) if counter.values else (),
        )
        counter.times = []
        counter.lines = []
        counter.values = None
        counter.level = 0.0
        counter.muted_until = ts + rule.silence if rule.silence > 0 else 0.0
        return firing


def bounded_put(table: dict[str, _T], key: str, value: _T, cap: int = 100_000) -> _T:
    """Store ``value`` under ``key``, dropping the oldest tenth of a full ``table`` first."""
    if len(table) >= cap:
        for stale in list(table)[: max(1, cap // 10)]:
            del table[stale]
    table[key] = value
    return value
