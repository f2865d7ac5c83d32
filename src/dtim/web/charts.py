"""Server-side SVG charts: no JavaScript, no CDN, readable in light and dark themes.

Each function returns a complete ``<svg>`` element as :class:`markupsafe.Markup`,
with a ``<title>`` and an ``aria-label`` for screen readers, sized by its viewBox
so CSS can make it as wide as the screen. Colours come from CSS classes
(``series-0`` ... ``series-5``), so the theme decides them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from dtim.store import HourlyCount

WIDTH = 720
HEIGHT = 220
_PAD_LEFT = 44
_PAD_RIGHT = 12
_PAD_TOP = 12
_PAD_BOTTOM = 28
HALF = 480
"""viewBox width of charts shown at half width, so their labels stay legible."""
SERIES = 6
"""Distinct colours; further sources are summed into "other"."""


def _el(tag: str, text: object = None, **attrs: object) -> str:
    """One SVG element; attribute values and text are escaped (``class_`` gives ``class``)."""
    rendered = " ".join(
        f'{name.rstrip("_").replace("_", "-")}="{escape(str(value))}"'
        for name, value in attrs.items()
    )
    if text is None:
        return f"<{tag} {rendered}/>"
    return f"<{tag} {rendered}>{text}</{tag}>"


def _f(number: float) -> str:
    return f"{number:.1f}"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return float(step * magnitude)
    return float(10 * magnitude)


def _svg(label: str, body: list[str], height: int = HEIGHT, width: int = WIDTH) -> Markup:
    text = escape(label)
    return Markup(  # noqa: S704  # nosec B704  # labels and texts are escaped where they are built
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{text}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{text}</title>{"".join(body)}</svg>'
    )


def _axis(top: float, height: int, width: int = WIDTH) -> list[str]:
    base = height - _PAD_BOTTOM
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = base - (base - _PAD_TOP) * fraction
        parts.append(
            _el("line", class_="grid", x1=_PAD_LEFT, x2=width - _PAD_RIGHT, y1=_f(y), y2=_f(y))
        )
        value = top * fraction
        shown = f"{value:.0f}" if top >= 10 or value == 0 else f"{value:.1f}"
        parts.append(
            _el("text", shown, class_="tick", x=_PAD_LEFT - 6, y=_f(y + 4), text_anchor="end")
        )
    return parts


def hourly_by_source(hourly: Sequence[HourlyCount], *, now: datetime, hours: int = 168) -> Markup:
    """Stacked bars: new indicators per hour for the last ``hours``, one colour per source."""
    totals: dict[str, int] = {}
    for item in hourly:
        totals[item.source] = totals.get(item.source, 0) + item.count
    named = [name for name, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))][
        : SERIES - 1
    ]
    series = [*named, "other"] if len(totals) > len(named) else named
    end = now.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    slots: list[dict[str, int]] = [{} for _ in range(hours)]
    for item in hourly:
        index = int((item.hour - start).total_seconds() // 3600)
        if 0 <= index < hours:
            name = item.source if item.source in named else "other"
            slots[index][name] = slots[index].get(name, 0) + item.count
    top = _nice_max(max((sum(s.values()) for s in slots), default=0))
    base = HEIGHT - _PAD_BOTTOM
    span = WIDTH - _PAD_LEFT - _PAD_RIGHT
    bar = span / hours
    body = _axis(top, HEIGHT)
    for index, slot in enumerate(slots):
        y = float(base)
        for number, name in enumerate(series):
            count = slot.get(name, 0)
            if not count:
                continue
            h = (base - _PAD_TOP) * count / top
            y -= h
            x = _PAD_LEFT + index * bar
            hour = (start + timedelta(hours=index)).strftime("%Y-%m-%d %H:00")
            tip = _el("title", escape(f"{hour} UTC: {count} from {name}"))
            width = f"{max(bar - 0.6, 0.6):.2f}"
            body.append(
                _el(
                    "rect",
                    tip,
                    class_=f"series-{number}",
                    x=f"{x:.2f}",
                    y=f"{y:.2f}",
                    width=width,
                    height=f"{h:.2f}",
                )
            )
    for day in range(0, hours, 24):
        x = _PAD_LEFT + day * bar
        label = (start + timedelta(hours=day)).strftime("%a %d")
        body.append(_el("text", escape(label), class_="tick", x=_f(x), y=HEIGHT - 8))
    chart = _svg("New indicators per hour by source, last 7 days", body)
    return chart + legend(series)


def legend(names: Sequence[str]) -> Markup:
    """The colour key of a chart, as an HTML list."""
    items = "".join(
        f'<li><span class="swatch series-{n}" aria-hidden="true"></span>{escape(name)}</li>'
        for n, name in enumerate(names)
    )
    return Markup(f'<ul class="legend">{items}</ul>')  # noqa: S704  # nosec B704  # names escaped above


def histogram(counts: Sequence[int], *, label: str, bucket_labels: Sequence[str]) -> Markup:
    """Vertical bars, one per bucket, with its count above."""
    top = _nice_max(max(counts, default=0))
    base = HEIGHT - _PAD_BOTTOM
    span = HALF - _PAD_LEFT - _PAD_RIGHT
    bar = span / max(len(counts), 1)
    body = _axis(top, HEIGHT, HALF)
    for index, count in enumerate(counts):
        h = (base - _PAD_TOP) * count / top
        x = _PAD_LEFT + index * bar
        name = escape(bucket_labels[index])
        tip = _el("title", f"{name}: {count}")
        body.append(
            _el(
                "rect",
                tip,
                class_="series-0",
                x=_f(x + 3),
                y=_f(base - h),
                width=_f(bar - 6),
                height=_f(h),
            )
        )
        body.append(
            _el("text", name, class_="tick", x=_f(x + bar / 2), y=HEIGHT - 8, text_anchor="middle")
        )
    return _svg(label, body, width=HALF)


def horizontal_bars(values: Sequence[tuple[str, int]], *, label: str) -> Markup:
    """One labelled horizontal bar per (name, value)."""
    row = 30
    height = row * max(len(values), 1) + 10
    top = _nice_max(max((v for _, v in values), default=0))
    left = 130
    span = HALF - left - 60
    body = []
    for index, (name, value) in enumerate(values):
        y = 6 + index * row
        w = span * value / top
        label_text = escape(name)
        body.append(_el("text", label_text, class_="tick", x=left - 8, y=y + 17, text_anchor="end"))
        tip = _el("title", f"{label_text}: {value}")
        series = f"series-{index % SERIES}"
        body.append(
            _el("rect", tip, class_=series, x=left, y=y + 4, width=_f(max(w, 1)), height=18)
        )
        body.append(f'<text class="value" x="{left + w + 6:.1f}" y="{y + 18}">{value}</text>')
    return _svg(label, body, height, HALF)


def decay_curve(
    points: Sequence[tuple[float, float]], *, elapsed_days: float, label: str
) -> Markup:
    """Confidence over days since the last sighting, with a marker at today."""
    base = HEIGHT - _PAD_BOTTOM
    span = WIDTH - _PAD_LEFT - _PAD_RIGHT
    last_day = points[-1][0] if points else 1.0
    last_day = last_day or 1.0

    def xy(day: float, score: float) -> tuple[float, float]:
        return _PAD_LEFT + span * min(day, last_day) / last_day, base - (
            base - _PAD_TOP
        ) * score / 100

    body = _axis(100, HEIGHT)
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(d, s) for d, s in points))
    body.append(f'<polyline class="curve" fill="none" points="{path}"/>')
    if points:
        nearest = min(points, key=lambda p: abs(p[0] - elapsed_days))
        x, y = xy(min(elapsed_days, last_day), nearest[1])
        body.append(f'<line class="now" x1="{x:.1f}" x2="{x:.1f}" y1="{_PAD_TOP}" y2="{base}"/>')
        body.append(
            f'<circle class="now" cx="{x:.1f}" cy="{y:.1f}" r="5"><title>now</title></circle>'
        )
    for fraction in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _PAD_LEFT + span * fraction
        day_label = f"{last_day * fraction:.0f} d"
        body.append(
            _el("text", day_label, class_="tick", x=_f(x), y=HEIGHT - 8, text_anchor="middle")
        )
    return _svg(label, body)
