"""``trtrepo check --ops`` with a real tritonserver: every custom op of the examples probed alone over HTTP and gRPC
(torch target, CPU), and a served copy of the gelu repository with a deliberately wrong op library
(:mod:`trtrepo.conformance.broken` ``wrong-cpu-reference``: bias_gelu's C++ CPU reference scales by 0.55) fails the
model check while ``--ops`` names bias_gelu as the first op that drifts.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from trtrepo.cli import main

pytestmark = pytest.mark.triton

REPO = Path(__file__).resolve().parents[2]
OPS = ["trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm"]  # both examples, in graph order

SEQ_SPEC = """\
repository: repo
plugin_sources: [{plugin_src}]
models:
  - name: seq_block
    source: examples.seq_block.model:build
    precision: fp16
    target: torch
    inputs:
      - {{name: x, dtype: fp16, shape: [-1, -1, 64], min: [1, 1, 64], opt: [4, 32, 64], max: [8, 128, 64]}}
    outputs: [out, residual_out]
    triton: {{max_batch_size: 8}}
    parity: {{samples: 1, seed: 1, ragged_requests: 0}}
"""


@pytest.fixture(autouse=True)
def _tritonserver(tritonserver_available: None) -> None:
    """Every test here needs a tritonserver and tritonclient (skips with the reason otherwise)."""


def test_gelu_example_ops_pass_and_every_op_is_reported(gelu_project: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from trtrepo._hashing import hash_tree

    def tree() -> dict[str, str]:  # the Python backend's stub writes __pycache__ into what it serves: not ours
        return {k: v for k, v in hash_tree(gelu_project.parent).items() if "__pycache__" not in k}

    before = tree()
    report = tmp_path / "report.json"
    code = main(["check", str(gelu_project), "--ops", "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert tree() == before  # the probe repository never went into the user's folder
    data = json.loads(report.read_text())
    assert data["passed"] is True
    (model,) = data["ops"]["models"]
    assert model["order"] == OPS and model["first_drift"] is None
    for op in model["ops"]:
        assert op["status"] == "pass" and op["target"] == "torch"
        assert {c["protocol"] for c in op["calls"]} == {"http", "grpc"}
        assert op["captured"] >= 3  # min, opt, max at least (distinct shapes)
        assert {c["shapes"][0][0] for c in op["calls"]} >= {1, 8, 32}  # the profile's min, opt, max batches
        for call in op["calls"]:
            for o in call["outputs"]:
                assert o["passed"] and o["nan_served"] == 0 and o["cosine"] > 0.999999
    assert set(model["ops"][1]["worst"]) == {"output_out", "output_residual_out"}
    assert "served repository" in data["ops"]["library"]  # the probes loaded the served model's library
    assert model["noise_floor"]["y"]["rerun"]["max_abs"] == 0.0  # eager on CPU is deterministic
    assert "first op that drifts: gelu_block: none" in out and "ops: PASS (2 ops" in out


def test_seq_example_fp16_ops_pass_with_noise_floor(tmp_path_factory: pytest.TempPathFactory,
                                                    serve_cache: Path) -> None:
    import sys

    from trtrepo.build import build
    from trtrepo.check import run_check

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    root = tmp_path_factory.mktemp("seq_project")
    spec = root / "model.yaml"
    spec.write_text(textwrap.dedent(SEQ_SPEC.format(plugin_src=REPO / "plugin_src")))
    build(spec)
    report = run_check(spec, ops=True, report_path=root / "report.json", progress=lambda _: None)
    assert report.passed, report.table()
    assert report.ops is not None
    (model,) = report.ops.models
    assert [o.op for o in model.ops] == OPS
    norm = model.ops[1]
    assert norm.outputs == ["output_out", "output_residual_out"]  # a two-output op, both compared
    assert {len(c.shapes[0]) for c in norm.calls} == {3}  # [B, S, 64]: two dynamic dims in one probe
    assert len({tuple(c.shapes[0][:2]) for c in norm.calls}) == norm.captured > 1
    floor = model.noise_floor["out"]
    assert floor["rerun"]["max_abs"] == 0.0 and floor["fp32"]["max_abs"] > 0.0  # fp16 rounding is the floor
    assert norm.noise["output_out"]["fp32"] > 0.0


@pytest.fixture(scope="module")
def broken_library(tmp_path_factory: pytest.TempPathFactory, serve_cache: Path) -> Path:
    """The op library built from a copy of plugin_src whose bias_gelu CPU reference is deliberately wrong."""
    from trtrepo.conformance.broken import make_broken
    from trtrepo.ops.build import build_ops

    root = make_broken("wrong-cpu-reference", REPO / "plugin_src", tmp_path_factory.mktemp("broken") / "plugin_src")
    built = build_ops([root], serve_cache, with_cuda=False)  # built, not loaded: eager keeps the good library
    return built.torch_library


def test_broken_op_library_fails_the_model_and_is_named_first_to_drift(gelu_project: Path, gelu_repo_copy: Path,
                                                                       broken_library: Path, tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    served = gelu_repo_copy / "gelu_block" / "plugins" / broken_library.name
    assert served.is_file()
    shutil.copy2(broken_library, served)
    report = tmp_path / "report.json"
    code = main(["check", str(gelu_project), "--repository", str(gelu_repo_copy), "--allow-modified", "--ops",
                 "--protocol", "http", "--report", str(report), "--plot", str(tmp_path / "ops.png")])
    out = capsys.readouterr().out
    assert code == 1, out
    data = json.loads(report.read_text())
    assert data["summary"]["failed"] > 0  # the model itself fails
    (model,) = data["ops"]["models"]
    assert model["model_passed"] is False
    assert model["first_drift"]["op"] == "trtrepo::bias_gelu" and model["first_drift"]["position"] == 1
    status = {o["op"]: o["status"] for o in model["ops"]}
    assert status == {"trtrepo::bias_gelu": "FAIL", "trtrepo::fused_add_rms_norm": "pass"}
    worst = model["ops"][0]["worst"]["output_out"]
    assert 0.05 < worst["max_rel"] < 0.15  # 0.55 instead of 0.5: 10% too large
    assert worst["fraction_outside"] > 0.5
    assert "first op that drifts: gelu_block: trtrepo::bias_gelu (#1" in out
    assert (tmp_path / "ops.png").stat().st_size > 0
