"""How bench reads a perf_analyzer run, and when a level falls back to trtrepo's own load loop.

perf_analyzer cannot be installed here, so these run small executables on PATH that behave as perf_analyzer 2.60
did on the GPU machine: print "Failed to obtain stable measurement ..." and exit 0 without a CSV row. What is
tested is trtrepo's handling of that behaviour (the decision and the parsing), not perf_analyzer.
"""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from trtrepo.bench import perf_analyzer as pa
from trtrepo.bench.perf_analyzer import (
    PerfAnalyzerNoMeasurement,
    find_perf_analyzer,
    perf_analyzer_command,
    perf_analyzer_result,
    perf_analyzer_unstable,
    run_perf_analyzer,
)
from trtrepo.errors import ServeError

UNSTABLE = ("Failed to obtain stable measurement within 5 measurement windows for concurrency 16. Please try to "
            "increase the --measurement-request-count.")
SEEN_OUTPUT = f""" Successfully read data for 1 stream/streams with 1 step/steps.
*** Measurement Settings ***
  Batch size: 8
  Service Kind: TRITON
  Using "count_windows" mode for stabilization
  Stabilizing using p50 latency and throughput
  Minimum number of samples in each window: 400
Request concurrency: 16
{UNSTABLE}
"""
CSV = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,\
request/response,response wait
16,12000.5,10,100,20,30,400,5,1,600,700,750,900,620,110,500
"""


def _fake(folder: Path, body: str) -> Path:
    """An executable ``perf_analyzer`` in ``folder``: Python running ``body`` with ``args`` = argv[1:]."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "perf_analyzer"
    path.write_text(f"#!{sys.executable}\nimport sys\nargs = sys.argv[1:]\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def _command(binary: str | Path, tmp_path: Path) -> tuple[list[str], Path]:
    csv_path = tmp_path / "perf.csv"
    cmd = perf_analyzer_command(str(binary), "gelu_block", 1, "127.0.0.1:8000", 16, 8, True, tmp_path / "in.json",
                                csv_path, 400)
    return cmd, csv_path


def test_unstable_line_is_found_in_the_output() -> None:
    assert perf_analyzer_unstable(SEEN_OUTPUT) == UNSTABLE
    assert perf_analyzer_unstable("FAILED TO OBTAIN STABLE MEASUREMENT for concurrency 4") is not None
    assert perf_analyzer_unstable(" Successfully read data\nRequest concurrency: 16\n  Client: ...") is None
    assert perf_analyzer_unstable("") is None


def test_command_is_tolerant_of_noisy_levels(tmp_path: Path) -> None:
    cmd, _ = _command("/bin/pa", tmp_path)
    assert f"--stability-percentage={pa.PA_STABILITY_PERCENTAGE}" in cmd
    assert f"--max-trials={pa.PA_MAX_TRIALS}" in cmd
    assert pa.PA_STABILITY_PERCENTAGE > 10 and pa.PA_MAX_TRIALS > 5  # perf_analyzer's defaults failed


def test_decision_unstable_exit_0_falls_back() -> None:
    with pytest.raises(PerfAnalyzerNoMeasurement, match="Failed to obtain stable measurement") as info:
        perf_analyzer_result(0, SEEN_OUTPUT, None, "perf_analyzer -m gelu_block")
    assert "exit 0" in info.value.message and "\n" not in info.value.message
    assert "perf_analyzer -m gelu_block" in (info.value.hint or "")


def test_decision_unstable_wins_over_a_csv_row() -> None:
    with pytest.raises(PerfAnalyzerNoMeasurement):  # a row written next to that line is not a stable measurement
        perf_analyzer_result(0, SEEN_OUTPUT, CSV, "pa")


def test_decision_exit_0_without_a_row_falls_back() -> None:
    with pytest.raises(PerfAnalyzerNoMeasurement, match="exited 0 without a measurement"):
        perf_analyzer_result(0, "Request concurrency: 16\n", None, "pa")
    with pytest.raises(PerfAnalyzerNoMeasurement):
        perf_analyzer_result(0, "", CSV.splitlines()[0] + "\n", "pa")  # header only


def test_decision_other_failures_still_raise() -> None:
    with pytest.raises(ServeError, match=r"perf_analyzer failed \(exit 1\): .*unknown model") as info:
        perf_analyzer_result(1, "error: failed to get model metadata: unknown model 'gelu_block'", None, "pa")
    assert not isinstance(info.value, PerfAnalyzerNoMeasurement)


def test_decision_good_csv_is_the_measurement() -> None:
    row = perf_analyzer_result(0, "Request concurrency: 16\n", CSV, "pa")
    assert row.concurrency == 16
    assert row.inferences_per_second == pytest.approx(12000.5)
    assert row.latency.p50_ms == pytest.approx(0.6) and row.latency.p99_ms == pytest.approx(0.9)


def test_fake_on_path_printing_the_failure_and_exiting_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake(tmp_path / "bin", f"""
        print({SEEN_OUTPUT!r})
        sys.exit(0)
    """)
    monkeypatch.delenv(pa.ENV_PERF_ANALYZER, raising=False)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    found = find_perf_analyzer()
    assert found == str(fake)
    cmd, csv_path = _command(found, tmp_path)
    with pytest.raises(PerfAnalyzerNoMeasurement, match="for concurrency 16") as info:
        run_perf_analyzer(cmd, csv_path, timeout=60)
    assert info.value.message.startswith("perf_analyzer: Failed to obtain stable measurement")


def test_fake_writing_its_csv_is_measured(tmp_path: Path) -> None:
    fake = _fake(tmp_path / "bin", f"""
        assert any(a.startswith("--stability-percentage=") for a in args), args
        with open(args[args.index("-f") + 1], "w") as f:
            f.write({CSV!r})
        print("Request concurrency: 16")
    """)
    cmd, csv_path = _command(fake, tmp_path)
    row = run_perf_analyzer(cmd, csv_path, timeout=60)
    assert (row.concurrency, row.inferences_per_second) == (16, pytest.approx(12000.5))


def test_fake_that_hangs_is_a_fallback_not_a_hang(tmp_path: Path) -> None:
    fake = _fake(tmp_path / "bin", """
        import time
        time.sleep(30)
    """)
    cmd, csv_path = _command(fake, tmp_path)
    with pytest.raises(PerfAnalyzerNoMeasurement, match="did not finish in 1 s"):
        run_perf_analyzer(cmd, csv_path, timeout=1)


def test_fake_failing_for_real_raises(tmp_path: Path) -> None:
    fake = _fake(tmp_path / "bin", """
        print("error: failed to create client: connection refused", file=sys.stderr)
        sys.exit(99)
    """)
    cmd, csv_path = _command(fake, tmp_path)
    with pytest.raises(ServeError, match="exit 99") as info:
        run_perf_analyzer(cmd, csv_path, timeout=60)
    assert not isinstance(info.value, PerfAnalyzerNoMeasurement)
