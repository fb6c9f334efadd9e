"""The report's charts as inline SVG (server-side geometry: ticks, axes, markers, bars, the
transition matrix), each with a title and description for screen readers."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from sync.report.format import _n, _t, _utc, _when
from sync.report.queries import NONE_STATE, ListInfo, ReportData, Transitions

# ---------------------------------------------------------------------------------- SVG


def _ticks(hi: float, lo: float = 0.0, n: int = 5) -> list[int]:
    """Round integer ticks covering [lo, hi] (counts)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    step = next((m * mag for m in (1, 2, 5, 10) if (hi - lo) / (m * mag) <= n), 10 * mag)
    step = max(1, int(step))
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    return list(range(int(start), int(end) + step, step))


def _marker(shape: str, x: float, y: float, colour: str, r: float = 4.5) -> str:
    style = f'fill="{colour}" stroke="var(--bg)" stroke-width="1.2"'
    if shape == "circle":
        return f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="{r}" {style}/>'
    if shape == "square":
        return (
            f'<rect class="mark" x="{x - r:.1f}" y="{y - r:.1f}" '
            f'width="{2 * r}" height="{2 * r}" {style}/>'
        )
    points = {
        "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
        "triangle": [(0, -1.3), (1.2, 1), (-1.2, 1)],
        "triangle-down": [(0, 1.3), (1.2, -1), (-1.2, -1)],
        "cross": [
            (-0.4, -1.2),
            (0.4, -1.2),
            (0.4, -0.4),
            (1.2, -0.4),
            (1.2, 0.4),
            (0.4, 0.4),
            (0.4, 1.2),
            (-0.4, 1.2),
            (-0.4, 0.4),
            (-1.2, 0.4),
            (-1.2, -0.4),
            (-0.4, -0.4),
        ],
    }[shape]
    d = " ".join(f"{x + dx * r:.1f},{y + dy * r:.1f}" for dx, dy in points)
    return f'<polygon class="mark" points="{d}" {style}/>'


class _Svg:
    """A chart's SVG: accessible name and description, plot area, axes."""

    def __init__(self, key: str, title: str, desc: str, width: int, height: int) -> None:
        self.key, self.width, self.height = key, width, height
        self.parts = [
            f'<svg class="chart" id="chart-{key}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-labelledby="chart-{key}-title chart-{key}-desc" '
            f'preserveAspectRatio="xMidYMid meet">',
            f'<title id="chart-{key}-title">{_t(title)}</title>',
            f'<desc id="chart-{key}-desc">{_t(desc)}</desc>',
        ]

    def add(self, part: str) -> None:
        self.parts.append(part)

    def bar(self, x: float, y: float, width: float, height: float, paint: str, tip: str) -> None:
        """A bar mark with its tooltip; `paint` is its fill/stroke attributes, `tip` escaped."""
        self.add(
            f'<rect class="mark" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}" {paint}><title>{tip}</title></rect>'
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        cls: str = "tick",
        anchor: str = "middle",
        extra: str = "",
    ) -> None:
        self.add(
            f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>'
            f"{text}</text>"
        )

    def y_axis(
        self,
        left: float,
        right: float,
        scale: Callable[[float], float],
        ticks: list[int],
        title: str,
        fmt: Callable[[int], str] = _n,
    ) -> None:
        for v in ticks:
            y = scale(v)
            cls = "zero" if v == 0 else "grid"
            self.add(f'<line class="{cls}" x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}"/>')
            self.text(left - 8, y + 4, fmt(v), anchor="end")
        mid = (scale(ticks[0]) + scale(ticks[-1])) / 2
        self.text(18, mid, _t(title), "axis-title", extra=f'transform="rotate(-90 18 {mid:.1f})"')

    def x_title(self, x: float, title: str) -> None:
        self.text(x, self.height - 8, _t(title), "axis-title")

    def render(self) -> str:
        return "\n".join([*self.parts, "</svg>"])


@dataclass
class _RunAxis:
    """Runs as equal bands along x (both run charts share it, so they line up)."""

    runs: pl.DataFrame
    left: float
    right: float

    @property
    def band(self) -> float:
        return (self.right - self.left) / max(1, self.runs.height)

    def x(self, i: int) -> float:
        return self.left + self.band * (i + 0.5)

    def labels(self, most: int = 10) -> list[tuple[int, str, str]]:
        """(run index, time, day) of at most `most` evenly spaced runs, the last included."""
        times = [_utc(t) for t in self.runs["started_at"].to_list()]
        fmt = "%H:%M"
        if len({t.strftime("%Y-%m-%d %H:%M") for t in times if t}) < len(times):
            fmt = "%H:%M:%S"  # runs minutes apart
        every = max(1, math.ceil(len(times) / most))
        keep = [i for i in range(len(times)) if i % every == 0]
        last = len(times) - 1
        if keep and keep[-1] != last:
            if last - keep[-1] < every / 2:
                keep.pop()
            keep.append(last)
        return [(i, t.strftime(fmt), t.strftime("%b %d")) for i in keep if (t := times[i])]

    def draw(self, svg: _Svg, baseline: float, most: int = 10, labels: bool = True) -> None:
        svg.add(
            f'<line class="axis" x1="{self.left:.1f}" x2="{self.right:.1f}" '
            f'y1="{baseline:.1f}" y2="{baseline:.1f}"/>'
        )
        for i, hm, day in self.labels(most):
            x = self.x(i)
            svg.add(
                f'<line class="axis" x1="{x:.1f}" x2="{x:.1f}" y1="{baseline:.1f}" '
                f'y2="{baseline + 5:.1f}"/>'
            )
            if labels:
                svg.text(x, baseline + 18, _t(hm))
                svg.text(x, baseline + 31, _t(day), "tick small")


def _sizes_chart(data: ReportData) -> str:
    """Small multiples: one panel per list, each with its own y scale (a 20,000-member list
    would flatten a 50-member one on a shared axis), all on the same run axis."""
    lists = data.lists
    cols = 2 if len(lists) > 1 else 1
    rows = math.ceil(len(lists) / cols)
    width, outer_left, gap_x, gap_y = 960, 34, 40, 14
    panel_w = (width - outer_left - 8 - gap_x * (cols - 1)) / cols
    title_h, plot_h, labels_h = 24, 104, 36
    # run labels only under the lowest panel of each column: only those rows make room
    labelled = [k + cols >= len(lists) for k in range(len(lists))]
    row_h = [
        title_h + plot_h + 8 + (labels_h if any(labelled[r * cols : (r + 1) * cols]) else 0)
        for r in range(rows)
    ]
    row_y = [sum(row_h[:r]) + gap_y * r for r in range(rows)]
    height = row_y[-1] + row_h[-1] + 30
    frame = data.per_list.join(
        data.runs.with_row_index("i").select("run_id", "i"), on="run_id"
    ).filter(pl.col("size_after").is_not_null())
    svg = _Svg(
        "sizes",
        "Audience size over time, per list",
        "Line charts, one panel per Bing list: confirmed members after each run, each panel "
        "with its own scale. The table below the chart holds the same numbers.",
        width,
        height,
    )
    mid = (row_y[-1] + row_h[-1]) / 2
    svg.text(14, mid, "Confirmed members", "axis-title", extra=f'transform="rotate(-90 14 {mid})"')
    svg.x_title(outer_left + (width - outer_left) / 2, "Run (start time, UTC)")
    most = max(2, int(panel_w // 70))
    for k, li in enumerate(lists):
        row, col = divmod(k, cols)
        x0 = outer_left + col * (panel_w + gap_x)
        y0 = row_y[row]
        left, right = x0 + 48, x0 + panel_w - 52
        top, bottom = y0 + title_h + 6, y0 + title_h + plot_h
        name = _t(li.audience.list_name)
        svg.add(
            f'<rect x="{x0:.1f}" y="{y0 + 4:.1f}" width="11" height="11" rx="2" '
            f'fill="{li.colour}"/>'
        )
        svg.text(x0 + 17, y0 + 14, name, "panel-title", "start")
        pts = frame.filter(pl.col("audience") == li.audience.name).sort("i")
        values = pts["size_after"].to_list()
        ticks = _ticks(max([1, *values]) * 1.1, n=3)

        def y(v: float, top: float = top, bottom: float = bottom, hi: int = ticks[-1]) -> float:
            return bottom - (bottom - top) * v / hi

        for v in ticks:
            cls = "zero" if v == 0 else "grid"
            svg.add(
                f'<line class="{cls}" x1="{left:.1f}" x2="{right:.1f}" '
                f'y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            )
            svg.text(left - 6, y(v) + 4, _n(v), anchor="end")
        axis = _RunAxis(data.runs, left, right)
        axis.draw(svg, bottom, most=most, labels=labelled[k])
        coords = [(axis.x(i), y(v)) for i, v in zip(pts["i"], values, strict=True)]
        if not coords:
            svg.text((left + right) / 2, (top + bottom) / 2, "no run yet", "note")
            continue
        d = " ".join(
            f"{'M' if j == 0 else 'L'}{x:.1f},{yy:.1f}" for j, (x, yy) in enumerate(coords)
        )
        svg.add(f'<g class="series"><title>{name}</title>')
        svg.add(
            f'<path d="{d}" fill="none" stroke="{li.colour}" stroke-width="2.5" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
        dense = len(coords) > 24  # then only the latest run gets a marker
        for j, ((x, yy), v) in enumerate(zip(coords, values, strict=True)):
            if dense and j < len(coords) - 1:
                continue
            svg.add(f"<g><title>{name}: {_n(v)} members</title>")
            svg.add(_marker(li.marker, x, yy, li.colour))
            svg.add("</g>")
        svg.add("</g>")
        last_x, last_y = coords[-1]
        svg.text(last_x + 8, last_y + 4, _n(values[-1]), "value", "start")
    return svg.render()


def _changes_chart(data: ReportData) -> str:
    width, height = 960, 340
    left, right, top, bottom = 76, width - 24, 24, height - 76
    axis = _RunAxis(data.runs, left, right)
    frame = data.per_list.join(data.runs.with_row_index("i").select("run_id", "i"), on="run_id")
    sums = frame.group_by("i").agg(
        pl.col("confirmed_adds").sum().alias("a"), pl.col("confirmed_removes").sum().alias("r")
    )
    hi = max([0, *sums["a"].to_list()])
    lo = max([0, *sums["r"].to_list()])
    if hi == 0 and lo == 0:
        hi = 1
    ticks = _ticks(hi * 1.05 if hi else 0, -lo * 1.05 if lo else 0, n=6)
    y_lo, y_hi = ticks[0], ticks[-1]

    def y(v: float) -> float:
        return bottom - (bottom - top) * (v - y_lo) / (y_hi - y_lo)

    svg = _Svg(
        "changes",
        "Members added and removed per run",
        "Stacked bars: rows Microsoft confirmed per run and list; added above the zero line, "
        "removed below it. The table below the chart holds the same numbers.",
        width,
        height,
    )
    svg.y_axis(left, right, y, ticks, "Rows (added ↑ / removed ↓)", fmt=lambda v: _n(abs(v)))
    axis.draw(svg, bottom)
    svg.x_title((left + right) / 2, "Run (start time, UTC)")
    bar = min(axis.band * 0.66, 56)
    svg.add(f"<defs>{''.join(_hatch(k, li.colour) for k, li in enumerate(data.lists))}</defs>")
    cells = {(r["i"], r["audience"]): r for r in frame.iter_rows(named=True)}
    for i in range(data.runs.height):
        up, down = 0, 0
        for k, li in enumerate(data.lists):
            row = cells.get((i, li.audience.name))
            if row is None:
                continue
            adds, removes = row["confirmed_adds"], row["confirmed_removes"]
            name = _t(li.audience.list_name)
            x = axis.x(i) - bar / 2
            if adds:
                y0, y1 = y(up), y(up + adds)
                svg.bar(x, y1, bar, y0 - y1, f'fill="{li.colour}"', f"{name}: {_n(adds)} added")
                up += adds
            if removes:
                y0, y1 = y(-down), y(-down - removes)
                hatched = f'fill="url(#hatch-{k})" stroke="{li.colour}" stroke-width="1.2"'
                svg.bar(x, y0, bar, y1 - y0, hatched, f"{name}: {_n(removes)} removed")
                down += removes
    svg.text(left + 6, top + 12, "▲ added (solid)", "note", anchor="start")
    if lo:
        svg.text(left + 6, bottom - 8, "▼ removed (hatched)", "note", anchor="start")
    return svg.render()


def _hatch(k: int, colour: str) -> str:
    """A diagonal hatch of a list's colour: its removals, told apart from its adds."""
    return (
        f'<pattern id="hatch-{k}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="var(--bg)"/>'
        f'<rect width="3" height="6" fill="{colour}"/></pattern>'
    )


def _errors_chart(data: ReportData, lists: list[ListInfo]) -> str:
    codes = data.errors.group_by("error_code").agg(pl.col("rows").sum()).sort("error_code")
    band = 46
    width = 960
    left, right, top = 300, width - 70, 30
    height = top + band * codes.height + 62
    bottom = top + band * codes.height
    hi = max([1, *codes["rows"].to_list()])
    ticks = _ticks(hi * 1.05)

    def x(v: float) -> float:
        return left + (right - left) * v / ticks[-1]

    svg = _Svg(
        "errors",
        "Rejected rows by Microsoft error code",
        "Horizontal stacked bars: rows Microsoft rejected in the runs of this report, per "
        "error code, split by list. The table below the chart holds the same numbers.",
        width,
        height,
    )
    for v in ticks:
        svg.add(
            f'<line class="{"zero" if v == 0 else "grid"}" x1="{x(v):.1f}" x2="{x(v):.1f}" '
            f'y1="{top}" y2="{bottom}"/>'
        )
        svg.text(x(v), bottom + 18, _n(v))
    svg.text((left + right) / 2, height - 10, "Rejected rows", "axis-title")
    svg.text(left - 10, top - 12, "Microsoft error code", "axis-title", "end")
    colour = {li.audience.name: li.colour for li in lists}
    order = {li.audience.name: k for k, li in enumerate(lists)}
    label = {li.audience.name: li.audience.list_name for li in lists}
    for k, (code, total) in enumerate(codes.iter_rows()):
        yc = top + band * k + band / 2
        rows = data.errors.filter(pl.col("error_code").eq_missing(code)).sort(
            pl.col("audience").replace_strict(order, default=len(order))
        )
        message = next((m for m in rows["message"].to_list() if m), "")
        short = message if len(message) <= 44 else message[:43] + "…"
        svg.text(left - 10, yc - 2, _t(code if code is not None else "no code"), "code", "end")
        svg.text(left - 10, yc + 13, _t(short), "tick small", "end")
        acc = 0
        for aud, n in zip(rows["audience"], rows["rows"], strict=True):
            x0, x1 = x(acc), x(acc + n)
            tip = f"{_t(label.get(aud, aud))}: {_n(n)} row(s) rejected with {_t(code)}"
            svg.bar(x0, yc - 14, x1 - x0, 28, f'fill="{colour.get(aud, "#888")}"', tip)
            acc += n
        svg.text(x(acc) + 6, yc + 4, _n(total), "value", "start")
    return svg.render()


def _heat(value: int, top: int) -> tuple[str, str]:
    """Cell fill and text colour: light to deep blue on a square-root scale."""
    if value <= 0:
        return "var(--cell-empty)", "var(--muted)"
    t = math.sqrt(value / max(1, top))
    lo, hi = (0xE3, 0xEE, 0xFA), (0x08, 0x30, 0x6B)
    rgb = [round(a + (b - a) * t) for a, b in zip(lo, hi, strict=True)]
    # the text colour of better contrast (WCAG relative luminance; dark ink is #10243e)
    lin = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    white = 1.05 / (luminance + 0.05)
    dark = (luminance + 0.05) / 0.067
    return "#" + "".join(f"{c:02x}" for c in rgb), ("#ffffff" if white > dark else "#10243e")


def _matrix_chart(tr: Transitions) -> str:
    states = tr.states
    n = len(states)
    cw, ch = 96, 40
    left, top = 236, 150
    width = max(960, left + cw * n + 40)
    height = top + ch * n + 96
    top_count = max([1, *(v for (f, t), v in tr.counts.items() if (f, t) != (NONE_STATE,) * 2)])
    svg = _Svg(
        "transitions",
        "State transitions between the last two builds",
        f"Matrix: people by state at the build of {_when(tr.before)} UTC (rows) and at the "
        f"build of {_when(tr.after)} UTC (columns); 'none' means in no state. "
        "The table below the chart holds the same numbers.",
        width,
        height,
    )
    svg.add(
        f'<defs><linearGradient id="heat-scale" x1="0" x2="1" y1="0" y2="0">'
        f'<stop offset="0" stop-color="{_heat(1, 10**9)[0]}"/>'
        f'<stop offset="1" stop-color="{_heat(1, 1)[0]}"/></linearGradient></defs>'
    )
    for j, s in enumerate(states):
        x = left + cw * j + cw / 2
        svg.text(
            x,
            top - 10,
            _t(s),
            "tick state",
            "start",
            extra=f'transform="rotate(-35 {x:.1f} {top - 10})"',
        )
    for i, f in enumerate(states):
        yc = top + ch * i + ch / 2
        svg.text(left - 10, yc + 4, _t(f), "tick state", "end")
        for j, t in enumerate(states):
            x0, y0 = left + cw * j, top + ch * i
            if (f, t) == (NONE_STATE, NONE_STATE):
                svg.add(
                    f'<rect x="{x0 + 1}" y="{y0 + 1}" width="{cw - 2}" height="{ch - 2}" '
                    'fill="none" class="cell-na"/>'
                )
                svg.text(x0 + cw / 2, y0 + ch / 2 + 4, "n/a", "tick small")
                continue
            v = tr.counts.get((f, t), 0)
            fill, ink = _heat(v, top_count)
            what = "stayed in" if f == t else "moved from"
            tip = f"{_n(v)} people {what} {_t(f)}" + ("" if f == t else f" to {_t(t)}")
            diag = ' stroke="var(--ink)" stroke-width="1.5"' if f == t else ""
            svg.add(
                f'<g><title>{tip}</title><rect class="mark" x="{x0 + 1}" y="{y0 + 1}" '
                f'width="{cw - 2}" height="{ch - 2}" rx="3" fill="{fill}"{diag}/>'
            )
            weight = "cell" if v else "cell none"
            svg.add(
                f'<text class="{weight}" x="{x0 + cw / 2}" y="{y0 + ch / 2 + 5}" '
                f'text-anchor="middle" style="fill:{ink}">{_n(v)}</text></g>'
            )
    mid_y = top + ch * n / 2
    svg.text(
        20,
        mid_y,
        f"From: state at {_when(tr.before, '%Y-%m-%d %H:%M')}",
        "axis-title",
        extra=f'transform="rotate(-90 20 {mid_y:.1f})"',
    )
    svg.text(
        left + cw * n / 2, 18, f"To: state at {_when(tr.after, '%Y-%m-%d %H:%M')}", "axis-title"
    )
    ly = top + ch * n + 34
    svg.text(left, ly + 4, "People:", "tick", "end", extra='dx="-8"')
    svg.add(
        f'<rect x="{left}" y="{ly - 8}" width="220" height="14" fill="url(#heat-scale)" '
        'class="legend-bar"/>'
    )
    svg.text(left, ly + 24, "1", "tick small", "start")
    svg.text(left + 220, ly + 24, _n(top_count), "tick small", "end")
    svg.add(
        f'<rect x="{left + 250}" y="{ly - 8}" width="14" height="14" rx="3" '
        'fill="var(--cell-empty)" stroke="var(--ink)" stroke-width="1.5"/>'
    )
    svg.text(left + 272, ly + 4, "outlined: stayed in the same state", "tick", "start")
    return svg.render()
