"""perf_analyzer as the served sweep's load tool: finding it, its command line, its input data and its CSV.

A level perf_analyzer cannot measure (no stable measurement within its trials, no CSV row, a timeout) raises
:class:`PerfAnalyzerNoMeasurement`, and the sweep measures that level with trtrepo's own load loop instead.

Environment:
    TRTREPO_PERF_ANALYZER: path of perf_analyzer, or ``0`` to never use it (the own load loop then runs).
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trtrepo import settings
from trtrepo.bench.stats import LatencyStats
from trtrepo.errors import ServeError

LOGGER = logging.getLogger(__name__)

ENV_PERF_ANALYZER = settings.PERF_ANALYZER.name
PERF_ANALYZER_TIMEOUT_PAD = 60.0
# perf_analyzer's default 10 % stability window fails at high concurrency on a shared loopback (seen on an H200 at
# concurrency 16: "Failed to obtain stable measurement within 5 measurement windows"); p50/p99 of 400 requests are
# still meaningful with 25 %, and more trials give it more chances before trtrepo's own loop takes over.
PA_STABILITY_PERCENTAGE = 25
PA_MAX_TRIALS = 10


def find_perf_analyzer() -> str | None:
    """perf_analyzer from ``$TRTREPO_PERF_ANALYZER`` or PATH; None when absent or disabled (``=0``)."""
    value = settings.perf_analyzer()
    if value == "0":
        return None
    if value:
        return value if Path(value).is_file() and os.access(value, os.X_OK) else None
    return shutil.which("perf_analyzer")


@dataclass(frozen=True)
class PerfAnalyzerRow:
    """One concurrency level of a perf_analyzer CSV, latencies converted to milliseconds."""

    concurrency: int
    inferences_per_second: float
    latency: LatencyStats
    server_queue_ms: float | None
    server_compute_ms: float | None
    server_compute_input_ms: float | None = None
    server_compute_output_ms: float | None = None


# Columns whose sum is the average request latency when the CSV has no "Avg latency" column (older releases).
_PA_COMPONENTS = ("Client Send", "Network+Server Send/Recv", "Server Queue", "Server Compute Input",
                  "Server Compute Infer", "Server Compute Output", "Server Compute", "Client Recv")


def parse_perf_analyzer_csv(text: str) -> list[PerfAnalyzerRow]:
    """Parse perf_analyzer's ``-f`` CSV (latencies in microseconds), rows sorted by concurrency.

    Raises:
        ServeError: The header lacks the concurrency, throughput or percentile columns.
    """
    reader = csv.DictReader(io.StringIO(text.strip()))
    fields = set(reader.fieldnames or ())
    needed = ("Concurrency", "Inferences/Second", "p50 latency", "p90 latency", "p99 latency")
    missing = [c for c in needed if c not in fields]
    if missing:
        raise ServeError(f"perf_analyzer CSV lacks columns {missing} (has {sorted(fields)})",
                         hint=f"set {ENV_PERF_ANALYZER}=0 to use trtrepo's own load loop")
    rows = []
    for raw in reader:
        if not raw.get("Concurrency"):
            continue

        def us(col: str, raw: dict[str, str] = raw) -> float | None:
            value = raw.get(col)
            return float(value) / 1e3 if value not in (None, "") else None

        mean = us("Avg latency")
        if mean is None:
            parts = [us(c) for c in _PA_COMPONENTS if c in fields]
            mean = sum(p for p in parts if p is not None)
        stats = LatencyStats(p50_ms=us("p50 latency") or 0.0, p90_ms=us("p90 latency") or 0.0,
                             p99_ms=us("p99 latency") or 0.0, mean_ms=mean)
        rows.append(PerfAnalyzerRow(
            concurrency=int(float(raw["Concurrency"])),
            inferences_per_second=float(raw["Inferences/Second"]),
            latency=stats,
            server_queue_ms=us("Server Queue"),
            server_compute_ms=us("Server Compute Infer") if "Server Compute Infer" in fields else us("Server Compute"),
            server_compute_input_ms=us("Server Compute Input"),
            server_compute_output_ms=us("Server Compute Output"),
        ))
    return sorted(rows, key=lambda r: r.concurrency)


def perf_analyzer_input_data(arrays: Mapping[str, Any], triton_dtypes: Mapping[str, str],
                             batched: bool) -> dict[str, Any]:
    """perf_analyzer ``--input-data`` JSON holding the given tensors as base64 bytes.

    For a batching model (max_batch_size > 0) perf_analyzer takes one sample (no batch dim) and repeats it ``-b``
    times, so the first sample of each input is sent.

    Args:
        arrays: Input name → numpy array (batch dim included). BF16 inputs are given as the uint16 bit pattern.
        triton_dtypes: Input name → Triton datatype (``FP32``, ``BF16``, ...), for the record only.
        batched: True for a batching model.
    """
    entry = {}
    for name, arr in arrays.items():
        sample = arr[0] if batched else arr
        entry[name] = {"b64": base64.b64encode(sample.tobytes()).decode("ascii"), "shape": list(sample.shape)}
        LOGGER.debug("perf_analyzer input %s: %s %s", name, triton_dtypes.get(name), list(sample.shape))
    return {"data": [entry]}


def perf_analyzer_command(binary: str, model: str, version: int, url: str, concurrency: int, batch_size: int,
                          batched: bool, input_data: Path, csv_path: Path, requests: int, *,
                          shared_memory: str = "none", output_bytes: int | None = None,
                          protocol: str = "http") -> list[str]:
    """The perf_analyzer command line for one concurrency level.

    ``shared_memory`` (``system``/``cuda``) becomes ``--shared-memory``; ``output_bytes`` (the largest output of
    one request) its ``--output-shared-memory-size``, whose default (100 KiB) is too small for real outputs.
    """
    cmd = [binary, "-m", model, "-x", str(version), "-u", url, "-i", protocol,
           f"--concurrency-range={concurrency}:{concurrency}", f"--input-data={input_data}",
           "--measurement-mode=count_windows", f"--measurement-request-count={requests}",
           f"--stability-percentage={PA_STABILITY_PERCENTAGE}", f"--max-trials={PA_MAX_TRIALS}", "-f", str(csv_path)]
    if batched:
        cmd += ["-b", str(batch_size)]
    if shared_memory != "none":
        cmd.append(f"--shared-memory={shared_memory}")
        if output_bytes:
            cmd.append(f"--output-shared-memory-size={int(output_bytes)}")
    return cmd


class PerfAnalyzerNoMeasurement(ServeError):
    """perf_analyzer ran but gave no usable measurement (unstable, no CSV row, timed out): measure another way."""


_UNSTABLE = re.compile(r"failed to obtain stable measurement[^\n]*", re.IGNORECASE)


def perf_analyzer_unstable(output: str) -> str | None:
    """The line of perf_analyzer's output saying it could not stabilise the measurement, or None.

    perf_analyzer 2.60 prints ``Failed to obtain stable measurement within 5 measurement windows for concurrency 16.
    Please try to increase the --measurement-request-count.`` and may still exit 0.
    """
    match = _UNSTABLE.search(output)
    return match.group(0).strip() if match else None


def perf_analyzer_result(returncode: int, output: str, csv_text: str | None, command: str) -> PerfAnalyzerRow:
    """Decide what one perf_analyzer run measured.

    Args:
        returncode: Its exit status.
        output: Its stdout and stderr.
        csv_text: The ``-f`` CSV it wrote, None if it wrote none.
        command: The command line, for the reproduce hint.

    Returns:
        The measured row.

    Raises:
        PerfAnalyzerNoMeasurement: It could not stabilise, or exited 0 without a CSV row (the level can be
            measured by the own load loop).
        ServeError: It failed otherwise (bad arguments, model unknown, server unreachable): a real error.
    """
    hint = f"reproduce: {command}; or set {ENV_PERF_ANALYZER}=0"
    unstable = perf_analyzer_unstable(output)
    if unstable:
        raise PerfAnalyzerNoMeasurement(f"perf_analyzer: {unstable} (exit {returncode})", hint=hint)
    rows = parse_perf_analyzer_csv(csv_text) if csv_text and csv_text.strip() else []
    if returncode != 0:
        tail = " | ".join(output.strip().splitlines()[-3:])
        raise ServeError(f"perf_analyzer failed (exit {returncode}): {tail}", hint=hint)
    if not rows:
        tail = " | ".join(output.strip().splitlines()[-2:]) or "no output"
        raise PerfAnalyzerNoMeasurement(f"perf_analyzer exited 0 without a measurement ({tail})", hint=hint)
    return rows[0]


def run_perf_analyzer(cmd: list[str], csv_path: Path, timeout: float) -> PerfAnalyzerRow:
    """Run one perf_analyzer command (:func:`perf_analyzer_command`) and read its ``-f`` CSV at ``csv_path``.

    Raises:
        PerfAnalyzerNoMeasurement: No usable measurement (see :func:`perf_analyzer_result`) or a timeout.
        ServeError: perf_analyzer failed otherwise.
    """
    LOGGER.info("running: %s", " ".join(cmd))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise PerfAnalyzerNoMeasurement(f"perf_analyzer did not finish in {timeout:.0f} s",
                                        hint=f"reproduce: {' '.join(cmd)}") from None
    output = "\n".join(part for part in (proc.stdout, proc.stderr) if part)
    csv_text = csv_path.read_text() if csv_path.is_file() else None
    return perf_analyzer_result(proc.returncode, output, csv_text, " ".join(cmd))


