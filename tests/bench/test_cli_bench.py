"""``trtrepo bench``'s layout: MODEL_YAML alone is the served sweep, --soak the soak, engines a subcommand."""

from __future__ import annotations

from pathlib import Path

import pytest

from trtrepo.cli import main


def test_bench_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--help"]) == 0
    out = capsys.readouterr().out
    for command in ("served", "engines", "soak"):
        assert f"  {command} " in out
    assert "trtrepo bench MODEL_YAML --soak" in out


def test_model_yaml_first_is_the_served_sweep(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["bench", str(missing), "--concurrency", "1"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == f"error: {missing}: no such file"
    assert main(["bench", str(missing), "--faults"]) == 2  # a soak option: not the served sweep's
    assert "No such option '--faults'" in capsys.readouterr().err


def test_soak_flag_routes_to_the_soak(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv in (["bench", str(tmp_path / "m.yaml"), "--soak", "--bad-every", "1"],
                 ["bench", "soak", str(tmp_path / "m.yaml"), "--bad-every", "1"]):
        assert main(argv) == 2
        assert capsys.readouterr().err.splitlines()[0] == "error: --bad-every: must be >= 2, got 1"


def test_engines_list_and_unknown_engine(capsys: pytest.CaptureFixture[str], repo_root: Path) -> None:
    spec = repo_root / "examples" / "mlp_block" / "model.yaml"
    assert main(["bench", "engines", str(spec), "--engines", "list"]) == 0
    out = capsys.readouterr().out
    assert "plan-decompose-buckets" in out and "hybrid-lean-graph" in out
    assert main(["bench", "engines", str(spec), "--engines", "eager,plan-decompse-dynamic"]) == 2
    err = capsys.readouterr().err
    assert "unknown engine 'plan-decompse-dynamic' (did you mean 'plan-decompose-dynamic'?)" in err
