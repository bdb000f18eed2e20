"""The outputs of a comparison: results.csv/json, the summary, PNG plots and a self-contained report.html.

OUT/results.csv        one row per item: the BASE_COLUMNS, then every metric column
OUT/results.json       the same rows with measurements, notes and judge embeddings; systems, metrics, summary
OUT/summary.csv        one row per system and metric column: n, mean, 95% CI
OUT/summary.json
OUT/plots/*.png        metric_<column>.png (distribution per system), embeddings.png (2-D projection of
                       reference vs generated judge embeddings), rtf_stages.png, sample_<system>.png
                       (mel and attention of the sample item)
OUT/report.html        one page, no network: tables, plots and audio embedded as data URIs
OUT/audio/<system>/<voice>__<text>.flac
"""

from __future__ import annotations

import base64
import csv
import datetime
import html
import io
import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcframe import __version__
from vcframe._io import atomic_path, atomic_write, to_jsonable
from vcframe.compare.runner import GROUND_TRUTH, ComparisonOutcome, ComparisonPlan
from vcframe.metrics.spec import MetricColumn
from vcframe.metrics.stats import mean_confidence_interval

_AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}


@dataclass
class ReportFiles:
    """Paths written by :func:`write_report`."""

    results_csv: Path
    results_json: Path
    summary_csv: Path
    summary_json: Path
    report_html: Path
    plots: dict[str, Path] = field(default_factory=dict)


# -- rows and summary ---------------------------------------------------------------------------------


def result_rows(plan: ComparisonPlan, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per item with exactly ``plan.columns`` (metric values None where not applicable)."""
    rows = []
    for record in records:
        row = {column: record.get(column) for column in plan.columns if column in record}
        for column in plan.metric_columns:
            row[column.name] = record.get("metrics", {}).get(column.name)
        rows.append({column: row.get(column) for column in plan.columns})
    return rows


def summarize(plan: ComparisonPlan, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per system: item counts by status and, per numeric metric column, n, mean and 95% CI bounds."""
    summary = []
    for system in plan.systems:
        mine = [record for record in records if record["system"] == system.name]
        statistics: dict[str, dict[str, Any]] = {}
        for column in plan.metric_columns:
            if not column.numeric:
                continue
            interval = mean_confidence_interval(record.get("metrics", {}).get(column.name) for record in mine)
            statistics[column.name] = (
                {"n": 0, "mean": None, "ci_low": None, "ci_high": None}
                if interval is None
                else {"n": interval.n, "mean": interval.mean, "ci_low": interval.low, "ci_high": interval.high}
            )
        summary.append(
            {
                "system": system.name,
                **system.components,
                "items": len(mine),
                "ok": sum(record["status"] == "ok" for record in mine),
                "failed": sum(record["status"] == "failed" for record in mine),
                "refused": sum(record["status"] == "refused" for record in mine),
                "refused_reason": system.refused,
                "recordings": system.recordings,
                "metrics": statistics,
            }
        )
    return summary


def metric_warnings(plan: ComparisonPlan, records: Sequence[dict[str, Any]]) -> list[str]:
    """One line per metric that gave no value for some generated items, with the most common reason: a metric
    that cannot run (a missing or refused judge checkpoint, say) leaves empty cells, which the summary must
    not pass over in silence. Items that failed or were refused are counted elsewhere."""
    lines = []
    scored = [record for record in records if record.get("status") == "ok"]
    for spec in plan.metrics:
        reasons = [
            record.get("metric_notes", {}).get(spec.name)
            for record in scored
            if spec.name in record.get("metric_notes", {})
            and all(record.get("metrics", {}).get(column.name) is None for column in spec.columns)
        ]
        if not reasons:
            continue
        common = max(set(reasons), key=reasons.count)
        others = len(set(reasons)) - 1
        line = f"metric {spec.name} gave no value for {len(reasons)} of {len(scored)} items: {common}"
        if others:
            line += f" (and {others} other reason{'s' if others > 1 else ''}: see results.json)"
        lines.append(line)
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ";".join(str(part) for part in value)
    return str(value)


def write_tables(
    plan: ComparisonPlan, outcome: ComparisonOutcome, out_dir: Path, summary: list[dict[str, Any]]
) -> tuple[Path, Path, Path, Path]:
    """results.csv, results.json, summary.csv, summary.json (atomically)."""
    rows = result_rows(plan, outcome.records)
    results_csv = out_dir / "results.csv"
    with atomic_write(results_csv, "w") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(plan.columns)
        for row in rows:
            writer.writerow([_cell(row[column]) for column in plan.columns])
    detailed = []
    for row, record in zip(rows, outcome.records, strict=True):
        extra = {key: record.get(key) for key in ("measurements", "metric_notes", "vectors", "bridged", "key")}
        detailed.append({**row, **extra})
    payload = {
        "vcframe": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "grid": plan.grid.model_dump(mode="json"),
        "judge": {"encoder": plan.grid.judge, "options": plan.grid.judge_options},
        "systems": [
            {"name": s.name, "components": s.components, "options": s.options, "refused": s.refused, **s.description}
            for s in plan.systems
        ],
        "metrics": [
            {
                "name": spec.name,
                "summary": spec.summary,
                "needs": sorted(spec.needs),
                "columns": [column.model_dump() for column in spec.columns],
            }
            for spec in plan.metrics
        ],
        "columns": plan.columns,
        "rows": detailed,
        "summary": summary,
        "warnings": [*plan.warnings, *metric_warnings(plan, outcome.records)],
    }
    results_json = out_dir / "results.json"
    with atomic_write(results_json, "w") as stream:
        json.dump(to_jsonable(payload), stream, indent=1)
    summary_csv = out_dir / "summary.csv"
    with atomic_write(summary_csv, "w") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["system", "items", "ok", "failed", "refused", "metric", "n", "mean", "ci_low", "ci_high"])
        for entry in summary:
            counts = [entry["items"], entry["ok"], entry["failed"], entry["refused"]]
            for name, stats in entry["metrics"].items():
                writer.writerow(
                    [entry["system"], *counts, name, stats["n"]]
                    + [_cell(stats[key]) for key in ("mean", "ci_low", "ci_high")]
                )
    summary_json = out_dir / "summary.json"
    with atomic_write(summary_json, "w") as stream:
        json.dump(to_jsonable(summary), stream, indent=1)
    return results_csv, results_json, summary_csv, summary_json


# -- plots --------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    from vcframe._plots import _pyplot as load

    return load()


def _save(figure: Any, path: Path) -> Path:
    plt = _pyplot()
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)
    return path


def _label(column: MetricColumn) -> str:
    arrow = {True: " (higher is better)", False: " (lower is better)", None: ""}[column.higher_is_better]
    unit = f" [{column.unit}]" if column.unit else ""
    return f"{column.name}{unit}{arrow}"


def plot_metric_distribution(
    plan: ComparisonPlan, records: Sequence[dict[str, Any]], column: MetricColumn, path: Path
) -> Path | None:
    """Box plot with every item as a dot, one box per system that has values; None when none has."""
    import numpy as np

    groups = []
    for system in plan.systems:
        values = [r["metrics"].get(column.name) for r in records if r["system"] == system.name]
        finite = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        if finite:
            groups.append((system.name, finite))
    if not groups:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(4.0, 1.6 * len(groups) + 2), 3.6))
    axis.boxplot([values for _, values in groups], showmeans=True, widths=0.5)
    jitter = np.random.default_rng(0)
    for index, (_, values) in enumerate(groups, start=1):
        axis.scatter(index + jitter.uniform(-0.12, 0.12, len(values)), values, s=14, alpha=0.6, color="tab:blue")
    axis.set_xticks(range(1, len(groups) + 1), [name for name, _ in groups], rotation=15)
    axis.set_ylabel(_label(column))
    axis.set_title(textwrap.fill(column.description or column.name, 60), fontsize=9)
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def project_2d(vectors: Any) -> Any:
    """Rows of ``vectors`` projected on their first two principal components (numpy SVD)."""
    import numpy as np

    matrix = np.asarray(vectors, dtype=np.float64)
    centred = matrix - matrix.mean(axis=0, keepdims=True)
    if matrix.shape[0] < 2:
        return np.zeros((matrix.shape[0], 2))
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:2].T
    if projected.shape[1] < 2:
        projected = np.hstack([projected, np.zeros((projected.shape[0], 2 - projected.shape[1]))])
    return projected


def plot_embeddings(plan: ComparisonPlan, records: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Judge embeddings of each voice's reference (stars) and of every output (one marker per system),
    coloured by voice, projected to 2-D with PCA. None when no item has embeddings."""
    references: dict[str, list[float]] = {}
    generated: list[tuple[str, str, list[float]]] = []
    for record in records:
        vectors = record.get("vectors") or {}
        if "reference_embedding" in vectors:
            references.setdefault(record["voice"], vectors["reference_embedding"])
        if "generated_embedding" in vectors:
            generated.append((record["system"], record["voice"], vectors["generated_embedding"]))
    if not generated:
        return None
    plt = _pyplot()
    voices = [voice.name for voice in plan.voices]
    systems = [system.name for system in plan.systems]
    stacked = [*references.values(), *(vector for _, _, vector in generated)]
    points = project_2d(stacked)
    colours = plt.get_cmap("tab10")
    markers = ["o", "s", "^", "D", "v", "P", "X", "<", ">", "h"]
    figure, axis = plt.subplots(figsize=(7.0, 5.2))
    for index, voice in enumerate(references):
        colour = colours(voices.index(voice) % 10)
        axis.scatter(*points[index], marker="*", s=320, color=colour, edgecolor="black", zorder=3)
        axis.annotate(voice, points[index], textcoords="offset points", xytext=(8, 6), fontsize=9)
    offset = len(references)
    for index, (system, voice, _) in enumerate(generated):
        axis.scatter(
            *points[offset + index],
            marker=markers[systems.index(system) % len(markers)],
            s=40,
            color=colours(voices.index(voice) % 10),
            alpha=0.8,
        )
    for system in systems:
        if any(s == system for s, _, _ in generated):
            axis.scatter([], [], marker=markers[systems.index(system) % len(markers)], color="grey", label=system)
    axis.scatter([], [], marker="*", s=120, color="grey", edgecolor="black", label="reference")
    axis.legend(fontsize=8, loc="best")
    axis.set_title(
        f"judge ({plan.grid.judge}) embeddings, PCA\n"
        "references (stars) and outputs (one marker per system), colour = voice",
        fontsize=10,
    )
    axis.set_xlabel("PC 1")
    axis.set_ylabel("PC 2")
    axis.grid(alpha=0.3)
    return _save(figure, path)


def plot_rtf_stages(plan: ComparisonPlan, summary: list[dict[str, Any]], path: Path) -> Path | None:
    """Stacked bars: mean real-time factor of each stage per system."""
    stages = [column.name for column in plan.metric_columns if column.name.startswith("rtf_")]
    rows = [(entry["system"], [entry["metrics"].get(stage, {}).get("mean") for stage in stages]) for entry in summary]
    rows = [(name, values) for name, values in rows if any(value is not None for value in values)]
    if not stages or not rows:
        return None
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(4.0, 1.4 * len(rows) + 2.5), 3.6))
    bottoms = [0.0] * len(rows)
    for position, stage in enumerate(stages):
        heights = [values[position] or 0.0 for _, values in rows]
        axis.bar([name for name, _ in rows], heights, bottom=bottoms, label=stage.removeprefix("rtf_"))
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axis.set_ylabel("seconds per second of output")
    axis.set_title("real-time factor by stage (mean)")
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)


def write_plots(
    plan: ComparisonPlan, records: Sequence[dict[str, Any]], summary: list[dict[str, Any]], out_dir: Path
) -> dict[str, Path]:
    """Every plot that has data, by name; the sample plots written by the workers are included."""
    folder = out_dir / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    plots: dict[str, Path] = {}
    for column in plan.metric_columns:
        is_main = any(column.name == spec.name for spec in plan.metrics)
        if column.numeric and is_main:
            made = plot_metric_distribution(plan, records, column, folder / f"metric_{column.name}.png")
            if made is not None:
                plots[f"metric_{column.name}"] = made
    made = plot_embeddings(plan, records, folder / "embeddings.png")
    if made is not None:
        plots["embeddings"] = made
    made = plot_rtf_stages(plan, summary, folder / "rtf_stages.png")
    if made is not None:
        plots["rtf_stages"] = made
    for system in plan.systems:
        sample = folder / f"sample_{system.name}.png"
        if sample.is_file():
            plots[f"sample_{system.name}"] = sample
    return plots


# -- html ---------------------------------------------------------------------------------------------


def data_uri(path: Path, mime: str) -> str:
    """The file as a base64 ``data:`` URI."""
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _audio(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    mime = _AUDIO_TYPES.get(path.suffix.lower(), "audio/wav")
    if path.suffix.lower() not in _AUDIO_TYPES:
        return ""
    return f'<audio controls preload="none" src="{data_uri(path, mime)}"></audio>'


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return html.escape(str(value))


def _mean_ci(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    if stats.get("ci_high") is None:
        return f"{_format(stats['mean'])} <small>(n={stats['n']})</small>"
    half = stats["ci_high"] - stats["mean"]
    return f"{_format(stats['mean'])} ± {_format(half)} <small>(n={stats['n']})</small>"


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1280px;color:#222;
padding:0 16px}
h1{font-size:1.6em;margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:.92em}th,td{border:1px solid #ddd;padding:4px 8px;
vertical-align:top}th{background:#f4f4f4;text-align:left}td.num{text-align:right;white-space:nowrap}
.best{font-weight:bold;background:#e9f6ec}.refused{color:#a33}.failed{color:#a33}.muted{color:#777}
.plots img{max-width:100%;border:1px solid #eee;margin:6px 0}.grid{display:flex;flex-wrap:wrap;gap:12px}
.grid figure{margin:0;flex:1 1 480px}figcaption{font-size:.85em;color:#555}audio{width:220px;height:32px}
.wide{overflow-x:auto}.text{font-style:italic}.metrics{font-size:.8em;color:#444}
.warn{background:#fff6e0;padding:6px 10px}
"""


def _best(summary: list[dict[str, Any]], column: MetricColumn) -> set[str]:
    if column.higher_is_better is None:
        return set()
    means = {
        entry["system"]: entry["metrics"][column.name]["mean"]
        for entry in summary
        if entry["metrics"].get(column.name, {}).get("mean") is not None and not entry.get("recordings")
    }
    if len(means) < 2:
        return set()
    target = max(means.values()) if column.higher_is_better else min(means.values())
    return {name for name, mean in means.items() if mean == target}


def _cell_metrics(record: dict[str, Any], columns: list[MetricColumn]) -> str:
    """An item's scores (and what the recogniser heard) under its audio player."""
    shown = [column for column in columns if record["metrics"].get(column.name) is not None]
    values = " · ".join(f"{html.escape(c.name)} {_format(record['metrics'][c.name])}" for c in shown)
    transcript = record["metrics"].get("transcript")
    heard = f"<br><span class='muted'>heard: “{html.escape(transcript)}”</span>" if transcript else ""
    return f"<div class='metrics'>{values}{heard}</div>"


def _summary_table(summary: list[dict[str, Any]], columns: list[MetricColumn]) -> str:
    escape = html.escape
    parts = ["<div class='wide'><table><tr><th>system</th>"]
    for column in columns:
        arrow = {True: " ↑", False: " ↓", None: ""}[column.higher_is_better]
        unit = f" [{escape(column.unit)}]" if column.unit else ""
        parts.append(f"<th title='{escape(column.description)}'>{escape(column.name)}{unit}{arrow}</th>")
    parts.append("</tr>")
    best = {column.name: _best(summary, column) for column in columns}
    for entry in summary:
        parts.append(f"<tr><td><b>{escape(entry['system'])}</b></td>")
        for column in columns:
            css = "num best" if entry["system"] in best[column.name] else "num"
            parts.append(f"<td class='{css}'>{_mean_ci(entry['metrics'].get(column.name))}</td>")
        parts.append("</tr>")
    parts.append("</table></div>")
    return "".join(parts)


def render_html(
    plan: ComparisonPlan,
    records: Sequence[dict[str, Any]],
    summary: list[dict[str, Any]],
    plots: dict[str, Path],
    out_dir: Path,
    *,
    title: str = "vcframe comparison",
) -> str:
    """The report page: every image and audio clip inline, so the file works offline and on its own."""
    escape = html.escape
    numeric = [column for column in plan.metric_columns if column.numeric]
    main_names = {spec.name for spec in plan.metrics}
    scored = sum(record["system"] == GROUND_TRUTH for record in records)
    recordings = f" + {scored} ground-truth recordings" if scored else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p class='muted'>vcframe {escape(__version__)} · "
        f"{escape(datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC'))} · "
        f"{sum(not s.recordings for s in plan.systems)} systems × {len(plan.voices)} voices × {len(plan.texts)} texts"
        f"{recordings} = {len(records)} items · "
        f"seed {plan.grid.seed} · judge encoder <b>{escape(plan.grid.judge)}</b> · device {escape(plan.grid.device)}"
        "</p>",
    ]
    for note in [*plan.warnings, *metric_warnings(plan, records)]:
        parts.append(f"<p class='warn'>{escape(note)}</p>")
    # systems
    parts.append("<h2>Systems</h2><table><tr><th>system</th><th>encoder</th><th>synthesizer</th><th>vocoder</th>")
    parts.append("<th>options</th><th>status</th></tr>")
    for system, entry in zip(plan.systems, summary, strict=True):
        options = json.dumps(system.options) if system.options else ""
        shown_options = (
            f"<code>{escape(options)}</code>"
            if len(options) <= 80
            else f"<details><summary><code>{escape(options[:60])}…</code></summary>"
            f"<code>{escape(options)}</code></details>"
        )
        if system.recordings:
            parts.append(
                f"<tr><td><b>{escape(system.name)}</b></td><td colspan='4' class='muted'>the ground-truth recordings, "
                "scored as a reference by the metrics that do not compare with them</td>"
                f"<td>{entry['ok']} ok</td></tr>"
            )
            continue
        status = (
            f"<span class='refused'>refused: {escape(system.refused)}</span>"
            if system.refused
            else f"{entry['ok']} ok"
            + (f", <span class='failed'>{entry['failed']} failed</span>" if entry["failed"] else "")
        )
        parts.append(
            f"<tr><td><b>{escape(system.name)}</b></td>"
            + "".join(f"<td>{escape(system.components[kind])}</td>" for kind in ("encoder", "synthesizer", "vocoder"))
            + f"<td>{shown_options}</td><td>{status}</td></tr>"
        )
    parts.append("</table>")
    # summary
    main = [column for column in numeric if column.name in main_names]
    stages = [column for column in numeric if column.name not in main_names]
    parts.append("<h2>Summary (mean ± 95% confidence interval)</h2>")
    parts.append(_summary_table(summary, main))
    if stages:
        parts.append("<h3>Speed and memory by stage</h3>")
        parts.append(_summary_table(summary, stages))
    parts.append("<p class='muted'>↑ higher is better, ↓ lower is better; best mean in green. ")
    parts.append("Metrics: " + "; ".join(f"<b>{escape(s.name)}</b>: {escape(s.summary)}" for s in plan.metrics))
    parts.append("</p>")
    # plots
    parts.append("<h2>Plots</h2><div class='grid plots'>")
    for name, path in plots.items():
        if name.startswith("sample_"):
            continue
        parts.append(f"<figure><img alt='{escape(name)}' src='{data_uri(path, 'image/png')}'>")
        parts.append(f"<figcaption>{escape(name)}</figcaption></figure>")
    parts.append("</div>")
    samples = {name: path for name, path in plots.items() if name.startswith("sample_")}
    if samples:
        parts.append("<h2>Sample item: mel spectrogram and attention alignment</h2><div class='grid plots'>")
        for name, path in samples.items():
            parts.append(f"<figure><img alt='{escape(name)}' src='{data_uri(path, 'image/png')}'>")
            parts.append(f"<figcaption>{escape(name.removeprefix('sample_'))}</figcaption></figure>")
        parts.append("</div>")
    # voices
    parts.append("<h2>Voices</h2><table><tr><th>voice</th><th>reference</th><th>source</th></tr>")
    for voice in plan.voices:
        parts.append(
            f"<tr><td><b>{escape(voice.name)}</b></td><td>{_audio(voice.files[0])}</td>"
            f"<td class='muted'>{escape(', '.join(voice.sources))}</td></tr>"
        )
    parts.append("</table>")
    # items
    live = [system for system in plan.systems if system.refused is None and not system.recordings]
    cell_columns = [
        c for c in plan.metric_columns if c.name in main_names and c.numeric and not c.name.startswith(("rtf", "peak"))
    ]
    by_key = {(r["system"], r["voice"], r["text_id"]): r for r in records}
    parts.append("<h2>Items</h2><div class='wide'><table><tr><th>voice</th><th>text</th><th>ground truth</th>")
    parts += [f"<th>{escape(system.name)}</th>" for system in live]
    parts.append("</tr>")
    for voice in plan.voices:
        for text in plan.texts:
            truth = text.ground_truth.get(voice.name)
            parts.append(
                f"<tr><td>{escape(voice.name)}</td><td class='text'>{escape(text.id)}: {escape(text.text)}</td>"
            )
            scored = by_key.get((GROUND_TRUTH, voice.name, text.id))
            if scored is not None and scored["status"] == "ok":
                parts.append(f"<td>{_audio(truth)}{_cell_metrics(scored, cell_columns)}</td>")
            else:
                parts.append(f"<td>{_audio(truth) if truth else '<span class=muted>–</span>'}</td>")
            for system in live:
                record = by_key.get((system.name, voice.name, text.id))
                if record is None or record["status"] != "ok":
                    error = escape(str(record.get("error"))) if record else ""
                    parts.append(f"<td class='failed'>failed: {error}</td>")
                    continue
                parts.append(f"<td>{_audio(out_dir / record['audio'])}{_cell_metrics(record, cell_columns)}</td>")
            parts.append("</tr>")
    parts.append("</table></div>")
    parts.append(
        "<p class='muted'>Raw data: results.csv and results.json (one row per item), summary.csv; "
        "audio in audio/; plots in plots/.</p></body></html>"
    )
    return "".join(parts)


def write_report(
    plan: ComparisonPlan,
    outcome: ComparisonOutcome,
    out_dir: str | Path,
    *,
    plots: bool = True,
    title: str | None = None,
) -> ReportFiles:
    """Write every output of the comparison into ``out_dir``."""
    out = Path(out_dir)
    summary = summarize(plan, outcome.records)
    results_csv, results_json, summary_csv, summary_json = write_tables(plan, outcome, out, summary)
    made = write_plots(plan, outcome.records, summary, out) if plots else {}
    page = render_html(plan, outcome.records, summary, made, out, title=title or "vcframe comparison")
    report_html = out / "report.html"
    with atomic_write(report_html, "w") as stream:
        stream.write(page)
    return ReportFiles(results_csv, results_json, summary_csv, summary_json, report_html, made)


def read_results_csv(path: str | Path) -> list[dict[str, str]]:
    """results.csv as a list of dicts (strings), for scripts and tests."""
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(io.StringIO(stream.read())))
