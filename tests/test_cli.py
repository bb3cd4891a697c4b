"""The CLI as a library call: exit codes, one-line errors with hints, and a real CPU build through the torch target."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import pytest

from trtrepo import __version__, deps
from trtrepo.cli import EXIT_BUG, main
from trtrepo.errors import ServeError

SPEC = """
repository: repo
models:
  - name: double
    source: tinynet:build
    inputs:
      - {name: x, shape: [-1, 4], min: [1, 4], opt: [2, 4], max: [8, 4]}
    outputs: [y]
    triton: {max_batch_size: 8, dynamic_batching: true}
"""

TINYNET = """
import torch


class Net(torch.nn.Module):
    def forward(self, x):
        return x * 2.0 + 1.0


def build():
    return Net()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tinynet.py").write_text(TINYNET)
    spec = tmp_path / "model.yaml"
    spec.write_text(SPEC)
    return spec


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("build", "serve", "check", "bench", "doctor"):
        assert f"  {command} " in out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "x.yaml", "--target", "onnx"]) == 2
    assert "'onnx' is not one of 'auto', 'tensorrt', 'torch'" in capsys.readouterr().err


def test_missing_spec_is_one_line_and_a_hint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["build", str(missing)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {missing}: no such file", "hint: pass the path of a model.yaml (see examples/)"]


def test_unknown_model_selection(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(project), "--models", "double,triple"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: --models: unknown model 'triple'"
    assert err[1] == f"hint: models in {project}: double"
    assert not (project.parent / "repo").exists()


def test_a_nul_byte_in_out_is_a_usage_error(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A NUL cannot come through exec's argv, but it can through main(argv) and a wrapper that builds the list."""
    assert main(["build", str(project), "--out", "repo\x00x"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: --out: 'repo\\x00x' contains a NUL byte"]
    assert main(["build", "model\x00.yaml"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: 'model\\x00.yaml': the path contains a NUL byte"]


def test_a_nul_byte_in_any_commands_path_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "repo\x00x"]) == 2
    assert capsys.readouterr().err.splitlines() == ["error: a path argument contains a NUL byte"]


def test_out_inside_the_inputs_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(project), "--out", str(project.parent)]) == 2
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: --out: {project.parent} would contain {project.parent}; the build replaces that folder")


@pytest.mark.skipif(deps.has_tensorrt() and deps.has_torch_tensorrt(), reason="TensorRT is installed here")
def test_explicit_tensorrt_without_tensorrt_exits_3_before_writing(project: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(project), "--target", "tensorrt"]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: --target: tensorrt needs tensorrt")
    assert err[1].startswith("hint: ") and "--target torch" in err[1]
    assert not (project.parent / "repo").exists()
    assert not (project.parent / ".trtrepo_cache").exists()


@pytest.mark.skipif(deps.has_tensorrt() and deps.has_torch_tensorrt(), reason="TensorRT is installed here")
def test_auto_falls_back_to_torch_loudly(caplog: pytest.LogCaptureFixture) -> None:
    from trtrepo.build import resolve_target
    from trtrepo.spec import parse_spec

    model = parse_spec({"models": [{"name": "m", "source": "json:loads", "inputs": [{"name": "x", "shape": [1]}],
                                    "outputs": ["y"]}]}, Path("/x/model.yaml")).models[0]
    warnings: list[str] = []
    with caplog.at_level(logging.WARNING, logger="trtrepo"):
        assert resolve_target(model, None, warnings) == "torch"
    assert warnings == [f"models[0].target: auto → torch (TensorRT not found: {deps.INSTALL_HINTS['tensorrt']})"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert resolve_target(model, "torch") == "torch"


def test_trtrepo_error_maps_to_its_exit_code(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fake = types.ModuleType("trtrepo.serve")

    def serve_forever(repository: Path, **kwargs: object) -> int:
        raise ServeError(f"tritonserver not found for {repository}", hint="pip install nvidia-pytriton")

    fake.serve_forever = serve_forever  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trtrepo.serve", fake)
    assert main(["serve", "somewhere"]) == 1
    assert capsys.readouterr().err.splitlines() == ["error: tritonserver not found for somewhere",
                                                    "hint: pip install nvidia-pytriton"]


def test_check_exit_code_follows_the_report(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                            project: Path) -> None:
    seen: dict[str, object] = {}

    class Report:
        def __init__(self, passed: bool) -> None:
            self.passed = passed

        def table(self) -> str:
            return f"passed={self.passed}"

    def run_check(spec_path: Path, **kwargs: object) -> Report:
        seen.update(kwargs, spec_path=spec_path)
        return Report(kwargs["models"] is None)

    fake = types.ModuleType("trtrepo.check")
    fake.run_check = run_check  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trtrepo.check", fake)
    assert main(["check", str(project), "--protocol", "grpc", "--url-grpc", "h:1"]) == 0
    assert capsys.readouterr().out.strip() == "passed=True"
    assert seen["protocols"] == ("grpc",) and seen["url_grpc"] == "h:1" and seen["url_http"] is None
    assert main(["check", str(project), "--models", "double"]) == 1
    assert seen["models"] == ["double"] and seen["protocols"] == ("http", "grpc")


def test_unexpected_exception_is_a_bug_with_traceback(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import trtrepo.doctor

    def broken() -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(trtrepo.doctor, "run_doctor", broken)
    assert main(["doctor"]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: oops" in err
    assert "this is a bug in trtrepo" in err


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = [c["name"] for c in report["checks"]]
    assert names == ["python", "torch", "gpu", "nvcc", "TensorRT", "Torch-TensorRT", "tritonserver", "tritonclient"]
    for check in report["checks"]:
        assert check["ok"] or check["fix"], f"{check['name']}: a missing piece must say how to get it"
    assert report["missing"] == [c["name"] for c in report["checks"] if not c["ok"]]


def test_doctor_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "python" in out and "tritonserver" in out


def test_build_with_the_torch_target_on_cpu(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real build: spec → export → torch target → repository with config, manifest and warm-up data."""
    from trtrepo.repository import config as cfg

    out = project.parent / "out_repo"
    assert main(["build", str(project), "--target", "torch", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:2] == [f"repository: {out}", "  double: torch"]
    assert "export: double" in captured.err
    config = cfg.parse_text((out / "double" / "config.pbtxt").read_text())
    assert config.name == "double" and config.max_batch_size == 8
    assert [(i.name, list(i.dims)) for i in config.input] == [("x", [4])]
    manifest = json.loads((out / "trtrepo-manifest.json").read_text())
    assert manifest["models"]["double"]["target"] == "torch"
    assert manifest["environment"]["torch"]
    assert (out / "double" / "warmup" / "x").stat().st_size == 4 * 4
    assert any(p.name.startswith("model") for p in (out / "double" / "1").iterdir())


def test_ci_runs_the_readme_test_command(repo_root: Path) -> None:
    readme = (repo_root / "README.md").read_text()
    setup = readme.split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    block = setup.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    assert commands[0] == "bash .ci/run --setup-only"
    test_command = commands[1]
    assert " -m pytest" in test_command
    ci = repo_root / ".ci" / "run"
    assert ci.stat().st_mode & 0o111, ".ci/run must be executable"
    lines = [line.strip() for line in ci.read_text().splitlines()]
    assert any(line.startswith(test_command + " ") or line == test_command for line in lines)
    install = [line for line in lines if "pip install" in line]
    assert "torch==2.13.0" in install[1] and "--no-deps tensorrt-stubs" in install[2] and "-e '.[test]'" in install[3]
    assert "exit 5" not in ci.read_text() and "$status -eq 5" in ci.read_text()
