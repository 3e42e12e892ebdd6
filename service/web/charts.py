"""Server-rendered inline SVG charts: pure functions from plain data to SVG strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from xml.sax.saxutils import escape, quoteattr

# Outcomes in the order a day is coloured by (the worst thing that happened wins).
OUTCOMES = ("missed", "declined", "confirmed", "excused", "skipped", "none")
COLOURS = {
    "confirmed": "#1a7f4b",
    "declined": "#d97706",
    "missed": "#b42318",
    "excused": "#4f6bd8",
    "skipped": "#98a2b3",
    "none": "#e8ecf1",
}
PENDING = ("scheduled", "prompted")
CELL = 14
GAP = 3
DAY_LABELS = ("Mon", "", "Wed", "", "Fri", "", "Sun")


def day_outcome(counts: Mapping[str, int]) -> str:
    """Return the outcome a day is coloured by: missed, declined, confirmed, excused, skipped or none."""
    for outcome in OUTCOMES[:-1]:
        if counts.get(outcome, 0) > 0:
            return outcome
    return "none"


def describe_counts(counts: Mapping[str, int]) -> str:
    """Return "2 confirmed, 1 missed" (or "no check-ins") for a day's counts."""
    order = (*OUTCOMES[:-1], *PENDING)
    parts = [f"{counts[k]} {'pending' if k in PENDING else k}" for k in order if counts.get(k)]
    return ", ".join(parts) if parts else "no check-ins"


def heatmap_svg(days: Sequence[tuple[date, Mapping[str, int]]], *, today: date) -> str:
    """Render one cell per day, a column per week (Monday first), coloured by outcome."""
    weeks = max(1, (len(days) + 6) // 7)
    left, top = 32, 18
    width = left + weeks * (CELL + GAP)
    height = top + 7 * (CELL + GAP)
    totals: dict[str, int] = {}
    cells = []
    months = []
    for index, (day, counts) in enumerate(days):
        col, row = divmod(index, 7)
        x, y = left + col * (CELL + GAP), top + row * (CELL + GAP)
        if row == 0 and (index == 0 or day.day <= 7):
            months.append(f'<text x="{x}" y="12" class="axis">{day.strftime("%b")}</text>')
        future = day > today
        outcome = "future" if future else day_outcome(counts)
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
        label = f"{day.isoformat()} ({day.strftime('%a')}): " + (
            "upcoming" if future else describe_counts(counts)
        )
        fill = "#ffffff" if future else COLOURS[outcome]
        cells.append(
            f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" rx="2" fill="{fill}" '
            f'class="cell cell-{outcome}" data-date="{day.isoformat()}">'
            f"<title>{escape(label)}</title></rect>"
        )
    labels = [
        f'<text x="0" y="{top + r * (CELL + GAP) + CELL - 3}" class="axis">{name}</text>'
        for r, name in enumerate(DAY_LABELS)
        if name
    ]
    summary = f"Check-ins over {weeks} weeks: {describe_counts(totals)}."
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="heatmap-title heatmap-desc">'
        f'<title id="heatmap-title">Check-in history, last {weeks} weeks</title>'
        f'<desc id="heatmap-desc">{escape(summary)}</desc>'
        + "".join(months)
        + "".join(labels)
        + "".join(cells)
        + "</svg>"
    )


def meetings_chart_svg(
    weeks: Sequence[tuple[date, int]], *, target: int | None, width: int = 640, height: int = 220
) -> str:
    """Render bars of meetings attended per week with a dashed line at the weekly target."""
    left, right, top, bottom = 34, 12, 14, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([count for _, count in weeks] + [target or 0, 1])
    scale = peak + max(1, peak // 4)  # headroom above the tallest bar and the target line
    slot = plot_w / max(1, len(weeks))
    bar_w = slot * 0.62
    base = top + plot_h
    parts = [
        f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" class="baseline" '
        f'stroke="#667085" stroke-width="1"/>',
        f'<text x="{left - 6}" y="{base + 4}" text-anchor="end" class="axis">0</text>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="axis">{scale}</text>',
    ]
    for index, (monday, count) in enumerate(weeks):
        h = round(count / scale * plot_h, 2)
        x = round(left + index * slot + (slot - bar_w) / 2, 2)
        met = target is not None and count >= target
        fill = "#1a7f4b" if met or target is None else "#5b7bb5"
        goal = f" (target {target})" if target is not None else ""
        label = f"Week of {monday.isoformat()}: {count} meeting{'s' if count != 1 else ''}{goal}"
        parts.append(
            f'<rect x="{x}" y="{round(base - h, 2)}" width="{round(bar_w, 2)}" height="{h}" '
            f'fill="{fill}" class="bar" data-count="{count}"><title>{escape(label)}</title></rect>'
        )
        if index % 2 == (len(weeks) - 1) % 2:
            parts.append(
                f'<text x="{round(x + bar_w / 2, 2)}" y="{base + 16}" text-anchor="middle" '
                f'class="axis">{monday.strftime("%d %b").lstrip("0")}</text>'
            )
    if target is not None:
        y = round(base - target / scale * plot_h, 2)
        parts.append(
            f'<line x1="{left}" y1="{y}" x2="{width - right}" y2="{y}" class="target" '
            f'stroke="#b42318" stroke-width="2" stroke-dasharray="6 4"/>'
        )
        parts.append(
            f'<text x="{width - right}" y="{y - 5}" text-anchor="end" class="axis target-label">'
            f"target {target}/week</text>"
        )
    total = sum(count for _, count in weeks)
    met_weeks = sum(1 for _, count in weeks if target is not None and count >= target)
    summary = f"{total} meetings confirmed over {len(weeks)} weeks" + (
        f"; the target of {target} a week was met in {met_weeks} of them." if target else "."
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="meetings-chart" role="img" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="meetings-title meetings-desc">'
        f'<title id="meetings-title">Meetings attended per week</title>'
        f'<desc id="meetings-desc">{escape(summary)}</desc>' + "".join(parts) + "</svg>"
    )


def ratio_bar_svg(ratio: float | None, *, width: int = 64, height: int = 8) -> str:
    """Render a tiny inline bar for a ratio between 0 and 1 (decorative: the text says it)."""
    filled = 0.0 if ratio is None else round(max(0.0, min(1.0, ratio)) * width, 2)
    colour = (
        "#1a7f4b"
        if ratio is not None and ratio >= 0.8
        else ("#d97706" if ratio is not None and ratio >= 0.5 else "#b42318")
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ratio-bar" aria-hidden="true" '
        f'focusable="false" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<rect width="{width}" height="{height}" rx="3" fill="#e8ecf1"/>'
        f'<rect width="{filled}" height="{height}" rx="3" fill={quoteattr(colour)} class="fill"/>'
        "</svg>"
    )


def legend_items() -> list[tuple[str, str]]:
    """Return (outcome, colour) pairs for the heatmap legend."""
    return [
        (o, COLOURS[o]) for o in ("confirmed", "declined", "missed", "skipped", "excused", "none")
    ]
