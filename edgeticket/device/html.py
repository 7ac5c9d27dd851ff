"""Single self-contained HTML pages: inline CSS, inline SVG charts drawn here, HTML tables; no script, no
network, the standard library only (it runs in the base install, which has no matplotlib).

The pages (`device/bundle_page.py`: `edgeticket inspect --html`; `results_page.py`: `edgeticket report --html`)
are built from these blocks:

- `line_chart`   series of (x, y) or (x, y, err) points: axes, ticks, grid, a polyline and a marker per point
- `bar_chart`    horizontal bars, one group per label, one bar per series (grouped when several)
- `stacked_bar_chart`  horizontal bars made of segments, with reference lines (a budget)
- `heat_table`, `table`, `facts`, `badge`, `section`, `figure`, `page`

Every text goes through `esc` (html.escape); `Raw` marks HTML built here, passed through as it is. Charts tag
their elements for tests and stylesheets: `svg.chart[data-chart=NAME]`, `rect.bar` (one per value drawn),
`circle.pt` (one per point), `polyline.line` (one per series of 2+ points), `path.err` (error bars),
`rect.swatch` (legend), `line.ref` (reference lines). Each bar and point carries a `<title>`: the browser shows
its exact value on hover, without script. The page's Content-Security-Policy allows nothing to be fetched.
"""

from __future__ import annotations

import html as _html
import math
from typing import Callable, NamedTuple, Optional, Sequence

# Okabe-Ito (colour-blind safe), then a few more
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#8C6D31", "#444444")
DASHES = (None, "6 4", "2 3", "8 3 2 3")
GRID = "#e6e6e6"
AXIS = "#555555"
MUTED = "#9a9a9a"
FONT_PX = 12
CHAR_W = 6.8  # estimated width of one character at FONT_PX (labels are laid out without a font engine)


class Raw(str):
    """HTML built here (already escaped): `esc` passes it through."""


class Series(NamedTuple):
    """One data series. Line charts: points are (x, y) or (x, y, err) tuples (y None: skipped); bar charts:
    one value per group (None: no bar). color/dash default to the palette by position."""
    name: str
    points: Sequence
    color: Optional[str] = None
    dash: Optional[str] = None


def esc(value) -> str:
    if isinstance(value, Raw):
        return value
    return _html.escape("" if value is None else str(value), quote=True)


def join(parts) -> Raw:
    return Raw("".join(esc(p) for p in parts if p is not None))


# ---------------------------------------------------------------- numbers

def nice_ticks(lo: float, hi: float, n: int = 5) -> list:
    """Round tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi] with about n intervals."""
    lo, hi = float(min(lo, hi)), float(max(lo, hi))
    if hi == lo:
        d = abs(lo) * 0.1 or 1.0
        lo, hi = lo - d, hi + d
    raw = (hi - lo) / max(1, n)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = 10 * mag
    for m in (1, 2, 2.5, 5, 10):
        if (hi - lo) / (m * mag) <= n:
            step = m * mag
            break
    start = math.floor(lo / step + 1e-9) * step
    count = int(math.ceil((hi - start) / step - 1e-9))
    return [round(start + i * step, 12) for i in range(max(1, count) + 1)]


def _step_decimals(ticks: Sequence) -> int:
    if len(ticks) < 2:
        return 2
    step = abs(ticks[1] - ticks[0])
    for d in range(0, 7):
        if abs(round(step * 10 ** d) - step * 10 ** d) < 1e-6:
            return d
    return 6


def tick_formatter(ticks: Sequence) -> Callable[[float], str]:
    d = _step_decimals(ticks)
    return lambda v: f"{v:,.{d}f}"


def num(v, digits: int = 3) -> str:
    """A compact human number: 3 significant digits, thousands separated."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    v = float(v)
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    mag = math.floor(math.log10(abs(v)))
    d = max(0, digits - 1 - mag)
    s = f"{v:,.{d}f}"
    return s.rstrip("0").rstrip(".") if d else s


def pct(fraction, digits: int = 1) -> str:
    return "–" if fraction is None else f"{100 * float(fraction):.{digits}f}%"


BYTE_UNITS = (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10), ("B", 1))


def byte_unit(n: float) -> tuple:
    """(name, divisor) of the unit that shows n as a number >= 1 (B, KiB, MiB, GiB)."""
    for name, div in BYTE_UNITS:
        if abs(n) >= div:
            return name, div
    return "B", 1


def fmt_bytes(n) -> str:
    if n is None:
        return "–"
    name, div = byte_unit(n)
    return f"{int(n):,} B" if div == 1 else f"{n / div:,.2f} {name}"


def fmt_seconds(s) -> str:
    if s is None:
        return "–"
    s = float(s)
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} µs"


# ---------------------------------------------------------------- svg pieces

def _f(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v - round(v)) > 1e-9 else str(int(round(v)))


def _text(x, y, s, anchor="start", cls=None, size=None, weight=None, rotate=None, fill=None, title=None) -> str:
    a = [f'x="{_f(x)}"', f'y="{_f(y)}"']
    if anchor != "start":
        a.append(f'text-anchor="{anchor}"')
    if cls:
        a.append(f'class="{cls}"')
    if size:
        a.append(f'font-size="{size}"')
    if weight:
        a.append(f'font-weight="{weight}"')
    if fill:
        a.append(f'fill="{fill}"')
    if rotate is not None:
        a.append(f'transform="rotate({rotate} {_f(x)} {_f(y)})"')
    t = f"<title>{esc(title)}</title>" if title else ""
    return f"<text {' '.join(a)}>{t}{esc(s)}</text>"


def _line(x1, y1, x2, y2, stroke, width=1.0, dash=None, cls=None) -> str:
    c = f' class="{cls}"' if cls else ""
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line{c} x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" stroke="{stroke}" '
            f'stroke-width="{width}"{d}/>')


def _short(s: str, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else s[: max(1, n - 1)] + "…"


def _text_w(s: str) -> float:
    return len(str(s)) * CHAR_W


def _color(i: int, s: Series) -> str:
    return s.color or PALETTE[i % len(PALETTE)]


def _legend(series: Sequence[Series], x0: float, y0: float, max_w: float, lines: bool = False) -> tuple:
    """A legend laid out in rows under the title: (svg, height)."""
    out, x, y = [], x0, y0
    for i, s in enumerate(series):
        label = _short(s.name, 48)
        w = 22 + _text_w(label) + 18
        if x > x0 and x + w > x0 + max_w:
            x, y = x0, y + 18
        c = _color(i, s)
        if lines:
            out.append(_line(x, y + 6, x + 16, y + 6, c, 2, s.dash))
        sw, sh = (8, 8) if lines else (12, 10)
        out.append(f'<rect class="swatch" x="{_f(x + (4 if lines else 2))}" y="{_f(y + 2)}" width="{sw}" '
                   f'height="{sh}" fill="{c}"/>')
        out.append(_text(x + 22, y + 10, label, title=s.name if label != s.name else None))
        x += w
    return "".join(out), (y - y0) + 18


def _svg(name: str, width: float, height: float, title: str, body: list) -> Raw:
    return Raw(f'<svg class="chart" data-chart="{esc(name)}" role="img" aria-label="{esc(title)}" '
               f'viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
               f'font-size="{FONT_PX}">' + f"<title>{esc(title)}</title>"
               + "".join(body) + "</svg>")


def _no_data(name: str, title: str, width: float, why: str) -> Raw:
    return _svg(name, width, 70, title, [_text(8, 18, title, size=14, weight="600"),
                                         _text(8, 48, why, fill=MUTED)])


# ---------------------------------------------------------------- charts

def line_chart(name: str, series: Sequence[Series], *, title: str, x_label: str, y_label: str,
               x_ticks: Optional[Sequence] = None, y_min: Optional[float] = None, y_max: Optional[float] = None,
               x_fmt: Optional[Callable] = None, y_fmt: Optional[Callable] = None, hlines: Sequence = (),
               width: int = 980, height: int = 360) -> Raw:
    """Series of points on linear axes. Markers carry a <title> with the exact values; err draws an error bar.
    hlines: (y, label) reference lines."""
    pts = [(float(p[0]), float(p[1]), float(p[2]) if len(p) > 2 and p[2] is not None else 0.0)
           for s in series for p in s.points if p[1] is not None and p[0] is not None]
    if not pts:
        return _no_data(name, title, width, "no data")
    xs = [p[0] for p in pts]
    ylo = [p[1] - p[2] for p in pts] + [h[0] for h in hlines]
    yhi = [p[1] + p[2] for p in pts] + [h[0] for h in hlines]
    if y_min is not None:
        ylo.append(y_min)
    if y_max is not None:
        yhi.append(y_max)
    xt = list(x_ticks) if x_ticks and len(x_ticks) <= 16 else nice_ticks(min(xs), max(xs))
    yt = nice_ticks(min(ylo), max(yhi))
    if y_min is not None:
        yt = [t for t in yt if t >= y_min - 1e-9] or yt
    if y_max is not None:
        yt = [t for t in yt if t <= y_max + 1e-9] or yt
    x0, x1 = min(xt + [min(xs)]), max(xt + [max(xs)])
    if x1 == x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    y0, y1 = min(yt + [min(ylo)]), max(yt + [max(yhi)])
    if y1 == y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    xf, yf = x_fmt or tick_formatter(xt), y_fmt or tick_formatter(yt)
    ml = 14 + max(_text_w(yf(t)) for t in yt) + 22
    legend, lh = _legend(series, ml, 30, width - ml - 16, lines=True) if len(series) > 1 else ("", 0)
    mt, mb, mr = 34 + lh, 46, 24
    pw, ph = width - ml - mr, height - mt - mb

    def sx(x):
        return ml + (x - x0) / (x1 - x0) * pw

    def sy(y):
        return mt + ph - (y - y0) / (y1 - y0) * ph

    body = [_text(ml, 20, title, size=14, weight="600"), legend]
    for t in yt:
        body.append(_line(ml, sy(t), ml + pw, sy(t), GRID))
        body.append(_text(ml - 6, sy(t) + 4, yf(t), anchor="end"))
    for t in xt:
        if x0 - 1e-9 <= t <= x1 + 1e-9:
            body.append(_line(sx(t), mt, sx(t), mt + ph, GRID))
            body.append(_text(sx(t), mt + ph + 16, xf(t), anchor="middle"))
    body.append(_line(ml, mt + ph, ml + pw, mt + ph, AXIS))
    body.append(_line(ml, mt, ml, mt + ph, AXIS))
    body.append(_text(ml + pw / 2, height - 8, x_label, anchor="middle"))
    body.append(_text(14, mt + ph / 2, y_label, anchor="middle", rotate=-90))
    for y, label in hlines:
        body.append(_line(ml, sy(y), ml + pw, sy(y), AXIS, 1, "4 3", cls="ref"))
        body.append(_text(ml + pw - 4, sy(y) - 4, label, anchor="end", fill=AXIS))
    for i, s in enumerate(series):
        c = _color(i, s)
        sp = [p for p in s.points if p[1] is not None and p[0] is not None]
        if len(sp) >= 2:
            d = f' stroke-dasharray="{s.dash}"' if s.dash else ""
            coords = " ".join(f"{_f(sx(float(p[0])))},{_f(sy(float(p[1])))}" for p in sp)
            body.append(f'<polyline class="line" points="{coords}" fill="none" stroke="{c}" stroke-width="2"{d}/>')
        for p in sp:
            x, y = float(p[0]), float(p[1])
            e = float(p[2]) if len(p) > 2 and p[2] else 0.0
            if e > 0:
                body.append(f'<path class="err" d="M{_f(sx(x))} {_f(sy(y - e))}V{_f(sy(y + e))}'
                            f'M{_f(sx(x) - 4)} {_f(sy(y - e))}h8M{_f(sx(x) - 4)} {_f(sy(y + e))}h8" '
                            f'stroke="{c}" stroke-width="1.3" fill="none"/>')
            tip = f"{s.name}: {x_label} {xf(x) if x_fmt else num(x)}, {y_label} {yf(y) if y_fmt else num(y)}"
            if e > 0:
                tip += f" ± {num(e)}"
            body.append(f'<circle class="pt" cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="4" fill="{c}" stroke="#fff" '
                        f'stroke-width="1"><title>{esc(tip)}</title></circle>')
    return _svg(name, width, height, title, body)


def _hbars(name: str, groups: Sequence[str], series: Sequence[Series], stacked: bool, *, title: str,
           value_label: str, fmt: Optional[Callable], v_max: Optional[float], refs: Sequence,
           texts: Optional[Callable], totals: Optional[Callable], width: int, bar_h: int) -> Raw:
    vals = [[(s.points[g] if g < len(s.points) else None) for g in range(len(groups))] for s in series]
    if not groups or all(v is None for row in vals for v in row):
        return _no_data(name, title, width, "no data")
    if stacked:
        ends = [sum(max(0.0, float(row[g] or 0)) for row in vals) for g in range(len(groups))]
        lows = [0.0]
    else:
        ends = [float(v) for row in vals for v in row if v is not None]
        lows = [min(0.0, min(ends))]
    top = max(ends + [float(r[0]) for r in refs] + ([v_max] if v_max is not None else []))
    ticks = nice_ticks(min(lows), top)
    if v_max is not None:
        ticks = [t for t in ticks if t <= v_max + 1e-9] or ticks
    lo, hi = min(ticks + lows), max(ticks + [top])
    if hi == lo:
        hi = lo + 1
    tf = fmt or tick_formatter(ticks)
    labels = [_short(g, 34) for g in groups]
    ml = 12 + max(_text_w(l) for l in labels) + 8
    legend, lh = (_legend(series, 12, 30, width - 24) if len(series) > 1 else ("", 0))
    mt, mb, mr = 34 + lh, 44, 70
    per = bar_h if stacked else bar_h * len(series)
    gap = 10
    ph = len(groups) * (per + gap)
    height = mt + ph + mb
    pw = width - ml - mr

    def sx(v):
        return ml + (v - lo) / (hi - lo) * pw

    body = [_text(12, 20, title, size=14, weight="600"), legend]
    for t in ticks:
        body.append(_line(sx(t), mt, sx(t), mt + ph, GRID))
        body.append(_text(sx(t), mt + ph + 16, tf(t), anchor="middle"))
    body.append(_line(sx(lo), mt, sx(lo), mt + ph, AXIS))
    body.append(_line(ml, mt + ph, ml + pw, mt + ph, AXIS))
    body.append(_text(ml + pw / 2, height - 8, value_label, anchor="middle"))
    for g, group in enumerate(groups):
        gy = mt + g * (per + gap) + gap / 2
        body.append(_text(ml - 8, gy + per / 2 + 4, labels[g], anchor="end",
                          title=group if labels[g] != group else None))
        acc = 0.0
        for i, s in enumerate(series):
            v = vals[i][g]
            if v is None:
                continue
            v = float(v)
            c = _color(i, s)
            shown = texts(i, g, v) if texts else tf(v) if fmt else num(v)
            tip = f"{group} · {s.name}: {shown}" if len(series) > 1 else f"{group}: {shown}"
            if stacked:
                if v <= 0:
                    continue
                x, w, y = sx(acc), sx(acc + v) - sx(acc), gy
                acc += v
            else:
                x, w, y = sx(min(0.0, v)), abs(sx(v) - sx(0.0)), gy + i * bar_h
            body.append(f'<rect class="bar" x="{_f(x)}" y="{_f(y + 1)}" width="{_f(max(w, 0.6))}" '
                        f'height="{_f(bar_h - 2)}" fill="{c}"><title>{esc(tip)}</title></rect>')
            if not stacked:
                body.append(_end_label(x + max(w, 0.6), y + bar_h / 2 + 4, shown, width, x))
        if stacked:
            total = totals(g, acc) if totals else (tf(acc) if fmt else num(acc))
            body.append(_end_label(sx(acc), gy + per / 2 + 4, total, width, sx(lo)))
    for r in refs:
        v, label = float(r[0]), r[1]
        color = r[2] if len(r) > 2 else "#b00020"
        body.append(_line(sx(v), mt - 4, sx(v), mt + ph, color, 2, "5 3", cls="ref"))
        body.append(_text(min(sx(v), ml + pw), mt - 8, label, anchor="end" if sx(v) > ml + pw / 2 else "start",
                          fill=color))
    return _svg(name, width, height, title, body)


def _end_label(x_end: float, y: float, s: str, width: float, x_start: float) -> str:
    """A bar's label after its end, or inside it (white, right-aligned) where it would leave the chart."""
    if x_end + 4 + _text_w(s) <= width - 4 or x_end - x_start < _text_w(s) + 8:
        return _text(x_end + 4, y, s, fill="#333")
    return _text(x_end - 4, y, s, anchor="end", fill="#fff", weight="600")


def bar_chart(name: str, groups: Sequence[str], series: Sequence[Series], *, title: str, value_label: str,
              fmt: Optional[Callable] = None, v_max: Optional[float] = None, refs: Sequence = (),
              texts: Optional[Callable] = None, width: int = 980, bar_h: int = 18) -> Raw:
    """Horizontal bars: one row per group, one bar per series in it (a value of None draws none).
    texts(series_index, group_index, value) -> the label at the bar's end; refs: (value, label[, color])."""
    return _hbars(name, groups, series, False, title=title, value_label=value_label, fmt=fmt, v_max=v_max,
                  refs=refs, texts=texts, totals=None, width=width, bar_h=bar_h)


def stacked_bar_chart(name: str, rows: Sequence[str], segments: Sequence[Series], *, title: str, value_label: str,
                      fmt: Optional[Callable] = None, v_max: Optional[float] = None, refs: Sequence = (),
                      texts: Optional[Callable] = None, totals: Optional[Callable] = None, width: int = 980,
                      bar_h: int = 24) -> Raw:
    """Horizontal stacked bars: one row per label, segments (Series with one value per row) side by side.
    refs: (value, label[, color]) vertical lines, e.g. a memory budget; totals(row, total) -> end label."""
    return _hbars(name, rows, segments, True, title=title, value_label=value_label, fmt=fmt, v_max=v_max,
                  refs=refs, texts=texts, totals=totals, width=width, bar_h=bar_h)


# ---------------------------------------------------------------- html blocks

def _mix(color: str, t: float) -> str:
    """color blended with white: t=0 white, t=1 the color."""
    t = max(0.0, min(1.0, t))
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return "#%02x%02x%02x" % tuple(round(255 + (c - 255) * t) for c in (r, g, b))


def _cell(v) -> str:
    if v is None:
        return '<td class="num">–</td>'
    if isinstance(v, Raw):
        return f"<td>{v}</td>"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<td class="num">{esc(num(v))}</td>'
    return f"<td>{esc(v)}</td>"


def table(headers: Sequence[str], rows: Sequence[Sequence], *, caption: Optional[str] = None,
          name: Optional[str] = None, numeric: Sequence[int] = ()) -> Raw:
    """A table; numbers are right-aligned (columns in numeric too, for preformatted number strings)."""
    n = f' data-table="{esc(name)}"' if name else ""
    num_th = ' class="num"'
    head = "".join(f"<th{num_th if i in numeric else ''}>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            if i in numeric and isinstance(v, str) and not isinstance(v, Raw):
                cells.append(f'<td class="num">{esc(v)}</td>')
            else:
                cells.append(_cell(v))
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return Raw(f'<div class="scroll"><table{n}>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}'
               f"</tbody></table></div>")


def heat_table(name: str, row_labels: Sequence[str], col_labels: Sequence[str], values: Sequence[Sequence],
               *, fmt: Callable = num, corner: str = "", caption: Optional[str] = None,
               color: str = PALETTE[0]) -> Raw:
    """A table whose cells are shaded by value (white = 0, `color` = the largest value); a str cell is shown
    as it is, unshaded (e.g. a count beside the rates)."""
    vmax = max([float(v) for row in values for v in row if v is not None and not isinstance(v, str)] + [0.0]) or 1.0
    head = f"<th>{esc(corner)}</th>" + "".join(f'<th class="num">{esc(c)}</th>' for c in col_labels)
    body = []
    for label, row in zip(row_labels, values):
        cells = []
        for v in row:
            if v is None or isinstance(v, str):
                cells.append(f'<td class="num">{esc("–" if v is None else v)}</td>')
                continue
            t = float(v) / vmax
            fg = "#fff" if t > 0.55 else "#222"
            cells.append(f'<td class="num heat" style="background:{_mix(color, t)};color:{fg}">{esc(fmt(v))}</td>')
        body.append(f"<tr><th>{esc(label)}</th>{''.join(cells)}</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return Raw(f'<div class="scroll"><table class="heat" data-table="{esc(name)}">{cap}<thead><tr>{head}</tr>'
               f'</thead><tbody>{"".join(body)}</tbody></table></div>')


def facts(pairs: Sequence) -> Raw:
    """A two-column list of (label, value) pairs; None values are left out."""
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in pairs if v is not None)
    return Raw(f'<dl class="facts">{items}</dl>')


def badge(ok: Optional[bool], text: str) -> Raw:
    cls = "ok" if ok else "bad" if ok is False else "warn"
    return Raw(f'<span class="badge {cls}">{esc(text)}</span>')


def code(text: str) -> Raw:
    return Raw(f"<code>{esc(text)}</code>")


def para(*parts, cls: Optional[str] = None) -> Raw:
    c = f' class="{cls}"' if cls else ""
    return Raw(f"<p{c}>{join(parts)}</p>")


def figure(svg: str, caption: Optional[str] = None) -> Raw:
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return Raw(f"<figure>{esc(svg)}{cap}</figure>")


def section(title: str, *parts, anchor: Optional[str] = None) -> Raw:
    a = f' id="{esc(anchor)}"' if anchor else ""
    return Raw(f"<section{a}><h2>{esc(title)}</h2>{join(parts)}</section>")


CSS = """
:root{color-scheme:light}
*{box-sizing:border-box}
body{margin:0;background:#f6f6f4;color:#222;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
"DejaVu Sans","Liberation Sans",sans-serif}
main{max-width:1120px;margin:0 auto;padding:20px 24px 40px}
header h1{font-size:22px;margin:4px 0 2px}
header .sub{color:#555;margin:0 0 8px}
nav{font-size:13px;margin:6px 0 0}
nav a{color:#0b5cad;margin-right:14px;text-decoration:none}
section{background:#fff;border:1px solid #e1e1dc;border-radius:6px;padding:14px 20px 12px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}
h3{font-size:14.5px;margin:14px 0 6px}
figure{margin:6px 0 14px}
figcaption{color:#555;font-size:12.5px;margin-top:2px}
svg.chart{display:block;max-width:100%;height:auto;font-family:inherit}
svg.chart text{fill:#222}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:13px;margin:6px 0 10px}
caption{text-align:left;color:#555;font-size:12.5px;padding:2px 0 4px}
th,td{padding:3px 10px;border-bottom:1px solid #ececec;text-align:left;vertical-align:top}
thead th{background:#f2f2ef;border-bottom:2px solid #d6d6d0;white-space:nowrap}
tbody th,tbody td:first-child{font-weight:normal;color:#333;white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.heat{min-width:64px}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 18px;margin:4px 0 6px}
dl.facts dt{color:#666}
dl.facts dd{margin:0}
.badge{display:inline-block;padding:0 8px;border-radius:9px;font-size:12px;font-weight:600}
.ok{background:#dcf2e2;color:#0f5c29}
.bad{background:#fbe1dd;color:#8a1c12}
.warn{background:#fdf1d6;color:#6b4a00}
.note{color:#666;font-size:13px}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12.5px;background:#f1f1ee;padding:0 3px;
border-radius:3px}
footer{color:#777;font-size:12px;margin-top:18px}
@media print{body{background:#fff}section{border:none;padding:0;break-inside:avoid}}
"""

# nothing may be fetched: styles and images are inline, and there is no script
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def page(title: str, parts: Sequence, *, subtitle=None, nav: Sequence = (), footer=None) -> str:
    """The whole document. nav: (anchor, label) links to sections on the page."""
    links = "".join(f'<a href="#{esc(a)}">{esc(l)}</a>' for a, l in nav)
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="generator" content="edgeticket">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>"
            f"<header><h1>{esc(title)}</h1>"
            + (f'<p class="sub">{esc(subtitle)}</p>' if subtitle else "")
            + (f"<nav>{links}</nav>" if links else "") + "</header>\n"
            + "\n".join(esc(p) for p in parts if p)
            + (f"\n<footer>{esc(footer)}</footer>" if footer else "")
            + "</main></body></html>\n")
