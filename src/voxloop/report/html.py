"""One self-contained HTML page of a turn log's KPIs: inline SVG charts drawn here, inline
CSS, no script, no CDN, no network — it opens from a file, a mail or an artefact store.

Charts: turns and defect rate per domain per day (lines), defect rate per domain (bars),
latency p50/p95/p99 per model version (grouped bars); tables: confusion hot spots, intent
pairs the model hesitates between, top failing utterances and friction examples. Each
chart is an ``<svg class="chart" data-points="N">`` (N: the data points drawn).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from voxloop.errors import ConfigError

if TYPE_CHECKING:
    from voxloop.experiments.analyze import ExperimentResult

__all__ = ["render_report", "write_report"]

_COLOURS = ["#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2",
            "#97bbf5", "#9c6b4e", "#9498a0"]  # fmt: skip
_W, _H, _PAD = 640, 240, 44


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else (f"{value:,.0f}" if value >= 10 else f"{value:.2g}")


def line_chart(
    title: str, series: Mapping[str, Sequence[tuple[str, float]]], *, percent: bool = False
) -> str:
    """Lines over a shared x axis of labels (days); one colour per series."""
    xs = sorted({x for points in series.values() for x, _ in points})
    top = max([v for points in series.values() for _, v in points] + [1e-9])
    if percent:
        top = min(1.0, top * 1.1)
    n = sum(len(p) for p in series.values())
    out = [f'<svg class="chart" data-points="{n}" viewBox="0 0 {_W} {_H + 30}" '
           f'role="img" aria-label="{escape(title)}">']  # fmt: skip
    out.append(_axes(top, percent))
    step = (_W - 2 * _PAD) / max(1, len(xs) - 1)
    index = {x: i for i, x in enumerate(xs)}
    for k, (name, points) in enumerate(series.items()):
        colour = _COLOURS[k % len(_COLOURS)]
        coords = [(_PAD + index[x] * step, _H - _PAD - (v / top) * (_H - 2 * _PAD)) for x, v in
                  sorted(points)]  # fmt: skip
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}">'
                   f"<title>{escape(name)}</title></polyline>")  # fmt: skip
        for x, y in coords:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>')
        out.append(f'<text x="{_PAD + (k % 5) * 118}" y="{_H + 8 + 14 * (k // 5)}" '
                   f'fill="{colour}" font-size="11">■ {escape(name[:16])}</text>')  # fmt: skip
    for label in (xs[0], xs[-1]) if xs else ():
        out.append(f'<text x="{_PAD + index[label] * step:.1f}" y="{_H - _PAD + 14}" '
                   f'font-size="10" text-anchor="middle">{escape(label)}</text>')  # fmt: skip
    out.append("</svg>")
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(out)}</figure>"


def bar_chart(
    title: str, groups: Sequence[tuple[str, Sequence[float]]], legend: Sequence[str],
    *, percent: bool = False,
) -> str:  # fmt: skip
    """Grouped vertical bars: one group per label, one bar per legend entry."""
    top = max([v for _, vs in groups for v in vs] + [1e-9]) * 1.1
    n = sum(len(vs) for _, vs in groups)
    out = [f'<svg class="chart" data-points="{n}" viewBox="0 0 {_W} {_H + 30}" '
           f'role="img" aria-label="{escape(title)}">', _axes(top, percent)]  # fmt: skip
    width = (_W - 2 * _PAD) / max(1, len(groups))
    bar = width * 0.8 / max(1, len(legend))
    for g, (label, values) in enumerate(groups):
        for k, v in enumerate(values):
            h = (v / top) * (_H - 2 * _PAD)
            x = _PAD + g * width + width * 0.1 + k * bar
            out.append(f'<rect x="{x:.1f}" y="{_H - _PAD - h:.1f}" width="{bar - 1:.1f}" '
                       f'height="{h:.1f}" fill="{_COLOURS[k % len(_COLOURS)]}">'
                       f"<title>{escape(label)} {escape(legend[k])}: {_fmt(v, percent)}</title>"
                       "</rect>")  # fmt: skip
        out.append(f'<text x="{_PAD + g * width + width / 2:.1f}" y="{_H - _PAD + 14}" '
                   f'font-size="10" text-anchor="middle">{escape(label[:14])}</text>')  # fmt: skip
    if len(legend) > 1:
        for k, name in enumerate(legend):
            out.append(f'<text x="{_PAD + k * 90}" y="{_H + 8}" font-size="11" '
                       f'fill="{_COLOURS[k]}">■ {escape(name)}</text>')  # fmt: skip
    out.append("</svg>")
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(out)}</figure>"


def _axes(top: float, percent: bool) -> str:
    parts = [f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" '
             'stroke="#888"/>']  # fmt: skip
    for i in range(5):
        value = top * i / 4
        y = _H - _PAD - (i / 4) * (_H - 2 * _PAD)
        parts.append(f'<line x1="{_PAD}" y1="{y:.1f}" x2="{_W - _PAD}" y2="{y:.1f}" '
                     'stroke="#eee"/>')  # fmt: skip
        parts.append(f'<text x="{_PAD - 4}" y="{y + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{_fmt(value, percent)}</text>')  # fmt: skip
    return "".join(parts)


def _cell(value: Any, column: str) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.1%}" if column.endswith(("_rate", "share")) else f"{value:,.3g}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return escape(str(value))


def table_html(title: str, table: pa.Table, columns: Sequence[str], limit: int = 15) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c), c)}</td>" for c in columns) + "</tr>"
        for row in table.slice(0, limit).to_pylist()
    ) or f'<tr><td colspan="{len(columns)}">none</td></tr>'
    return f"<section><h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table></section>"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:16px;margin:18px 0 6px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(600px,1fr));gap:16px}
figure{margin:0;border:1px solid #ddd;border-radius:6px;padding:8px}
figcaption{font-weight:600;margin-bottom:4px}svg{width:100%;height:auto}
table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #eee;padding:3px 8px;
text-align:left}th{background:#f6f6f6}.kpis span{display:inline-block;margin-right:22px}
.kpis b{font-size:20px;display:block}
"""


def experiment_section(result: ExperimentResult) -> str:
    """An experiment's analysis: the verdict, SRM status and one row per metric and arm."""
    srm = "SRM: " + ("<b>flagged</b>" if result.srm.flagged else "ok") + (
        f" (p = {result.srm.p_value:.3g})" if result.srm.p_value is not None else ""
    )
    arms = " · ".join(
        f"{escape(a.name)} {a.users:,}" + (f" ({a.observed_share:.1%})" if a.observed_share else "")
        for a in result.arms
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("metric", "arm", "role", "control", "treatment", "lift", "interval",
                  "p (adj.)", "P(win)", "outcome")
    )  # fmt: skip
    rows = []
    for m in result.metrics:
        interval = (
            f"[{_signed(m.ci_low)}, {_signed(m.ci_high)}]"
            if m.ci_low is not None and m.ci_high is not None
            else ""
        )
        p = m.p_value_adjusted if m.p_value_adjusted is not None else m.p_value
        win = "" if m.chance_to_win is None else f"{m.chance_to_win:.1%}"
        cells = (m.metric, m.arm, m.role, _number(m.control_mean), _number(m.treatment_mean),
                 _signed(m.estimate), interval, "" if p is None else f"{p:.3g}", win,
                 m.outcome)  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    return (
        f"<section><h2>Experiment {escape(result.experiment)}</h2>"
        f"<p><b>{escape(result.summary)}</b></p><p>Users: {arms}. {srm}.</p>"
        f"<table><tr>{head}</tr>{''.join(rows)}</table></section>"
    )


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def render_report(
    kpis: Mapping[str, pa.Table],
    *,
    title: str = "voxloop turn log",
    sections: Sequence[str] = (),
) -> str:
    """The page for KPI tables of `voxloop.log.kpi.compute_kpis` (all tables), followed
    by ``sections`` (HTML, e.g. `experiment_section`)."""
    summary = (kpis["summary"].to_pylist() or [{}])[0]
    headline = "".join(
        f"<span>{escape(label)}<b>{_cell(summary.get(key), key)}</b></span>"
        for label, key in (("turns", "turns"), ("users", "users"), ("days", "days"),
                           ("defect rate", "defect_rate"),
                           ("not recognized", "not_recognized_rate"),
                           ("rephrased", "rephrase_rate"), ("barge-in", "barge_in_rate"))
    )  # fmt: skip
    daily = kpis["daily"].to_pylist()
    totals: dict[str, int] = {}
    for row in daily:
        totals[row["domain"]] = totals.get(row["domain"], 0) + row["turns"]
    domains = sorted(totals, key=lambda d: (-totals[d], d))[:8]
    volume: dict[str, list[tuple[str, float]]] = {d: [] for d in domains}
    defects: dict[str, list[tuple[str, float]]] = {d: [] for d in domains}
    for row in daily:
        if row["domain"] in volume:
            day = _cell(row["day"], "day")
            volume[row["domain"]].append((day, row["turns"]))
            defects[row["domain"]].append((day, row["defect_rate"] or 0.0))
    by_slice = kpis["by_slice"].to_pylist()
    key = [c for c in kpis["by_slice"].column_names if c not in ("turns", "share")][0]
    latency = kpis["latency"].to_pylist()
    charts = [
        line_chart("Turns per day, by domain", volume),
        line_chart("Defect rate per day, by domain", defects, percent=True),
        bar_chart(f"Defect rate by {key}",
                  [(str(r[key]), [r["defect_rate"] or 0.0]) for r in by_slice[:12]],
                  ["defect rate"], percent=True),  # fmt: skip
        bar_chart("Latency by model version (ms)",
                  [(str(r["model_version"]), [r["p50_ms"], r["p95_ms"], r["p99_ms"]])
                   for r in latency], ["p50", "p95", "p99"]),  # fmt: skip
    ]
    tables = [
        table_html("Confusion hot spots: intents most often declined or unsure", kpis["hot_spots"],
                   ["top_intent", "domain", "turns", "not_recognized", "low_confidence",
                    "low_confidence_rate", "mean_confidence"]),  # fmt: skip
        table_html("Intent pairs the model hesitates between", kpis["confusions"],
                   ["top_intent", "second_intent", "turns", "not_recognized"]),  # fmt: skip
        table_html("Top failing utterances", kpis["top_failing"],
                   ["domain", "rank", "utterance", "top_intent", "turns", "defects"], 25),
        table_html("Friction: what users said next", kpis["friction_examples"],
                   ["day", "domain", "text", "intent", "next_text", "next_gap_s",
                    "next_similarity"]),  # fmt: skip
        table_html("Experiment arms", kpis["arms"],
                   ["experiment", "arm", "users", "turns", "model_version", "defect_rate",
                    "not_recognized_rate", "mean_latency_ms"]),  # fmt: skip
    ]
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><div class=\"kpis\">{headline}</div>"
        f"<div class=\"grid\">{''.join(charts)}</div>{''.join(sections)}{''.join(tables)}"
        "<p><small>Defect: not recognized, or rephrased within the window, or barge-in, "
        "abandonment or negative feedback. Percentiles: nearest rank.</small></p>"
        "</body></html>"
    )


def write_report(
    log: str | Path,
    out: str | Path,
    *,
    since: str | None = None,
    until: str | None = None,
    engine: str = "duckdb",
    experiments: str | Path | None = None,
    sections: Sequence[str] = (),
) -> Path:
    """Compute every KPI of ``log`` and write the page to ``out``; with an
    ``experiments`` file, each experiment's analysis (from ``since``) is a section."""
    from voxloop.log.kpi import compute_kpis

    path = Path(out)
    if path.is_dir():  # before the work, not after it
        raise ConfigError(f"{path} is a directory; name the page, e.g. {path / 'report.html'}")
    kpis = compute_kpis(log, since=since, until=until, engine=engine)
    extra = list(sections)
    if experiments is not None:
        from voxloop.experiments.config import load_config
        from voxloop.experiments.from_log import analyze_log

        for exp in load_config(experiments).experiments:
            analysis = analyze_log(log, exp, since=since, until=until, engine=engine)
            extra.append(experiment_section(analysis.result))
    page = render_report(kpis, title=f"voxloop turn log — {log}", sections=extra)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot write the report ({e.strerror})") from None
    return path
