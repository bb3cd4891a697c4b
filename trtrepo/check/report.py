"""The parity report: one row per model × protocol × case × output; JSON for machines, a table for people."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.check.compare import OutputResult

if TYPE_CHECKING:
    from trtrepo.check.ops_report import OpsReport

LOGGER = logging.getLogger(__name__)

REPORT_SCHEMA = "trtrepo-parity/1"


@dataclass
class CaseResult:
    """One request (case) of one model over one protocol, and how each of its outputs compared.

    Attributes:
        model: Model name.
        protocol: ``http`` or ``grpc``.
        case: ``min``, ``opt``, ``max``, ``random-<i>``, ``ragged-<i>``.
        input_shapes: Input name → shape sent.
        outputs: Per-output comparison (empty when the request failed).
        error: The request's error (server answer), '' when it succeeded.
        latency_ms: Round-trip time of the request.
        replica: Name of the replica that answered ('' when one server was checked).
    """

    model: str
    protocol: str
    case: str
    input_shapes: dict[str, list[int]]
    outputs: list[OutputResult] = field(default_factory=list)
    error: str = ""
    latency_ms: float | None = None
    replica: str = ""

    @property
    def passed(self) -> bool:
        """The request succeeded and every output is within tolerance."""
        return not self.error and bool(self.outputs) and all(o.passed for o in self.outputs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "model": self.model,
            "protocol": self.protocol,
            "case": self.case,
            "input_shapes": self.input_shapes,
            "passed": self.passed,
            "error": self.error,
            "latency_ms": self.latency_ms,
            **({"replica": self.replica} if self.replica else {}),
            "outputs": [o.to_dict() for o in self.outputs],
        }


@dataclass
class ReplicaResult:
    """One replica of a multi-replica check (:mod:`trtrepo.check.replicas`).

    Attributes:
        name: Its name (the endpoints file's NAME, else its first endpoint).
        http: Its HTTP ``host:port`` (None: not checked over HTTP).
        grpc: Its gRPC ``host:port``.
        requests: Requests it answered or failed.
        failed: Of those, how many failed.
        error: Why it was taken out of the run (unreachable, timed out); '' while it answered.
    """

    name: str
    http: str | None
    grpc: str | None
    requests: int = 0
    failed: int = 0
    error: str = ""

    @property
    def passed(self) -> bool:
        """It answered at least one request, every one matched, and it never became unreachable."""
        return not self.error and self.requests > 0 and self.failed == 0

    @property
    def status(self) -> str:
        """``ok``, ``FAIL`` (a request did not match) or ``UNREACHABLE`` (taken out of the run)."""
        return "UNREACHABLE" if self.error else ("ok" if self.passed else "FAIL")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"name": self.name, "http": self.http, "grpc": self.grpc, "passed": self.passed,
                "status": self.status, "requests": self.requests, "failed": self.failed, "error": self.error}


@dataclass
class CheckReport:
    """Everything one ``trtrepo check`` run found.

    Attributes:
        spec: The model.yaml checked.
        cases: One entry per model × protocol × case.
        endpoints: Protocol → ``host:port`` used.
        server_command: The tritonserver command line when the check started the server ('' otherwise).
        tolerances: Model → output → ``{"atol": .., "rtol": ..}``.
        environment: Versions (torch, numpy, tritonclient) and the eager device.
        batching: Model → protocol → ``{"requests": n, "executions": m}`` for the ragged burst (m < n: the
            dynamic batcher merged requests).
        duration_s: Wall time of the run.
        replicas: Per replica, when several were checked (empty for one server).
        ops: The per-op parity of ``check --ops`` (:mod:`trtrepo.check.ops_report`), None without it.
    """

    spec: str
    cases: list[CaseResult] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)
    server_command: str = ""
    tolerances: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    batching: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    duration_s: float = 0.0
    replicas: list[ReplicaResult] = field(default_factory=list)
    ops: OpsReport | None = None

    @property
    def passed(self) -> bool:
        """At least one case ran, every case passed, every replica (if several) passed and, with ``--ops``, every
        op probe."""
        return (bool(self.cases) and all(c.passed for c in self.cases) and all(r.passed for r in self.replicas)
                and (self.ops is None or self.ops.passed))

    def failures(self) -> list[CaseResult]:
        """The cases that failed."""
        return [c for c in self.cases if not c.passed]

    def worst(self) -> dict[tuple[str, str], OutputResult]:
        """(model, output) → the result with the largest absolute error across protocols and cases."""
        best: dict[tuple[str, str], OutputResult] = {}
        for case in self.cases:
            for out in case.outputs:
                key = (case.model, out.name)
                if key not in best or _rank(out) > _rank(best[key]):
                    best[key] = out
        return best

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "schema": REPORT_SCHEMA,
            "spec": self.spec,
            "passed": self.passed,
            "endpoints": self.endpoints,
            "server_command": self.server_command,
            "tolerances": self.tolerances,
            "environment": self.environment,
            "batching": self.batching,
            "duration_s": round(self.duration_s, 3),
            **({"replicas": [r.to_dict() for r in self.replicas]} if self.replicas else {}),
            "summary": {
                "cases": len(self.cases),
                "failed": len(self.failures()),
                "outputs": [
                    {"model": m, "output": o, "max_abs_error": r.max_abs_error, "max_rel_error": r.max_rel_error,
                     "passed": all(x.passed for c in self.cases if c.model == m for x in c.outputs if x.name == o)}
                    for (m, o), r in sorted(self.worst().items())
                ],
            },
            "cases": [c.to_dict() for c in self.cases],
            **({"ops": self.ops.to_dict()} if self.ops is not None else {}),
        }

    def to_json(self) -> str:
        """The report as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def write(self, path: str | Path) -> Path:
        """Write the JSON report to ``path`` (parent folders created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json() + "\n")
        return target

    def table(self) -> str:
        """Human-readable table: one line per case × output, failures spelled out, then a verdict."""
        header = ("model", "proto", "case", "inputs", "output", "max abs", "max rel", "atol/rtol", "worst at", "ok")
        rows: list[tuple[str, ...]] = []
        for c in self.cases:
            shapes = " ".join(f"{k}{v}".replace(" ", "") for k, v in c.input_shapes.items())
            case = f"{c.case}@{c.replica}" if c.replica else c.case
            if c.error or not c.outputs:
                rows.append((c.model, c.protocol, case, shapes, "-", "-", "-", "-", "-", "FAIL"))
                continue
            for o in c.outputs:
                where = "" if o.worst_index is None else "[" + ",".join(str(i) for i in o.worst_index) + "]"
                rows.append((c.model, c.protocol, case, shapes, o.name, f"{o.max_abs_error:.3g}",
                             f"{o.max_rel_error:.3g}", f"{o.atol:g}/{o.rtol:g}", where, "ok" if o.passed else "FAIL"))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        details = []
        for c in self.failures():
            if c.error:
                details.append(f"FAIL {c.model} {c.protocol} {c.case}{f' on {c.replica}' if c.replica else ''}: "
                               f"{c.error}")
            for o in c.outputs:
                if not o.passed:
                    details.append(f"FAIL {c.model} {c.protocol} {c.case} output {o.name}: {o.message}")
        verdict = (f"parity: PASS ({len(self.cases)} requests)" if not self.failures() and self.cases else
                   f"parity: FAIL ({len(self.failures())} of {len(self.cases)} requests)")
        ops = [self.ops.table()] if self.ops is not None else []
        return "\n".join([*lines, *details, *self._replica_lines(), verdict, *ops])

    def _replica_lines(self) -> list[str]:
        """The per-replica table (several replicas only), then one FAIL line per failed replica."""
        if not self.replicas:
            return []
        from trtrepo._table import render

        rows = [(r.name, r.http or "-", r.grpc or "-", r.requests, r.failed, r.status) for r in self.replicas]
        lines = ["", render(("replica", "http", "grpc", "requests", "failed", "ok"), rows, right=(3, 4))]
        bad = [r for r in self.replicas if not r.passed]
        lines += [f"FAIL replica {r.name}: " + (r.error or (f"{r.failed} of {r.requests} requests failed" if r.requests
                                                          else "answered no request")) for r in bad]
        return lines


def _rank(result: OutputResult) -> tuple[int, float]:
    return (0 if result.passed else 1, result.max_abs_error)
