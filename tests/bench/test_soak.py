"""The soak's rules without a server: options, restart points, malformed requests, clean errors, the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtrepo.bench.soak import (
    BATCH_TOO_LARGE,
    WRONG_DTYPE,
    WRONG_NAME,
    WRONG_RANK,
    BadKind,
    Restart,
    RestartWindows,
    SoakOptions,
    SoakReport,
    bad_kinds,
    bad_request,
    names_problem,
    restart_points,
    unavailable_answer,
)
from trtrepo.bench.stats import LatencyStats
from trtrepo.errors import SpecError
from trtrepo.spec import parse_spec

np = pytest.importorskip("numpy")


def _model(tmp_path: Path, max_batch: int = 8):
    (tmp_path / "net.py").write_text("def build():\n    raise NotImplementedError\n")
    raw = {"models": [{"name": "m", "source": "net:build",
                       "inputs": [{"name": "x", "shape": [-1, 4], "min": [1, 4], "opt": [2, 4], "max": [8, 4]},
                                  {"name": "ids", "dtype": "int64", "shape": [-1, 4], "min": [1, 4], "opt": [2, 4],
                                   "max": [8, 4]}],
                       "outputs": ["y"], "triton": {"max_batch_size": max_batch}}]}
    return parse_spec(raw, tmp_path / "model.yaml").models[0]


@pytest.mark.parametrize(("options", "message"), [
    (SoakOptions(requests=0), "--requests: must be >= 1"),
    (SoakOptions(bad_every=1), "--bad-every: must be >= 2"),
    (SoakOptions(faults=True, url="127.0.0.1:8001"), "--faults restarts the server: trtrepo must start it"),
    (SoakOptions(url="10.0.0.7:8001"), "not a loopback address"),
    (SoakOptions(restart_mode="reboot"), "--restart-mode: 'reboot'"),
    (SoakOptions(batch_sizes=[0]), "--batch-sizes"),
])
def test_options_validation(options: SoakOptions, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        options.validate()
    SoakOptions(url="127.0.0.1:8001").validate()


def test_restart_points_are_spread_and_inside_the_run() -> None:
    assert restart_points(100, 1) == [50]
    assert restart_points(90, 2) == [30, 60]
    assert restart_points(3, 5) == [1, 2]  # never at 0, never at the end, no duplicates
    assert restart_points(100, 0) == []


def test_bad_requests_are_each_wrong_in_one_way(tmp_path: Path) -> None:
    model = _model(tmp_path)
    good = {"x": np.ones((2, 4), np.float32), "ids": np.arange(8, dtype=np.int64).reshape(2, 4)}
    types = {"x": "FP32", "ids": "INT64"}
    assert bad_kinds(model) == [WRONG_NAME, WRONG_DTYPE, WRONG_RANK, BATCH_TOO_LARGE]
    assert BATCH_TOO_LARGE not in bad_kinds(_model(tmp_path, max_batch=0))

    inputs, dtypes, word = bad_request(WRONG_NAME, model, good, types)
    assert set(inputs) == {"x_unknown", "ids"} and dtypes == {"x_unknown": "FP32", "ids": "INT64"}
    assert word == "x_unknown"
    inputs, dtypes, word = bad_request(WRONG_DTYPE, model, good, types)
    assert inputs["x"].dtype == np.float64 and dtypes["x"] == "FP64" == word
    inputs, _, word = bad_request(WRONG_RANK, model, good, types)
    assert inputs["x"].shape == (2, 4, 1) and inputs["ids"].shape == (2, 4) and word == "x"
    inputs, _, word = bad_request(BATCH_TOO_LARGE, model, good, types)
    assert inputs["x"].shape == (9, 4) and inputs["ids"].shape == (9, 4) and word == "batch"
    assert good["x"].shape == (2, 4) and set(good) == {"x", "ids"}  # the good request is untouched
    with pytest.raises(ValueError, match="unknown malformed request kind"):
        bad_request("too-polite", model, good, types)


def test_clean_error_names_the_problem_on_one_line() -> None:
    seen = "[StatusCode.INVALID_ARGUMENT] unexpected inference input 'x_unknown' for model 'annotated_block'"
    assert names_problem(seen, "x_unknown")
    assert names_problem("[400] inference request batch-size must be <= 8 for 'm'", "batch")
    assert not names_problem("[400] something went wrong", "x_unknown")
    assert not names_problem("Traceback (most recent call last):\n  x_unknown", "x_unknown")


def test_unavailable_answers_are_told_apart_from_bad_requests() -> None:
    assert unavailable_answer("[StatusCode.UNAVAILABLE] Server is shutting down")
    assert unavailable_answer("Request for unknown model: 'm' is not found")
    assert not unavailable_answer("unexpected inference input 'x_unknown' for model 'm'")


def test_restart_windows() -> None:
    windows = RestartWindows()
    assert not windows.covers(5.0)
    windows.begin(10.0)
    assert windows.covers(11.0) and not windows.covers(9.0)
    windows.end(20.0, grace=2.0)
    assert windows.covers(21.5) and not windows.covers(22.5)


def _report(**counts: int) -> SoakReport:
    report = SoakReport(model="m", protocol="grpc", concurrency=4, batch_sizes=[1, 2], requested=100, faults=True,
                        completed=100, outputs_checked=2, wall_s=4.0,
                        latency=LatencyStats(p50_ms=3.0, p90_ms=4.0, p99_ms=9.0, mean_ms=3.2, count=100, max_ms=12.0))
    report.bad = {WRONG_NAME: BadKind(sent=10, clean=10)}
    report.restarts = [Restart(after_requests=50, down_s=6.5, ok=True)]
    for key, value in counts.items():
        setattr(report, key, value)
    return report


def test_verdict_and_its_reasons() -> None:
    ok = _report(retried=4, unavailable_attempts=40)
    assert ok.passed and ok.problems() == [] and ok.throughput_rps == 25.0  # retried requests are not losses
    assert _report(lost=1).problems() == ["1 good requests lost"]
    assert _report(good_failed=2, mismatches=1).problems() == ["2 good requests failed",
                                                               "1 answers differed from eager"]
    assert _report(transport_errors_outside_restart=3).problems() == ["3 transport errors outside a restart"]
    assert _report(completed=90).problems() == ["90/100 good requests completed"]
    bad = _report()
    bad.bad[WRONG_RANK] = BadKind(sent=10, clean=8, accepted=1, unclear=1)
    assert bad.problems() == ["1 wrong-rank requests were accepted", "1 wrong-rank errors do not name the problem"]
    down = _report()
    down.restarts.append(Restart(after_requests=80, down_s=120.0, ok=False, error="not ready after 120 s"))
    down.server_alive_at_end = False
    assert down.problems() == ["restart after 80 requests failed: not ready after 120 s", "the server died"]


def test_table_json_and_markdown() -> None:
    report = _report(retried=4, unavailable_attempts=40)
    table = report.table()
    assert table.endswith("soak: PASS") and "wrong-name" in table and "restart after" in table
    data = report.to_dict()
    assert data["schema"] == "trtrepo-soak/1" and data["passed"] and data["bad"]["wrong-name"]["clean"] == 10
    assert data["restarts"] == [{"after_requests": 50, "down_s": 6.5, "ok": True, "error": None}]
    md = report.markdown("trtrepo bench soak model.yaml --faults")
    assert "| 100 | 100 | 0 | 0 | 4 | 2 | 0 | 4.00 | 25.0 |" in md
    assert "Verdict: PASS." in md and "`trtrepo bench soak model.yaml --faults`" in md
    failing = _report(lost=1)
    assert failing.table().endswith("soak: FAIL — 1 good requests lost")
