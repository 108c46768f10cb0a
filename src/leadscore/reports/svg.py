"""Small inline SVG charts for the HTML reports: no scripts, no fonts or files fetched, print-safe."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

POSITIVE = "#1a7f4b"
NEGATIVE = "#b42318"
NEUTRAL = "#2f5d8a"
GRID = "#d0d5dd"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def hbars(
    items: Sequence[tuple[str, float]],
    *,
    unit: str = "",
    width: int = 640,
    label_width: int = 260,
    title: str = "",
) -> str:
    """Horizontal bars, one per (label, value); negative values go left of the axis in red."""
    if not items:
        return ""
    row, pad = 26, 6
    height = row * len(items) + 2 * pad
    span = max(abs(v) for _, v in items) or 1.0
    has_negative = any(v < 0 for _, v in items)
    plot = width - label_width - 70
    zero = label_width + (plot / 2 if has_negative else 0)
    scale = (plot / 2 if has_negative else plot) / span
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" aria-label="{escape(title or "bar chart")}">',
        f'<line x1="{_num(zero)}" y1="0" x2="{_num(zero)}" y2="{height}" stroke="{GRID}"/>',
    ]
    for i, (label, value) in enumerate(items):
        y = pad + i * row
        length = abs(value) * scale
        x = zero - length if value < 0 else zero
        colour = NEGATIVE if value < 0 else (POSITIVE if has_negative else NEUTRAL)
        shown = escape(label if len(label) <= 38 else label[:36] + "…")
        text_x = x - 4 if value < 0 else x + length + 4
        anchor = "end" if value < 0 else "start"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end" font-size="12">{shown}</text>'
            f'<rect x="{_num(x)}" y="{y + 4}" width="{_num(max(length, 1))}" height="{row - 8}" '
            f'fill="{colour}" rx="2"><title>{escape(label)}: {value:+.2f}{escape(unit)}</title></rect>'
        )
        if not has_negative or value >= 0:
            parts.append(
                f'<text x="{_num(text_x)}" y="{y + 17}" text-anchor="{anchor}" font-size="11" '
                f'fill="#344054">{value:.2f}{escape(unit)}</text>'
            )
        else:
            parts.append(
                f'<text x="{_num(zero + 4)}" y="{y + 17}" font-size="11" fill="#344054">'
                f"{value:.2f}{escape(unit)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    series: Sequence[tuple[str, Sequence[float], Sequence[float], str]],
    *,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    x_max: float = 1.0,
    y_max: float = 1.0,
    width: int = 420,
    height: int = 320,
    title: str = "",
) -> str:
    """Lines (name, xs, ys, colour) on [0, x_max] x [0, y_max], with an optional y = x reference."""
    left, right, top, bottom = 52, 16, 14, 44
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + pw * min(max(x / x_max, 0.0), 1.0)

    def py(y: float) -> float:
        return top + ph * (1 - min(max(y / y_max, 0.0), 1.0))

    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" style="max-width:{width}px" aria-label="{escape(title or y_label)}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="{GRID}"/>',
    ]
    for k in range(1, 5):
        gx, gy = left + pw * k / 5, top + ph * k / 5
        parts.append(f'<line x1="{_num(gx)}" y1="{top}" x2="{_num(gx)}" y2="{top + ph}" stroke="#eef0f3"/>')
        parts.append(f'<line x1="{left}" y1="{_num(gy)}" x2="{left + pw}" y2="{_num(gy)}" stroke="#eef0f3"/>')
    for k in range(6):
        xv, yv = x_max * k / 5, y_max * k / 5
        parts.append(
            f'<text x="{_num(px(xv))}" y="{top + ph + 16}" text-anchor="middle" font-size="10">{xv:.2g}</text>'
            f'<text x="{left - 6}" y="{_num(py(yv) + 3)}" text-anchor="end" font-size="10">{yv:.2g}</text>'
        )
    if diagonal:
        parts.append(
            f'<line x1="{_num(px(0))}" y1="{_num(py(0))}" x2="{_num(px(min(x_max, y_max)))}" '
            f'y2="{_num(py(min(x_max, y_max)))}" stroke="#98a2b3" stroke-dasharray="4 4"/>'
        )
    for i, (name, xs, ys, colour) in enumerate(series):
        points = " ".join(f"{_num(px(x))},{_num(py(y))}" for x, y in zip(xs, ys, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in zip(xs, ys, strict=True):
            parts.append(f'<circle cx="{_num(px(x))}" cy="{_num(py(y))}" r="2.5" fill="{colour}"/>')
        parts.append(
            f'<rect x="{left + 10}" y="{top + 8 + 16 * i}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + 26}" y="{top + 17 + 16 * i}" font-size="11">{escape(name)}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle" font-size="11">{escape(x_label)}</text>'
        f'<text x="12" y="{top + ph / 2}" text-anchor="middle" font-size="11" '
        f'transform="rotate(-90 12 {top + ph / 2})">{escape(y_label)}</text></svg>'
    )
    return "".join(parts)


def score_gauge(p: float, threshold: float, *, width: int = 320) -> str:
    """P(SQL) on a 0-100% bar with the agreed cutoff marked."""
    h = 34
    x = 10 + (width - 20) * min(max(p, 0.0), 1.0)
    cut = 10 + (width - 20) * min(max(threshold, 0.0), 1.0)
    colour = POSITIVE if p >= threshold else NEUTRAL
    return (
        f'<svg role="img" viewBox="0 0 {width} {h}" width="100%" '
        f'style="max-width:{width}px" aria-label="P(SQL) {p:.0%} against the cutoff {threshold:.0%}">'
        f'<rect x="10" y="8" width="{width - 20}" height="10" rx="5" fill="#eaecf0"/>'
        f'<rect x="10" y="8" width="{_num(x - 10)}" height="10" rx="5" fill="{colour}"/>'
        f'<line x1="{_num(cut)}" y1="3" x2="{_num(cut)}" y2="23" stroke="#101828" stroke-width="2"/>'
        f'<text x="{_num(cut)}" y="32" text-anchor="middle" font-size="9">cutoff {threshold:.0%}</text></svg>'
    )


def score_history(
    points: Sequence[tuple[str, float]], threshold: float, *, width: int = 420, height: int = 120
) -> str:
    """A lead's P(SQL) at each logged answer (label, p), oldest first, with the cutoff dashed."""
    left, right, top, bottom = 36, 12, 10, 22
    pw, ph = width - left - right, height - top - bottom
    n = len(points)

    def px(i: int) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def py(p: float) -> float:
        return top + ph * (1 - min(max(p, 0.0), 1.0))

    cut = py(threshold)
    parts = [
        f'<svg role="img" viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
        f'aria-label="P(SQL) over its last {n} scores against the cutoff {threshold:.0%}">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="{GRID}"/>',
        f'<line x1="{left}" y1="{_num(cut)}" x2="{left + pw}" y2="{_num(cut)}" stroke="#101828" '
        f'stroke-dasharray="4 3"/><text x="{left - 4}" y="{_num(cut + 3)}" text-anchor="end" '
        f'font-size="9">{threshold:.0%}</text>',
    ]
    if n:
        line = " ".join(f"{_num(px(i))},{_num(py(p))}" for i, (_, p) in enumerate(points))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{POSITIVE}" stroke-width="2"/>')
        for i, (label, p) in enumerate(points):
            colour = POSITIVE if p >= threshold else NEUTRAL
            parts.append(
                f'<circle cx="{_num(px(i))}" cy="{_num(py(p))}" r="3" fill="{colour}">'
                f"<title>{escape(label)}: {p:.0%}</title></circle>"
            )
        parts.append(
            f'<text x="{left}" y="{height - 6}" font-size="9">{escape(points[0][0])}</text>'
            f'<text x="{left + pw}" y="{height - 6}" text-anchor="end" font-size="9">{escape(points[-1][0])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
