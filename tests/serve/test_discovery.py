"""find_tritonserver, the assembled backend folder, the environment and the launch command (no server started)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from trtrepo.errors import ServeError
from trtrepo.serve import (
    TritonServer,
    backend_directory,
    find_tritonserver,
    format_log_tail,
    model_control_args,
    server_environment,
)


def test_missing_explicit_binary_is_a_serve_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ServeError, match=r"--tritonserver: .* is not an executable file"):
        find_tritonserver(tmp_path / "nope")
    monkeypatch.setenv("TRTREPO_TRITONSERVER", str(tmp_path / "nope"))
    with pytest.raises(ServeError, match="TRTREPO_TRITONSERVER"):
        find_tritonserver()


def _bundled():
    try:
        install = find_tritonserver()
    except ServeError as exc:
        pytest.skip(str(exc))
    if install.origin != "pytriton":
        pytest.skip(f"tritonserver comes from {install.origin}, not the nvidia-pytriton wheel")
    return install


def test_bundled_server_gets_a_backend_folder_with_this_pythons_stub(tmp_path: Path) -> None:
    install = _bundled()
    assert install.python_stub is not None
    assert install.python_stub.parent.name == f"{sys.version_info.major}.{sys.version_info.minor}"
    folder = backend_directory(install, tmp_path)
    assert folder is not None
    python = folder / "python"
    for name in ("libtriton_python.so", "triton_python_backend_utils.py", "triton_python_backend_stub"):
        assert (python / name).exists(), name
    assert (python / "triton_python_backend_stub").resolve() == install.python_stub.resolve()
    assert backend_directory(install, tmp_path) == folder  # reused, not rebuilt


def test_environment_has_libraries_and_packages() -> None:
    install = _bundled()
    env = server_environment(install, base={"PATH": "/bin"})
    assert str(install.lib_dirs[0]) in env["LD_LIBRARY_PATH"].split(os.pathsep)
    import numpy

    numpy_home = str(Path(numpy.__file__).resolve().parents[1])
    assert numpy_home in env["TRTREPO_PYTHONPATH"].split(os.pathsep)


def test_command_binds_loopback_and_loads_models_explicitly(tmp_path: Path) -> None:
    _bundled()
    repo = tmp_path / "repo"
    (repo / "m").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "python"\n')
    (repo / "plugins").mkdir()
    server = TritonServer(repo)
    assert server.http_port and server.grpc_port and server.metrics_port
    assert len({server.http_port, server.grpc_port, server.metrics_port}) == 3
    assert "--http-address=127.0.0.1" in server.command and "--grpc-address=127.0.0.1" in server.command
    assert "--model-control-mode=explicit" in server.command and "--load-model=m" in server.command
    assert server.http_url == f"127.0.0.1:{server.http_port}"


def test_model_control_only_when_the_root_holds_other_folders(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.pbtxt").write_text("")
    assert model_control_args(tmp_path) == []
    (tmp_path / "logs").mkdir()
    assert model_control_args(tmp_path) == ["--model-control-mode=explicit", "--load-model=a"]


def test_log_tail_puts_errors_first_and_drops_tables() -> None:
    log = "\n".join(["I1 start", "E1122 00:00:00.1 1 x.cc:1] \"failed to load 'm'\"", "+----+", "| a | b |",
                     *[f"I1 line {i}" for i in range(30)]])
    tail = format_log_tail(log, "server.log", lines=5)
    lines = tail.strip().splitlines()
    assert lines[1].startswith("E1122") and "failed to load" in lines[1]
    assert lines[-1] == "I1 line 29" and "+----+" not in tail and len(lines) == 1 + 1 + 5
