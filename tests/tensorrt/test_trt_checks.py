"""Plugin checks before serving: clashes, missing creators, TensorRT version, launch flags and launch.sh."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from trtrepo.errors import ServeError
from trtrepo.tensorrt.checks import (
    Creator,
    check_plugins,
    check_tensorrt_versions,
    creators_from_ops,
    find_plugin_problems,
    launch_script,
    plugin_backend_config,
    tensorrt_version_problem,
    version_tuple,
)
from trtrepo.tensorrt.opfacts import OpFacts

GELU = Creator("TrtrepoBiasGelu", "1", "trtrepo")
RMS = Creator("TrtrepoFusedAddRmsNorm", "1", "trtrepo")


def test_creators_from_real_descriptions(bias_gelu: OpFacts, rms_norm: OpFacts) -> None:
    assert creators_from_ops([bias_gelu, rms_norm]) == [GELU, RMS]
    assert Creator.from_dict(GELU.as_dict()) == GELU


def test_all_provided_once_is_clean() -> None:
    assert find_plugin_problems({"m": [GELU]}, {"/r/plugins/a.so": [GELU, RMS]}) == []
    check_plugins({"m": [GELU], "n": []}, {"/r/plugins/a.so": [GELU, RMS]})


def test_clash_between_libraries() -> None:
    problems = find_plugin_problems({"m": [GELU]}, {"/a.so": [GELU], "/b.so": [GELU, RMS]})
    assert len(problems) == 1 and "registered by 2 libraries: /a.so, /b.so" in problems[0].message
    with pytest.raises(ServeError, match="registered by 2 libraries"):
        check_plugins({"m": [GELU]}, {"/a.so": [GELU], "/b.so": [GELU]})


def test_missing_creator_and_version_near_miss() -> None:
    problems = find_plugin_problems({"m": [Creator("TrtrepoBiasGelu", "2", "trtrepo")]}, {"/a.so": [GELU]})
    assert "needs plugin creator trtrepo::TrtrepoBiasGelu v2" in problems[0].message
    assert "v1" in problems[0].hint
    problems = find_plugin_problems({"m": [RMS]}, {})
    assert "no plugin library provides" in problems[0].message
    with pytest.raises(ServeError, match="and 1 more"):
        check_plugins({"m": [RMS, Creator("X", "1", "y")]}, {})


def test_tensorrt_versions() -> None:
    assert version_tuple("10.13.3.9") == (10, 13, 3)
    assert version_tuple("11.0.0b1") == (11, 0, 0)
    assert tensorrt_version_problem("m", "10.13.3.9", "10.13.3.1") is None
    problem = tensorrt_version_problem("m", "10.13.3.9", "10.14.1.48")
    assert problem is not None and "10.13.3.9" in problem.message and "same release" in problem.hint
    assert tensorrt_version_problem("m", "10.13.3", "10.14.1", version_compatible=True) is None
    assert tensorrt_version_problem("m", None, "10.13") is None  # unknown: warn, do not block
    with pytest.raises(ServeError, match="TensorRT refuses"):
        check_tensorrt_versions({"a": "10.13.3", "b": "11.0.0"}, "10.13.3")


def test_plugin_backend_config() -> None:
    assert plugin_backend_config([]) == []
    assert plugin_backend_config([Path("/r/plugins/a.so"), "/r/plugins/b.so"]) == [
        "--backend-config=tensorrt,plugins=/r/plugins/a.so;/r/plugins/b.so"]
    with pytest.raises(ServeError, match="not absolute"):
        plugin_backend_config(["plugins/a.so"])
    with pytest.raises(ServeError, match="contains ';'"):
        plugin_backend_config(["/a;b.so"])


def test_launch_script_runs_with_plugins(tmp_path: Path) -> None:
    repo = tmp_path / "my repo"
    (repo / "plugins").mkdir(parents=True)
    fake = tmp_path / "tritonserver"
    fake.write_text('#!/usr/bin/env bash\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    script = repo / "launch.sh"
    script.write_text(launch_script(repo, ["plugins/libtrtrepo_trt_plugins.so", repo / "plugins" / "b.so",
                                           "/opt/x.so"]))
    script.chmod(0o755)
    if shutil.which("bash") is None:
        pytest.skip("bash not found")
    out = subprocess.run([str(script), "--log-verbose=1"], capture_output=True, text=True, check=True, timeout=30,
                         env={"TRITONSERVER": str(fake), "PATH": "/usr/bin:/bin"}).stdout.splitlines()
    assert out == [
        f"--model-repository={repo}",
        f"--backend-config=tensorrt,plugins={repo}/plugins/libtrtrepo_trt_plugins.so;{repo}/plugins/b.so;/opt/x.so",
        "--log-verbose=1",
    ]


def test_launch_script_without_plugins(tmp_path: Path) -> None:
    text = launch_script(tmp_path, [])
    assert "backend-config" not in text and 'exec "${TRITONSERVER:-tritonserver}"' in text
