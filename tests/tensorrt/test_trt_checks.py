"""Plugin checks before serving: clashes, missing creators, TensorRT version, launch flags and launch.sh."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from trtrepo.contracts import Creator
from trtrepo.errors import ServeError
from trtrepo.ops.description import OpDescription
from trtrepo.repository.launch import launch_script
from trtrepo.repository.plugins import (
    check_plugins,
    check_tensorrt_versions,
    find_plugin_problems,
    plugin_backend_config,
    tensorrt_version_problem,
    unique_libraries,
    version_tuple,
)
from trtrepo.tensorrt.opfacts import creators_from_ops

GELU = Creator("TrtrepoBiasGelu", "1", "trtrepo")
RMS = Creator("TrtrepoFusedAddRmsNorm", "1", "trtrepo")


def test_creators_from_real_descriptions(bias_gelu: OpDescription, rms_norm: OpDescription) -> None:
    assert creators_from_ops([bias_gelu, rms_norm]) == [GELU, RMS]
    assert creators_from_ops([dataclasses.replace(bias_gelu, plugin=None), rms_norm]) == [RMS]
    assert Creator.from_dict(GELU.to_dict()) == GELU


def test_all_provided_once_is_clean() -> None:
    assert find_plugin_problems({"m": [GELU]}, {"/r/plugins/a.so": [GELU, RMS]}) == []
    check_plugins({"m": [GELU], "n": []}, {"/r/plugins/a.so": [GELU, RMS]})


def test_clash_between_libraries() -> None:
    problems = find_plugin_problems({"m": [GELU]}, {"/a.so": [GELU], "/b.so": [GELU, RMS]})
    assert len(problems) == 1 and "registered by 2 different libraries: /a.so, /b.so" in problems[0].message
    with pytest.raises(ServeError, match="registered by 2 different libraries"):
        check_plugins({"m": [GELU]}, {"/a.so": [GELU], "/b.so": [GELU]})


def test_copies_of_one_library_do_not_clash_different_ones_do() -> None:
    """Each model folder holds its own copy: the same sha256 is one library, another sha256 a clash."""
    provided = {"/r/m/plugins/a.so": [GELU, RMS], "/r/n/plugins/a.so": [GELU, RMS], "/r/o/plugins/a.so": [GELU]}
    same = {"/r/m/plugins/a.so": "h1", "/r/n/plugins/a.so": "h1", "/r/o/plugins/a.so": "h1"}
    assert find_plugin_problems({"m": [GELU], "n": [RMS]}, provided, same) == []
    check_plugins({"m": [GELU]}, provided, same)
    problems = find_plugin_problems({"m": [GELU]}, provided, {**same, "/r/o/plugins/a.so": "h2"})
    assert [p.message for p in problems] == [
        f"plugin creator {GELU} is registered by 2 different libraries: /r/m/plugins/a.so, /r/o/plugins/a.so"]
    assert len(find_plugin_problems({}, provided)) == 2, "without hashes every path is its own library"


def test_unique_libraries_by_content(tmp_path: Path) -> None:
    for name, data in (("m", b"v1"), ("n", b"v1"), ("o", b"v2")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.so").write_bytes(data)
    paths = [tmp_path / "o" / "a.so", tmp_path / "m" / "a.so", tmp_path / "n" / "a.so"]
    assert unique_libraries(paths) == [str(tmp_path / "o" / "a.so"), str(tmp_path / "m" / "a.so")]
    assert unique_libraries(["/x/a.so", "/y/a.so"], {"/x/a.so": "h", "/y/a.so": "h"}) == ["/x/a.so"]
    assert unique_libraries(["/x/a.so", "/y/a.so"]) == ["/x/a.so", "/y/a.so"], "unknown content: kept"


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


def test_launch_script_lists_each_library_once(tmp_path: Path) -> None:
    for model, data in (("a", b"lib"), ("b", b"lib"), ("c", b"other")):
        (tmp_path / model / "plugins").mkdir(parents=True)
        (tmp_path / model / "plugins" / "p.so").write_bytes(data)
    text = launch_script(tmp_path, ["a/plugins/p.so", "b/plugins/p.so", "c/plugins/p.so"])
    assert 'plugins=("$HERE"/a/plugins/p.so "$HERE"/c/plugins/p.so)' in text.splitlines()
    text = launch_script(tmp_path, ["a/plugins/p.so", "c/plugins/p.so"], {"a/plugins/p.so": "h", "c/plugins/p.so": "h"})
    assert 'plugins=("$HERE"/a/plugins/p.so)' in text.splitlines()


def test_launch_script_without_plugins(tmp_path: Path) -> None:
    text = launch_script(tmp_path, [])
    assert "backend-config" not in text and 'exec "${TRITONSERVER:-tritonserver}"' in text
