"""A user's own ops, end to end as a user runs them: an op with a shape rule in a root outside the project (the op
folder only) and an op written by ``trtrepo ops new``, in models together with the project's ops; ``trtrepo build``
(torch target) and ``trtrepo check`` against a real tritonserver over HTTP and gRPC. A kernel that breaks its shape
rule is named as the culprit (exit 1), not reported as a trtrepo bug."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from trtrepo import deps
from trtrepo.cli import main

REPO = Path(__file__).resolve().parents[2]
OUTSIDE = Path(__file__).parent / "cases" / "outside"


def _tritonserver_missing() -> str | None:
    from trtrepo.errors import ServeError
    from trtrepo.serve import find_tritonserver

    try:
        find_tritonserver()
    except ServeError as exc:
        return str(exc)
    return None if deps.is_installed("tritonclient") else "tritonclient is not installed"


pytestmark = [pytest.mark.integration, pytest.mark.triton,
              pytest.mark.skipif(deps.find_nvcc() is None, reason="nvcc not found: the op build also makes PTX")]

MODELS = '''\
import torch


class Pool(torch.nn.Module):
    """Linear -> trtrepo::bias_gelu (plugin_src) -> mylab::softclip_pool (outside root): [B, 16] -> [B, 2]."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(3)
        self.lin = torch.nn.Linear(16, 16)
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(16, 16, generator=gen) / 4)
            self.lin.bias.zero_()
        self.bias = torch.nn.Parameter(0.1 * torch.randn(16, generator=gen))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mylab.softclip_pool(torch.ops.trtrepo.bias_gelu(self.lin(x), self.bias), 2.0, 0.1)


class Scaled(torch.nn.Module):
    """newlab::scale_it (written by trtrepo ops new) then trtrepo::silu_and_mul: [B, 8] -> [B, 4]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.trtrepo.silu_and_mul(torch.ops.newlab.scale_it(x, 0.5))


def pool() -> torch.nn.Module:
    return Pool().eval()


def scaled() -> torch.nn.Module:
    return Scaled().eval()
'''

SPEC = """\
repository: repo
plugin_sources: [{plugin_src}, my_ops, new_ops]
models:
  - name: pool
    source: models:pool
    target: torch
    inputs: [{{name: x, shape: [-1, 16], min: [1, 16], opt: [4, 16], max: [8, 16]}}]
    outputs: [y]
    triton: {{max_batch_size: 8, dynamic_batching: {{max_queue_delay_microseconds: 20000}}}}
    parity: {{samples: 2, ragged_requests: 4}}
  - name: scaled
    source: models:scaled
    target: torch
    inputs: [{{name: x, shape: [-1, 8], min: [1, 8], opt: [2, 8], max: [4, 8]}}]
    outputs: [y]
    parity: {{samples: 2}}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user_project")
    shutil.copytree(OUTSIDE, root / "my_ops")
    assert main(["ops", "new", "newlab::scale_it", "--dir", str(root / "new_ops")]) == 0
    (root / "models.py").write_text(MODELS)
    (root / "model.yaml").write_text(textwrap.dedent(SPEC.format(plugin_src=REPO / "plugin_src")))
    return root


def test_user_ops_build_serve_and_match_eager(project: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = _tritonserver_missing()
    if missing:
        pytest.skip(missing)
    assert main(["build", str(project / "model.yaml")]) == 0, capsys.readouterr().err
    repo = project / "repo"
    libraries = sorted(p.name for p in (repo / "pool" / "plugins").iterdir())
    assert libraries == ["libtrtrepo_ops_my_ops.so", "libtrtrepo_ops_new_ops.so", "libtrtrepo_ops_plugin_src.so"]
    manifest = json.loads((repo / "trtrepo-manifest.json").read_text())
    assert manifest["models"]["pool"]["outputs"][0]["shape"] == [-1, 2]  # the rule x[:-1] + [2], batch kept dynamic
    assert sorted(manifest["models"]["pool"]["custom_ops"]) == ["mylab::softclip_pool", "trtrepo::bias_gelu"]
    assert manifest["models"]["scaled"]["outputs"][0]["shape"] == [-1, 4]
    # newlab::scale_it has no C++ CPU reference: its decomposition ships with the model and serves it on CPU
    python_ops = repo / "scaled" / "1" / "python_ops"
    assert sorted(p.name for p in python_ops.iterdir()) == ["_shape_check.py", "newlab__scale_it.json",
                                                            "newlab__scale_it.py"]
    assert json.loads((python_ops / "newlab__scale_it.json").read_text())["inputs"] == [["x", ["...", [1, "D"]]]]
    assert 'key: "trtrepo_python_cpu_ops"' in (repo / "scaled" / "config.pbtxt").read_text()
    assert not (repo / "pool" / "1" / "python_ops").exists()  # its ops all have C++ CPU kernels
    # the sources generated from op.yaml are kept with the model's build logs, readable
    generated = repo / "scaled" / "logs" / "ops" / "gen" / "newlab__scale_it" / "binding.cpp"
    assert 'm.def("scale_it(Tensor x, float alpha=1.0) -> Tensor")' in generated.read_text()
    assert (repo / "pool" / "logs" / "ops" / "torch_library-libtrtrepo_ops_my_ops.build.log").is_file()

    report = tmp_path / "parity.json"
    code = main(["check", str(project / "model.yaml"), "--report", str(report)])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads(report.read_text())
    assert data["passed"] and {c["model"] for c in data["cases"]} == {"pool", "scaled"}
    assert {c["protocol"] for c in data["cases"]} == {"http", "grpc"}


def test_swiglu_example_builds_and_matches_eager(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/swiglu_block (trtrepo::silu_and_mul: an output shape that differs from its input's), served."""
    missing = _tritonserver_missing()
    if missing:
        pytest.skip(missing)
    spec = REPO / "examples" / "swiglu_block" / "model.yaml"
    out = tmp_path / "repo"
    assert main(["build", str(spec), "--target", "torch", "--out", str(out)]) == 0, capsys.readouterr().err
    assert json.loads((out / "trtrepo-manifest.json").read_text())["models"]["swiglu_block"]["custom_ops"] == [
        "trtrepo::fused_add_rms_norm", "trtrepo::silu_and_mul"]
    report = tmp_path / "parity.json"
    assert main(["check", str(spec), "--repository", str(out), "--report", str(report)]) == 0, capsys.readouterr().out
    assert json.loads(report.read_text())["passed"]
def test_kernel_breaking_its_rule_is_named(project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The op's kernel returns [..., 2] while its op.yaml now promises [..., 3]: the build names the op and exits 1
    (the user's mistake), before anything is written."""
    broken = tmp_path / "proj"
    shutil.copytree(project, broken, ignore=shutil.ignore_patterns("repo", "__pycache__"))
    op_yaml = broken / "my_ops" / "softclip_pool" / "op.yaml"
    op_yaml.write_text(op_yaml.read_text().replace('"x[:-1] + [2]"', '"x[:-1] + [3]"'))
    spec = broken / "model.yaml"
    spec.write_text(spec.read_text().replace("  - name: scaled", "  - name: unused_scaled"))
    code = main(["build", str(spec), "--models", "pool"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "mylab::softclip_pool returned out of shape" in err and "x[:-1] + [3]" in err
    assert "bug in trtrepo" not in err and "Traceback" not in err
    assert not (broken / "repo").exists()
