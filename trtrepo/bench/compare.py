"""Served variants of the same models side by side: ``python -m trtrepo.bench.compare LABEL=REPORT.json ...``.

Each REPORT is a ``trtrepo bench --report`` JSON of one build of the same model.yaml (e.g. ``exported=`` the
exported program served, ``aoti=`` the AOTInductor package served). One row per (model, batch, concurrency) that
every report measured: eager p50 (from the first report), each variant's served p50, its ratio to eager, its
server compute-infer mean and throughput, and each later variant's p50 speed-up over the first.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from trtrepo._table import render
from trtrepo.bench.report import BenchReport, BenchRow


def compare_table(reports: Mapping[str, BenchReport]) -> str:
    """The side-by-side table of ``reports`` (label → report, first = baseline)."""
    labels = list(reports)
    by_label = {label: {(r.model, r.batch_size, r.concurrency): r for r in rep.rows} for label, rep in reports.items()}
    keys = [k for k in by_label[labels[0]] if all(k in rows for rows in by_label.values())]
    header = ["model", "batch", "conc", "eager p50 ms"]
    for label in labels:
        header += [f"{label} p50 ms", f"{label}/eager", f"{label} infer ms", f"{label} inf/s"]
    header += [f"{label} speed-up vs {labels[0]}" for label in labels[1:]]
    rows = []
    for key in keys:
        first: BenchRow = by_label[labels[0]][key]
        eager = first.eager.p50_ms if first.eager is not None else None
        row: list[object] = [key[0], key[1], key[2], _ms(eager)]
        for label in labels:
            r = by_label[label][key]
            infer = r.breakdown.compute_infer_ms if r.breakdown is not None else r.server_compute_ms
            row += [_ms(r.served.p50_ms), _x(r.served.p50_ms / eager) if eager else "-", _ms(infer),
                    f"{r.served_ips:.0f}"]
        row += [_x(first.served.p50_ms / by_label[label][key].served.p50_ms) for label in labels[1:]]
        rows.append(row)
    return render(header, rows, right=tuple(range(1, len(header))))


def _ms(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


def _x(value: float) -> str:
    return f"{value:.2f}x"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: print the table (and write it to ``--out``); exit 2 on a bad argument or an unreadable report."""
    parser = argparse.ArgumentParser(prog="python -m trtrepo.bench.compare", description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", metavar="LABEL=REPORT.json")
    parser.add_argument("--out", type=Path, default=None, help="Also write the table here.")
    args = parser.parse_args(argv)
    reports: dict[str, BenchReport] = {}
    for item in args.reports:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            print(f"error: {item!r}: expected LABEL=REPORT.json", file=sys.stderr)
            return 2
        try:
            reports[label] = BenchReport.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: {path}: not a trtrepo bench report ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 2
    table = compare_table(reports)
    print(table)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
