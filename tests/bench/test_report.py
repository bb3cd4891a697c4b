"""BenchReport table/JSON, perf_analyzer CSV and input data, batch-size validation, plots (no server needed)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from trtrepo.bench import perf_analyzer as pa
from trtrepo.bench.inputs import batch_sizes_for, bench_inputs
from trtrepo.bench.perf_analyzer import parse_perf_analyzer_csv, perf_analyzer_command, perf_analyzer_input_data
from trtrepo.bench.plots import parity_errors, write_plots
from trtrepo.bench.report import REPORT_SCHEMA, TOOL_OWN_LOOP, BenchReport, BenchRow
from trtrepo.bench.stats import LatencyStats
from trtrepo.errors import ServeError, SpecError
from trtrepo.spec import parse_spec

# Real perf_analyzer -f CSV layouts (header as documented for 2.2x releases; the newer one adds Avg latency).
PA_CSV_OLD = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency
4,84.2,279,1604,33669,233,11731,18,1,47045,56545,59225,64886
1,69.2,225,2148,64,206,11781,19,0,13891,18795,19753,21018
"""
PA_CSV_NEW = """Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,\
Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,\
request/response,response wait
2,1500.5,10,100,20,30,400,5,1,600,700,750,900,620,110,500
"""


def _row(model: str = "m", conc: int = 1, p50: float = 2.0, eager_p50: float | None = 0.5) -> BenchRow:
    served = LatencyStats(p50_ms=p50, p90_ms=p50 * 1.5, p99_ms=p50 * 2, mean_ms=p50, count=100, min_ms=1.0,
                          max_ms=9.0)
    eager = LatencyStats(p50_ms=eager_p50, p90_ms=eager_p50, p99_ms=eager_p50 * 2, mean_ms=eager_p50) \
        if eager_p50 else None
    return BenchRow(model=model, batch_size=8, concurrency=conc, client=TOOL_OWN_LOOP, served=served,
                    fallback="perf_analyzer: unstable" if conc == 4 else None,
                    served_ips=4000.0, eager=eager, eager_ips=16000.0 if eager else None, server_queue_ms=0.1)


def test_row_ratios() -> None:
    row = _row(p50=2.0, eager_p50=0.5)
    assert row.p50_ratio == pytest.approx(4.0)
    assert row.p99_ratio == pytest.approx(4.0)
    assert _row(eager_p50=None).p50_ratio is None


def test_table_has_one_aligned_line_per_row() -> None:
    report = BenchReport(spec="model.yaml", url="127.0.0.1:8000", device="cpu",
                         rows=[_row(conc=1), _row(model="longer_model_name", conc=16, p50=3.25, eager_p50=None)])
    lines = report.table().splitlines()
    assert len(lines) == 4
    assert lines[0].split()[:3] == ["model", "batch", "conc"]
    assert set(lines[1]) <= {"-", " "}
    assert len({len(line) for line in lines}) == 1  # fixed width
    first = lines[2].split()
    assert first[0] == "m" and first[2] == "1" and "2.000" in first and "4.00" in first
    second = lines[3].split()
    assert second[0] == "longer_model_name" and "3.250" in second and "-" in second


def test_json_round_trip(tmp_path: Path) -> None:
    report = BenchReport(spec="model.yaml", url="u", device="cuda:0 (H100)", environment={"torch": "2.11"},
                         rows=[_row(), _row(conc=4, eager_p50=None)], notes=["n"])
    path = report.write(tmp_path / "sub" / "bench.json")
    data = json.loads(path.read_text())
    assert data["schema"] == REPORT_SCHEMA
    assert data["rows"][0]["p50_ratio"] == pytest.approx(4.0)
    assert data["rows"][1]["eager"] is None
    again = BenchReport.from_dict(data)
    assert again.rows == report.rows
    assert again.environment == {"torch": "2.11"}


def test_parse_perf_analyzer_csv_old_layout() -> None:
    rows = parse_perf_analyzer_csv(PA_CSV_OLD)
    assert [r.concurrency for r in rows] == [1, 4]  # sorted
    first = rows[0]
    assert first.inferences_per_second == pytest.approx(69.2)
    assert first.latency.p50_ms == pytest.approx(13.891)
    assert first.latency.p90_ms == pytest.approx(18.795)
    assert first.latency.p99_ms == pytest.approx(21.018)
    # no Avg latency column: the sum of the components
    assert first.latency.mean_ms == pytest.approx((225 + 2148 + 64 + 206 + 11781 + 19 + 0) / 1e3)
    assert first.server_queue_ms == pytest.approx(0.064)
    assert first.server_compute_ms == pytest.approx(11.781)


def test_parse_perf_analyzer_csv_new_layout_uses_avg_latency() -> None:
    (row,) = parse_perf_analyzer_csv(PA_CSV_NEW)
    assert row.concurrency == 2
    assert row.latency.mean_ms == pytest.approx(0.62)
    assert row.latency.p99_ms == pytest.approx(0.9)


def test_parse_perf_analyzer_csv_rejects_foreign_csv() -> None:
    with pytest.raises(ServeError, match="lacks columns"):
        parse_perf_analyzer_csv("a,b\n1,2\n")


def test_perf_analyzer_input_data_is_base64_of_the_sample() -> None:
    np = pytest.importorskip("numpy")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    batched = perf_analyzer_input_data({"x": x}, {"x": "FP32"}, batched=True)
    entry = batched["data"][0]["x"]
    assert entry["shape"] == [4]
    assert np.frombuffer(base64.b64decode(entry["b64"]), dtype=np.float32).tolist() == [0, 1, 2, 3]
    full = perf_analyzer_input_data({"x": x}, {"x": "FP32"}, batched=False)["data"][0]["x"]
    assert full["shape"] == [3, 4]
    assert len(base64.b64decode(full["b64"])) == 48


def test_perf_analyzer_command(tmp_path: Path) -> None:
    cmd = perf_analyzer_command("/bin/pa", "gelu", 2, "127.0.0.1:8000", 4, 8, True, tmp_path / "in.json",
                                tmp_path / "o.csv", 100)
    assert cmd[:7] == ["/bin/pa", "-m", "gelu", "-x", "2", "-u", "127.0.0.1:8000"]
    assert "--concurrency-range=4:4" in cmd and "--measurement-request-count=100" in cmd
    assert cmd[-2:] == ["-b", "8"]
    unbatched = perf_analyzer_command("/bin/pa", "gelu", 1, "h:1", 1, 8, False, tmp_path / "i", tmp_path / "o", 5)
    assert "-b" not in unbatched


def test_find_perf_analyzer_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(pa.ENV_PERF_ANALYZER, "0")
    assert pa.find_perf_analyzer() is None
    exe = tmp_path / "perf_analyzer"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv(pa.ENV_PERF_ANALYZER, str(exe))
    assert pa.find_perf_analyzer() == str(exe)
    monkeypatch.setenv(pa.ENV_PERF_ANALYZER, str(tmp_path / "missing"))
    assert pa.find_perf_analyzer() is None


def _spec(tmp_path: Path, max_batch: int = 16, dim0: int = -1):
    (tmp_path / "net.py").write_text("def build():\n    raise NotImplementedError\n")
    shape = [dim0, 32]
    x = {"name": "x", "dtype": "fp32", "shape": shape}
    if dim0 == -1:
        x.update(min=[1, 32], opt=[4, 32], max=[32, 32])
    raw = {"models": [{"name": "m", "source": "net:build", "inputs": [x], "outputs": ["y"],
                       "triton": {"max_batch_size": max_batch}}]}
    return parse_spec(raw, tmp_path / "model.yaml")


def test_batch_sizes_default_to_opt(tmp_path: Path) -> None:
    model = _spec(tmp_path).models[0]
    assert batch_sizes_for(model, None) == (4,)
    assert batch_sizes_for(model, [1, 8, 8, 16]) == (1, 8, 16)


def test_batch_sizes_outside_profile_or_max_batch(tmp_path: Path) -> None:
    model = _spec(tmp_path, max_batch=16).models[0]
    with pytest.raises(SpecError, match=r"inputs\.x: batch size 64 is outside dim 0 range 1\.\.32"):
        batch_sizes_for(model, [64])
    with pytest.raises(SpecError, match="max_batch_size: batch size 20 is above 16"):
        batch_sizes_for(model, [20])


def test_batch_sizes_static_dim0(tmp_path: Path) -> None:
    model = _spec(tmp_path, max_batch=0, dim0=2).models[0]
    assert batch_sizes_for(model, None) == (2,)
    assert batch_sizes_for(model, [2]) == (2,)
    with pytest.raises(SpecError, match="dim 0 is static"):
        batch_sizes_for(model, [4])


def test_bench_inputs_set_dim0_and_are_seeded(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    model = _spec(tmp_path).models[0]
    (a,) = bench_inputs(model, 8, seed=3)
    (b,) = bench_inputs(model, 8, seed=3)
    (c,) = bench_inputs(model, 8, seed=4)
    assert tuple(a.shape) == (8, 32)
    assert a.equal(b) and not a.equal(c)


def test_parity_errors_walks_nested_reports() -> None:
    data = {"models": [{"outputs": [{"name": "y", "max_abs_error": 1e-4}, {"name": "z", "max_abs_error": 0.0}]},
                       {"samples": [{"max_abs_err": 2e-3, "nested": {"abs_error": float("nan")}}]}],
            "max_abs_error": True}
    assert sorted(parity_errors(data)) == [0.0, 1e-4, 2e-3]


def test_plots_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = BenchReport(spec="s", url="u", device="cpu", rows=[_row(conc=1), _row(conc=4, p50=3.0)])
    parity = tmp_path / "check.json"
    parity.write_text(json.dumps({"outputs": [{"max_abs_error": 10.0 ** -k} for k in range(3, 9)]}))
    paths = write_plots(report, tmp_path / "plots", parity_report=parity)
    assert [Path(p).name for p in paths] == ["bench_latency.png", "parity_errors.png"]
    for p in paths:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
