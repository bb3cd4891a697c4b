"""PNG plots of bench reports (matplotlib, optional: without it nothing is drawn and a note says so)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trtrepo.bench.report import BenchReport, BenchRow

LOGGER = logging.getLogger(__name__)

NO_MATPLOTLIB = "plots skipped: matplotlib is not installed (pip install 'trtrepo[plots]')"
_ERROR_KEYS = ("max_abs_error", "max_abs_err", "abs_error", "max_abs")


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def write_plots(report: BenchReport, out_dir: Path, parity_report: str | Path | None = None) -> list[str]:
    """PNG plots: served (and eager) p50/p99 latency vs concurrency per model and batch; parity error histogram.

    Returns the written paths; without matplotlib nothing is written and a note says so.
    """
    plt = pyplot()
    if plt is None:
        LOGGER.warning(NO_MATPLOTLIB)
        report.notes.append(NO_MATPLOTLIB)
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    groups: dict[tuple[str, int], list[BenchRow]] = {}
    for row in report.rows:
        groups.setdefault((row.model, row.batch_size), []).append(row)
    if groups:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for (model, batch), rows in sorted(groups.items()):
            rows = sorted(rows, key=lambda r: r.concurrency)
            xs = [r.concurrency for r in rows]
            line = ax.plot(xs, [r.served.p50_ms for r in rows], marker="o", label=f"{model} b{batch} served p50")
            ax.plot(xs, [r.served.p99_ms for r in rows], marker="x", linestyle="--", color=line[0].get_color(),
                    label=f"{model} b{batch} served p99")
            if rows[0].eager is not None:
                ax.axhline(rows[0].eager.p50_ms, linestyle=":", color=line[0].get_color(),
                           label=f"{model} b{batch} eager p50")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(f"trtrepo bench — {report.device}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        written.append(_save(plt, fig, out_dir / "bench_latency.png"))
    if parity_report is not None:
        errors = parity_errors(json.loads(Path(parity_report).read_text()))
        if errors:
            fig, ax = plt.subplots(figsize=(7, 4.5))
            positive = [e for e in errors if e > 0]
            floor = min(positive) if positive else 1e-12
            values = [math.log10(max(e, floor)) for e in errors]
            ax.hist(values, bins=min(50, max(5, len(values) // 2)))
            ax.set_xlabel("log10(max abs error) per compared output")
            ax.set_ylabel("count")
            ax.set_title(f"parity errors ({len(errors)} comparisons) — {Path(parity_report).name}")
            written.append(_save(plt, fig, out_dir / "parity_errors.png"))
        else:
            report.notes.append(f"parity histogram skipped: no error values found in {parity_report}")
    return written


def bar_plot(path: Path, title: str, panels: Mapping[str, Mapping[str, Sequence[tuple[int, float, float, float]]]],
             ylabel: str) -> str | None:
    """Grouped bars with error bars, one panel per key of ``panels``.

    Args:
        path: The PNG to write.
        title: Figure title.
        panels: Panel title → series name → points ``(batch, median, low, high)``.
        ylabel: The y axis.

    Returns:
        The path written, or None without matplotlib.
    """
    plt = pyplot()
    if plt is None:
        LOGGER.warning(NO_MATPLOTLIB)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(7 * max(1, len(panels)), 4.8), squeeze=False)
    for ax, (panel, series) in zip(axes[0], panels.items(), strict=False):
        batches = sorted({p[0] for points in series.values() for p in points})
        width = 0.8 / max(1, len(series))
        for k, (name, points) in enumerate(series.items()):
            by_batch = {p[0]: p for p in points}
            xs, ys, lo, hi = [], [], [], []
            for i, b in enumerate(batches):
                if b in by_batch:
                    _, med, low, high = by_batch[b]
                    xs.append(i + (k - (len(series) - 1) / 2) * width)
                    ys.append(med)
                    lo.append(med - low)
                    hi.append(high - med)
            ax.bar(xs, ys, width=width, label=name, yerr=[lo, hi], capsize=2)
        ax.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
        ax.set_ylabel(ylabel)
        ax.set_title(panel)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(title)
    return _save(plt, fig, path)


def _save(plt: Any, fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return str(path)


def parity_errors(data: Any) -> list[float]:
    """Every per-comparison absolute error found in a ``trtrepo check`` JSON report (searched recursively)."""
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if key in _ERROR_KEYS and isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.append(float(value))
                else:
                    walk(value)
        elif isinstance(node, Iterable) and not isinstance(node, (str, bytes)):
            for item in node:
                walk(item)

    walk(data)
    return [e for e in found if math.isfinite(e)]
