"""The conformance report: one :class:`Check` per thing judged, as JSON for machines and a table for people."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trtrepo._table import render

JSON_FILE = "conformance.json"
TABLE_FILE = "conformance.txt"
SCHEMA = 1


@dataclass(frozen=True)
class Check:
    """One judged fact.

    Attributes:
        lane: ``aot`` (PTX launched as TensorRT would), ``host`` (the plugin library through the conformance host),
            ``library`` (the plugin library file itself) or ``expr`` (the host's IExprBuilder).
        tensorrt: The TensorRT header version the library and host were built against (``-`` for aot).
        op: ``ns::op`` (``-`` for library-wide checks).
        dtype: trtrepo dtype name (``-`` where none).
        case: The shape case's label and origin (``-`` where none).
        check: What was judged (``matches_eager``, ``supports_format_combination``, ...).
        ok: Passed.
        detail: Why it failed, or what was seen.
        max_abs: Worst absolute error (comparisons only).
        max_rel: Worst relative error (comparisons only).
    """

    lane: str
    tensorrt: str
    op: str
    dtype: str
    case: str
    check: str
    ok: bool
    detail: str = ""
    max_abs: float | None = None
    max_rel: float | None = None


@dataclass
class Report:
    """Every check of one run, and the facts of the run (versions, counts, skipped parts and why)."""

    checks: list[Check] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there is at least one check and every check passed."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    def extend(self, checks: Iterable[Check]) -> None:
        """Add checks."""
        self.checks.extend(checks)

    def failures(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if not c.ok]

    def counts(self) -> dict[str, dict[str, int]]:
        """``lane/tensorrt`` → passed and total."""
        out: dict[str, dict[str, int]] = {}
        for c in self.checks:
            key = f"{c.lane}/{c.tensorrt}"
            slot = out.setdefault(key, {"passed": 0, "total": 0})
            slot["total"] += 1
            slot["passed"] += int(c.ok)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: verdict, counts, facts, skipped parts, failures first, then every check."""
        return {"schema": SCHEMA, "ok": self.ok, "counts": self.counts(), "facts": self.facts,
                "skipped": self.skipped, "failures": [asdict(c) for c in self.failures()],
                "checks": [asdict(c) for c in self.checks]}

    def table(self, failures_shown: int = 40) -> str:
        """Passed/total per lane, header version, op and check; then the first failures with their detail."""
        groups: dict[tuple[str, str, str, str], list[Check]] = {}
        for c in self.checks:
            groups.setdefault((c.lane, c.tensorrt, c.op, c.check), []).append(c)
        rows = []
        for (lane, trt, op, check), items in groups.items():
            passed = sum(c.ok for c in items)
            worst = max((c.max_abs for c in items if c.max_abs is not None), default=None)
            rows.append([lane, trt, op, check, f"{passed}/{len(items)}", "" if worst is None else f"{worst:.3g}",
                         "ok" if passed == len(items) else "FAIL"])
        text = render(["lane", "tensorrt", "op", "check", "passed", "worst abs", ""], rows, right=(4, 5))
        lines = [text]
        failed = self.failures()
        if failed:
            lines.append(f"\n{len(failed)} failed:")
            for c in failed[:failures_shown]:
                lines.append(f"  {c.lane} {c.tensorrt} {c.op} {c.dtype} [{c.case}] {c.check}: {c.detail}")
            if len(failed) > failures_shown:
                lines.append(f"  ... and {len(failed) - failures_shown} more (see {JSON_FILE})")
        for s in self.skipped:
            lines.append(f"skipped: {s}")
        total = len(self.checks)
        lines.append(f"{'PASS' if self.ok else 'FAIL'}: {total - len(failed)}/{total} checks passed")
        return "\n".join(lines)


def write_report(report: Report, out_dir: Path) -> tuple[Path, Path]:
    """``conformance.json`` and ``conformance.txt`` in ``out_dir`` (created)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, table_path = out_dir / JSON_FILE, out_dir / TABLE_FILE
    json_path.write_text(json.dumps(report.to_dict(), indent=1, default=str) + "\n")
    table_path.write_text(report.table() + "\n")
    return json_path, table_path


CHUNK = 1 << 26  # elements compared at a time (a 2^31-element output is not copied to float64 whole)


def compare(got: Any, want: Any, rtol: float, atol: float) -> tuple[bool, float, float, str]:
    """(within tolerance, worst abs error, worst rel error, detail) of two torch tensors; NaN never matches.

    Shapes and dtypes must be equal; the statistics are computed in float64 on the tensors' device, in chunks.
    """
    import torch

    if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
        return (False, float("inf"), float("inf"),
                f"got {tuple(got.shape)} {got.dtype}, want {tuple(want.shape)} {want.dtype}")
    g_all, w_all = got.reshape(-1), want.reshape(-1)
    ok, exact, nan_got, nan_want = True, True, False, False
    max_abs = max_rel = 0.0
    for start in range(0, g_all.numel(), CHUNK):
        g, w = g_all[start:start + CHUNK].double(), w_all[start:start + CHUNK].double()
        diff = (g - w).abs()
        nan_got = nan_got or bool(torch.isnan(g).any())
        nan_want = nan_want or bool(torch.isnan(w).any())
        max_abs = max(max_abs, float(diff.nan_to_num(nan=float("inf")).max()))
        max_rel = max(max_rel, float((diff / w.abs().clamp_min(1e-12)).nan_to_num(nan=float("inf")).max()))
        ok = ok and bool(torch.allclose(g, w, rtol=rtol, atol=atol))
        exact = exact and bool(torch.equal(g_all[start:start + CHUNK], w_all[start:start + CHUNK]))
    ok = ok and not nan_got and not nan_want
    detail = "bit-exact" if exact and ok else \
        f"max_abs={max_abs:.3g} max_rel={max_rel:.3g} (rtol={rtol:g} atol={atol:g})"
    if nan_got or nan_want:
        detail += f"; NaN in {'the output (unwritten elements?)' if nan_got else 'the reference'}"
    return ok, max_abs, max_rel, detail


def tolerance(dtype: str) -> dict[str, float]:
    """Per-dtype tolerances: both sides run the same kernel, so equality is expected; the tolerance allows a
    different grid: 1e-5 for fp32, one ulp of the dtype (its epsilon) for fp16 / bf16."""
    eps = {"fp32": 1e-5, "fp16": 2.0**-10, "bf16": 2.0**-7}.get(dtype, 0.0)
    return {"rtol": eps, "atol": eps}


def facts_table(facts: Mapping[str, Any]) -> str:
    """The run's facts as a two-column table."""
    return render(["fact", "value"], [[k, v] for k, v in facts.items()])
