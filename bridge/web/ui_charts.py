"""The dashboard's charts as geometry for server-rendered SVG (templates/charts.html):
calls per day stacked by outcome, and horizontal bars. No script, no inline style:
colours come from classes in console.css, so a strict CSP holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bridge.calllog.dashboard import OUTCOME_LABELS, OUTCOMES

WIDTH = 640
HEIGHT = 220
LEFT = 40  # room for the scale
RIGHT = 24  # room for the last date
BOTTOM = 24  # room for the dates
BAR_HEIGHT = 22


@dataclass(frozen=True)
class Segment:
    x: float
    y: float
    width: float
    height: float
    outcome: str
    title: str


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class Label:
    x: float
    text: str


@dataclass(frozen=True)
class Bar:
    label: str
    count: int
    y: float
    width: float


def nice_top(value: int) -> int:
    """The scale's top: 1, 2 or 5 times a power of ten, at least `value` (and 1)."""
    top = 1
    while top < value:
        top = _next(top)
    return top


def _next(top: int) -> int:
    digits = str(top)
    head, zeros = int(digits[0]), len(digits) - 1
    factor = 2 if head == 1 else 5 if head == 2 else 10
    return int(factor * 10**zeros)


def days_chart(
    days: list[date], by_day: list[dict[str, int]]
) -> tuple[list[Segment], list[Tick], list[Label]]:
    """Stacked bars, one a day, oldest at the left; a scale and a few dates."""
    top = nice_top(max((sum(counts.values()) for counts in by_day), default=0))
    plot_height = HEIGHT - BOTTOM - 8
    slot = (WIDTH - LEFT - RIGHT) / max(len(days), 1)
    segments: list[Segment] = []
    for index, (day, counts) in enumerate(zip(days, by_day, strict=True)):
        base = float(HEIGHT - BOTTOM)
        for outcome in OUTCOMES:
            count = counts.get(outcome, 0)
            if not count:
                continue
            height = plot_height * count / top
            base -= height
            segments.append(
                Segment(
                    x=round(LEFT + index * slot + 1, 1),
                    y=round(base, 1),
                    width=round(max(slot - 2, 1), 1),
                    height=round(height, 1),
                    outcome=outcome,
                    title=f"{day.isoformat()}: {count} {OUTCOME_LABELS[outcome].lower()}",
                )
            )
    ticks = [
        Tick(y=round(HEIGHT - BOTTOM - plot_height * part / 2, 1), label=str(top * part // 2))
        for part in range(3)
    ]
    labels = [
        Label(x=round(LEFT + index * slot + slot / 2, 1), text=day.strftime("%b %d"))
        for index, day in enumerate(days)
        if index % 7 == (len(days) - 1) % 7
    ]
    return segments, ticks, labels


def bars(items: list[tuple[str, int]], width: int = WIDTH) -> tuple[list[Bar], int]:
    """Horizontal bars scaled to the largest; and the chart's height."""
    largest = max((count for _, count in items), default=0) or 1
    room = width * 0.55
    shown = [
        Bar(label=label, count=count, y=index * BAR_HEIGHT, width=round(room * count / largest, 1))
        for index, (label, count) in enumerate(items)
    ]
    return shown, max(len(items), 1) * BAR_HEIGHT
