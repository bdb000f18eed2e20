"""``vcframe compare``: run a grid of systems over voices and texts, score every item, write a report.

    >>> from vcframe.compare import load_grid, plan_comparison, run_comparison, write_report
    >>> plan = plan_comparison(load_grid("grid.toml"))
    >>> outcome = run_comparison(plan, "out", jobs=1)
    >>> files = write_report(plan, outcome, "out")       # results.csv/json, summary, plots, report.html

See docs/compare.md for the grid format, the metrics and the outputs.
"""

from __future__ import annotations

from vcframe.compare.grid import Grid, SystemEntry, TextEntry, VoiceEntry, load_grid, parse_grid
from vcframe.compare.report import ReportFiles, read_results_csv, summarize, write_report
from vcframe.compare.runner import (
    BASE_COLUMNS,
    ComparisonItem,
    ComparisonOutcome,
    ComparisonPlan,
    plan_comparison,
    run_comparison,
)

__all__ = [
    "BASE_COLUMNS",
    "ComparisonItem",
    "ComparisonOutcome",
    "ComparisonPlan",
    "Grid",
    "ReportFiles",
    "SystemEntry",
    "TextEntry",
    "VoiceEntry",
    "load_grid",
    "parse_grid",
    "plan_comparison",
    "read_results_csv",
    "run_comparison",
    "summarize",
    "write_report",
]
