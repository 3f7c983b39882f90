"""The report as a page (GET .../report with `Accept: text/html`): server-rendered HTML and inline SVG, no script,
no stylesheet or font from anywhere else. It renders whatever report the agent has (bandit or ab-test, judged
canary, interleaving, shadow comparison) from the same dictionary `/report` returns as JSON; each number shown in
a table carries `data-key`, the path of that number in the JSON, so a test can read both and compare them."""

from __future__ import annotations

import datetime as _dt
import html
import math
from typing import Any

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
WIDTH, ROW = 640, 28

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:760px;color:#222}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.2rem .6rem;text-align:right;border-bottom:1px solid #eee}
th:first-child,td:first-child{text-align:left}.verdict{font-weight:bold}.muted{color:#777;font-size:.85rem}
svg text{font-size:11px;fill:#444}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if value != 0 and abs(value) < 10**-digits:
            return f"{value:.{digits}e}"
        return f"{value:.{digits}f}"
    return _e(value)


def _cell(value: Any, key: str, digits: int = 4) -> str:
    raw = "" if value is None else repr(value) if isinstance(value, float) else str(value)
    return f'<td data-key="{_e(key)}" data-value="{_e(raw)}">{_number(value, digits)}</td>'


def _time(seconds: float | None) -> str:
    if not seconds:
        return "never"
    return _dt.datetime.fromtimestamp(seconds, tz=_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# charts ----------------------------------------------------------------------------------------------------------


def _forest(rows: list[tuple[str, float | None, float, float]], *, title: str, zero: bool = False) -> str:
    """One row per label: the interval as a bar, the estimate as a dot; `zero` marks 0 (a difference)."""
    if not rows:
        return ""
    lows = [low for _, _, low, _ in rows] + ([0.0] if zero else [])
    highs = [high for _, _, _, high in rows] + ([0.0] if zero else [])
    left, right = min(lows), max(highs)
    if right - left < 1e-9:
        left, right = left - 0.01, right + 0.01
    pad = (right - left) * 0.05
    left, right = left - pad, right + pad
    label_w, plot_w = 120, WIDTH - 140
    height = ROW * len(rows) + 30

    def x(value: float) -> float:
        return label_w + (value - left) / (right - left) * plot_w

    parts = [
        f'<svg role="img" aria-label="{_e(title)}" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}">'
    ]
    if zero:
        parts.append(
            f'<line x1="{x(0):.1f}" y1="0" x2="{x(0):.1f}" y2="{height - 20}" stroke="#999" stroke-dasharray="4"/>'
        )
    for index, (label, estimate, low, high) in enumerate(rows):
        y = ROW * index + ROW / 2
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<text x="4" y="{y + 4:.1f}">{_e(label)}</text>')
        parts.append(
            f'<line class="interval" x1="{x(low):.1f}" y1="{y:.1f}" x2="{x(high):.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="4" stroke-linecap="round"/>'
        )
        if estimate is not None:
            parts.append(
                f'<circle cx="{x(estimate):.1f}" cy="{y:.1f}" r="5" fill="#fff" stroke="{colour}" stroke-width="2"/>'
            )
    axis = height - 18
    parts.append(f'<line x1="{label_w}" y1="{axis}" x2="{label_w + plot_w}" y2="{axis}" stroke="#bbb"/>')
    for tick in range(5):
        value = left + (right - left) * tick / 4
        parts.append(f'<text x="{x(value):.1f}" y="{axis + 14}" text-anchor="middle">{value:.3g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _lines(
    series: dict[str, list[tuple[float, float]]], *, title: str, top: float | None = None, unit: str = ""
) -> str:
    """A line per series over time (x: seconds since the first point)."""
    points = [p for values in series.values() for p in values]
    if not points:
        return ""
    start, end = min(t for t, _ in points), max(t for t, _ in points)
    high = top if top is not None else max(v for _, v in points) or 1.0
    span = (end - start) or 1.0
    left, bottom, plot_w, plot_h = 50, 190, WIDTH - 170, 170

    def xy(t: float, v: float) -> str:
        return f"{left + (t - start) / span * plot_w:.1f},{bottom - v / high * plot_h:.1f}"

    parts = [f'<svg role="img" aria-label="{_e(title)}" width="{WIDTH}" height="220" viewBox="0 0 {WIDTH} 220">']
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#bbb"/>')
    parts.append(f'<line x1="{left}" y1="{bottom - plot_h}" x2="{left}" y2="{bottom}" stroke="#bbb"/>')
    for tick in range(5):
        value = high * tick / 4
        y = bottom - plot_h * tick / 4
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{value:.3g}{_e(unit)}</text>')
    parts.append(f'<text x="{left}" y="{bottom + 16}">0 s</text>')
    parts.append(f'<text x="{left + plot_w}" y="{bottom + 16}" text-anchor="end">{span:.0f} s</text>')
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(xy(t, v) for t, v in values)
        parts.append(
            f'<polyline class="series" data-series="{_e(name)}" points="{path}" fill="none" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(f'<rect x="{left + plot_w + 12}" y="{20 + 18 * index}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 30}" y="{30 + 18 * index}">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _bar(parts: list[tuple[str, float]], *, title: str) -> str:
    total = sum(v for _, v in parts)
    if total <= 0:
        return ""
    out = [f'<svg role="img" aria-label="{_e(title)}" width="{WIDTH}" height="48" viewBox="0 0 {WIDTH} 48">']
    x = 0.0
    for index, (label, value) in enumerate(parts):
        w = value / total * WIDTH
        colour = COLOURS[index % len(COLOURS)]
        out.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="24" fill="{colour}"/>')
        if w > 60:
            out.append(f'<text x="{x + 4:.1f}" y="40">{_e(label)} {value:g}</text>')
        x += w
    out.append("</svg>")
    return "".join(out)


# sections --------------------------------------------------------------------------------------------------------


def _versions(report: dict) -> str:
    versions = report.get("versions") or []
    if not versions:
        return ""
    judged = report.get("strategy") == "canary"
    what = "error rate" if judged else "reward rate"
    confidence = report.get("confidence", 0.95)
    columns = ["version", "requests", "errors" if judged else "rewards", what, "interval low", "interval high"]
    if not judged:
        columns.append("weight %")
    rows = []
    for index, v in enumerate(versions):
        key = f"versions.{index}"
        role = f" ({_e(v['role'])})" if v.get("role") else ""
        cells = [
            f'<td data-key="{key}.version">{_e(v["version"])}{role}</td>',
            _cell(v.get("requests"), f"{key}.requests", 0),
            _cell(v.get("errors") if judged else v.get("rewards"), f"{key}.{'errors' if judged else 'rewards'}", 2),
            _cell(v.get("rate"), f"{key}.rate"),
            _cell(v["interval"][0], f"{key}.interval.0"),
            _cell(v["interval"][1], f"{key}.interval.1"),
        ]
        if not judged:
            cells.append(_cell(v.get("weight"), f"{key}.weight", 0))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    chart = _forest(
        [(v["version"], v.get("rate"), v["interval"][0], v["interval"][1]) for v in versions],
        title=f"each version's {what} with its always-valid interval",
    )
    return (
        f"<h2>Each version's {what}, always-valid {confidence:.0%} interval</h2>{chart}"
        f"<table><tr>{''.join(f'<th>{c}</th>' for c in columns)}</tr>{''.join(rows)}</table>"
    )


def _comparisons(report: dict) -> str:
    found = report.get("comparisons") or []
    if not found:
        return ""
    rows = []
    for index, c in enumerate(found):
        key = f"comparisons.{index}"
        rows.append(
            f"<tr><td>{_e(c['version'])} − {_e(c['baseline'])}</td>"
            + _cell(c.get("difference"), f"{key}.difference")
            + _cell(c["interval"][0], f"{key}.interval.0")
            + _cell(c["interval"][1], f"{key}.interval.1")
            + _cell(c["pValue"], f"{key}.pValue")
            + f'<td data-key="{key}.significant">{"yes" if c["significant"] else "not yet"}</td></tr>'
        )
    chart = _forest(
        [(f"{c['version']} − {c['baseline']}", c.get("difference"), c["interval"][0], c["interval"][1]) for c in found],
        title="differences from the first version",
        zero=True,
    )
    return (
        "<h2>Differences from the first version</h2>"
        '<p class="muted">Always-valid: a team may stop the first time a difference is significant, however often '
        f"it looked before.</p>{chart}<table><tr><th>difference</th><th>estimate</th><th>low</th><th>high</th>"
        f"<th>p-value</th><th>significant</th></tr>{''.join(rows)}</table>"
    )


def _weights(report: dict) -> str:
    history = report.get("history") or []
    if len(history) < 1 or report.get("strategy") == "ab-test":
        return ""
    arms = [v["version"] for v in report.get("versions") or []]
    series = {arm: [(t, float(w.get(arm, 0))) for t, w in history] for arm in arms}
    return "<h2>Weights over time</h2>" + _lines(series, title="bandit weights over time", top=100, unit="%")


def _interleaving(report: dict) -> str:
    if report.get("strategy") != "interleaved":
        return ""
    preference = report["preference"]
    rows = "".join(
        f"<tr><td>{label}</td>{_cell(report.get(key), key, 0)}</tr>"
        for label, key in (
            ("impressions", "impressions"),
            ("clicked", "clicked"),
            (f"{report['treatment']} preferred", "wins"),
            (f"{report['control']} preferred", "losses"),
            ("ties", "ties"),
        )
    )
    bar = _bar(
        [(report["treatment"], report["wins"]), ("tie", report["ties"]), (report["control"], report["losses"])],
        title="interleaving preference",
    )
    winner = report.get("winner")
    return (
        f"<h2>Interleaving preference ({_e(report['method'])})</h2>{bar}<table>{rows}"
        f"<tr><td>{_e(preference['version'])}'s share of decided clicks</td>"
        f"{_cell(preference.get('share'), 'preference.share')}</tr>"
        f"<tr><td>p-value</td>{_cell(preference.get('pValue'), 'preference.pValue')}</tr></table>"
        f'<p class="verdict" data-key="winner">{"winner: " + _e(winner) if winner else "no winner yet"}</p>'
    )


def _judge(report: dict) -> str:
    if report.get("strategy") != "canary":
        return ""
    analysis = report.get("analysis")
    judge = report["judge"]
    head = f"<h2>Sequential judge (alpha {judge['alpha']:g}, at least {judge['minRequests']} canary requests)</h2>"
    if analysis is None:
        return head + "<p>No analysis yet: Flagger has not called the judge.</p>"
    evidence = analysis.get("evidence") or {}
    observations = analysis.get("observations") or []
    series: dict[str, list[tuple[float, float]]] = {"primary": [], "canary": []}
    for at, primary, canary, *_ in observations:
        for name, (requests, errors) in (("primary", primary), ("canary", canary)):
            if requests:
                series[name].append((at, errors / requests))
    chart = _lines({k: v for k, v in series.items() if v}, title="cumulative error rates since the analysis began")
    latency = analysis.get("latency")
    if latency:
        slow = latency.get("counts") or {}
        rows = "".join(
            f"<tr><td>{role}</td>{_cell(slow.get(role, [0, 0])[0], f'analysis.latency.counts.{role}.0', 0)}"
            f"{_cell(slow.get(role, [0, 0])[1], f'analysis.latency.counts.{role}.1', 0)}</tr>"
            for role in ("primary", "canary")
        )
        chart += (
            f"<h2>Requests slower than {latency['thresholdMs']:g} ms</h2>"
            f'<p>Latency judge: <span class="verdict" data-key="analysis.latency.verdict">'
            f"{_e(latency.get('verdict', 'continue'))}</span></p>"
            f"<table><tr><th>version</th><th>requests</th><th>slow</th></tr>{rows}</table>"
        )
    verdicts = "".join(
        f"<tr><td>{_e(_time(v['at']))}</td><td>{_e(v['hook'])}</td><td>{_e(v.get('phase', ''))}</td>"
        f'<td class="verdict">{_e(v["verdict"])}</td><td>{_e(v["status"])}</td></tr>'
        for v in reversed(analysis.get("verdicts") or [])
    )
    return (
        head + f"<p>Revision <code>{_e(analysis['checksum'])}</code>, since {_e(_time(analysis['startedAt']))}: "
        f'verdict <span class="verdict" data-key="analysis.verdict">{_e(analysis["verdict"])}</span></p>'
        + "<table>"
        + "".join(
            f"<tr><td>{label}</td>{_cell(evidence.get(name), 'analysis.evidence.' + name)}</tr>"
            for label, name in (
                ("regression p-value", "regression_p_value"),
                ("promotion p-value", "promotion_p_value"),
            )
        )
        + "</table>"
        + chart
        + "<h2>Webhook calls</h2><table><tr><th>at</th><th>hook</th><th>phase</th><th>verdict</th><th>status</th></tr>"
        + verdicts
        + "</table>"
    )


def _shadows(report: dict) -> str:
    if report.get("strategy") != "shadow":
        return ""
    out = []
    for s_index, shadow in enumerate(report.get("shadows") or []):
        rows = []
        for f_index, field in enumerate(shadow.get("fields") or []):
            key = f"shadows.{s_index}.fields.{f_index}"
            rows.append(
                f"<tr><td>{_e(field['field'])}</td>"
                + _cell(field.get("compared"), f"{key}.compared", 0)
                + _cell(field.get("rate"), f"{key}.rate")
                + _cell(field.get("noiseRate"), f"{key}.noiseRate")
                + f"<td>{'flagged' if field.get('flagged') else ''}</td></tr>"
            )
        out.append(
            f"<h2>Shadow {_e(shadow.get('version', ''))} against {_e(report.get('primary', ''))}</h2>"
            "<table><tr><th>field</th><th>compared</th><th>differs</th><th>noise</th><th></th></tr>"
            + "".join(rows)
            + "</table>"
        )
    return "".join(out)


def render(report: dict) -> str:
    strategy = report.get("strategy") or "bandit"
    title = f"{report.get('endpoint', '')}: {strategy} report"
    replica = " " + _e(report["replica"]) if report.get("replica") else ""
    body = (
        f"<h1>{_e(title)}</h1>"
        f'<p class="muted">Rendered by the experiment agent{replica}'
        f"; the same numbers as JSON: this URL with <code>Accept: application/json</code>.</p>"
        + _judge(report)
        + _weights(report)
        + _versions(report)
        + _comparisons(report)
        + _interleaving(report)
        + _shadows(report)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def wants_html(accept: str | None, query: str = "") -> bool:
    """Content negotiation: HTML when asked for (`?format=html`), or when the Accept header ranks text/html above
    application/json (a browser's does; curl's `*/*` gets JSON)."""
    if "format=html" in query.split("&"):
        return True
    if "format=json" in query.split("&") or not accept:
        return False
    quality: dict[str, float] = {}
    for part in accept.split(","):
        kind, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        quality[kind.lower()] = max(q, quality.get(kind.lower(), 0.0))
    html_q = quality.get("text/html", 0.0)
    json_q = max(quality.get("application/json", 0.0), quality.get("*/*", 0.0) if "text/html" not in quality else 0.0)
    return html_q > 0 and html_q >= json_q and not math.isnan(html_q)
