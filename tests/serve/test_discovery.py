"""find_tritonserver, the assembled backend folder, the environment, the launch command and the TensorRT plugin
flags read from a repository (no server started)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

from trtrepo.contracts import Creator
from trtrepo.errors import ServeError
from trtrepo.repository.manifest import Manifest, ServingRecord
from trtrepo.serve import (
    TritonServer,
    backend_directory,
    find_tritonserver,
    format_log_tail,
    repository_plugin_libraries,
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


def test_command_is_a_plain_repository_launch(tmp_path: Path) -> None:
    """No model-control flags: the repository holds model folders only, tritonserver loads it by itself."""
    install = _bundled()
    repo = tmp_path / "repo"
    (repo / "m" / "plugins").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text('name: "m"\nbackend: "python"\n')
    server = TritonServer(repo)
    assert server.command == [] and server.http_port == 0 and server.install is None  # constructing does no I/O
    server.prepare()
    assert server.http_port and server.grpc_port and server.metrics_port
    assert len({server.http_port, server.grpc_port, server.metrics_port}) == 3
    assert "--http-address=127.0.0.1" in server.command and "--grpc-address=127.0.0.1" in server.command
    assert not [c for c in server.command if c.startswith(("--model-control-mode", "--load-model"))]
    assert server.command[:2] == [str(install.binary), f"--model-repository={repo}"]
    assert server.http_url == f"127.0.0.1:{server.http_port}"
    # the printed line carries what server_environment sets, so it runs as is in a shell
    words = shlex.split(server.command_line)
    env = dict(w.split("=", 1) for w in words[:3])
    assert set(env) == {"LD_LIBRARY_PATH", "PYTHONPATH", "TRTREPO_PYTHONPATH"}
    assert env["TRTREPO_PYTHONPATH"] == server.env["TRTREPO_PYTHONPATH"] and words[3:] == server.command


CREATOR = Creator("TrtrepoBiasGelu", "1", "trtrepo")


def _trt_model(repo: Path, name: str, lib: bytes | None) -> dict:
    """A TensorRT model folder with its own plugins/libp.so copy; returns its manifest record."""
    folder = repo / name
    (folder / "1").mkdir(parents=True)
    libs = []
    if lib is not None:
        (folder / "plugins").mkdir()
        (folder / "plugins" / "libp.so").write_bytes(lib)
        libs = ["plugins/libp.so"]
    ops = "".join(f'model_operations {{ op_library_filename: "{p}" }}\n' for p in libs)
    (folder / "config.pbtxt").write_text(f'name: "{name}"\nplatform: "tensorrt_plan"\n{ops}')
    record = ServingRecord(target="tensorrt", version=1, precision="fp32", inputs=(), outputs=(), output_names={},
                           platform="tensorrt_plan", plugin_libraries=tuple(libs), required_creators=(CREATOR,),
                           library_creators={"libp.so": (CREATOR,)} if lib is not None else {})
    return record.to_dict()


def _manifest(repo: Path, models: dict) -> None:
    """A manifest recording ``models`` with the files their folders hold now (as a build records them)."""
    from trtrepo._hashing import hash_tree

    records = {name: ServingRecord.from_dict({**raw, "files": {f"{name}/{rel}": sha for rel, sha
                                                               in hash_tree(repo / name).items()}})
               for name, raw in models.items()}
    manifest = Manifest(environment={}, spec_path="", spec_sha256="", device="cpu", models=records)
    (repo / "trtrepo-manifest.json").write_text(json.dumps(manifest.to_dict()))


def test_identical_per_model_plugin_copies_load_once(tmp_path: Path) -> None:
    pytest.importorskip("tritonclient.grpc", reason="config.pbtxt is read with tritonclient's ModelConfig")
    repo = tmp_path / "repo"
    models = {"a": _trt_model(repo, "a", b"lib v1"), "b": _trt_model(repo, "b", b"lib v1")}
    (repo / "c").mkdir()  # a Python-backend model loads its libraries itself
    (repo / "c" / "config.pbtxt").write_text('name: "c"\nbackend: "python"\n'
                                             'model_operations { op_library_filename: "plugins/nope.so" }\n')
    _manifest(repo, models)
    first = (repo / "a" / "plugins" / "libp.so").resolve()
    assert repository_plugin_libraries(repo) == [first]
    (repo / "b" / "plugins" / "libp.so").write_bytes(b"lib v1 patched")
    with pytest.raises(ServeError, match="registered by 2 different libraries"):
        repository_plugin_libraries(repo)
    models["b"]["library_creators"] = {}  # no creator facts for b's copy: no clash known, both load
    _manifest(repo, models)
    assert repository_plugin_libraries(repo) == [first, (repo / "b" / "plugins" / "libp.so").resolve()]


def test_two_different_libraries_with_one_creator_clash(tmp_path: Path) -> None:
    pytest.importorskip("tritonclient.grpc", reason="config.pbtxt is read with tritonclient's ModelConfig")
    repo = tmp_path / "repo"
    _manifest(repo, {"a": _trt_model(repo, "a", b"lib v1"), "b": _trt_model(repo, "b", b"lib v2")})
    with pytest.raises(ServeError, match=r"trtrepo::TrtrepoBiasGelu v1 is registered by 2 different libraries: "
                                         r".*/a/plugins/libp.so, .*/b/plugins/libp.so"):
        TritonServer(repo).prepare()


def test_missing_creator_and_missing_library_are_serve_errors(tmp_path: Path) -> None:
    pytest.importorskip("tritonclient.grpc", reason="config.pbtxt is read with tritonclient's ModelConfig")
    repo = tmp_path / "repo"
    _manifest(repo, {"a": _trt_model(repo, "a", None)})
    with pytest.raises(ServeError, match="model 'a' needs plugin creator trtrepo::TrtrepoBiasGelu v1"):
        repository_plugin_libraries(repo)
    repo = tmp_path / "repo2"
    _manifest(repo, {"b": _trt_model(repo, "b", b"lib v1")})
    (repo / "b" / "plugins" / "libp.so").unlink()
    with pytest.raises(ServeError, match=r"b/config.pbtxt: plugin library plugins/libp.so does not exist"):
        repository_plugin_libraries(repo)


def test_log_tail_puts_errors_first_and_drops_tables() -> None:
    log = "\n".join(["I1 start", "E1122 00:00:00.1 1 x.cc:1] \"failed to load 'm'\"", "+----+", "| a | b |",
                     *[f"I1 line {i}" for i in range(30)]])
    tail = format_log_tail(log, "server.log", lines=5)
    lines = tail.strip().splitlines()
    assert lines[1].startswith("E1122") and "failed to load" in lines[1]
    assert lines[-1] == "I1 line 29" and "+----+" not in tail and len(lines) == 1 + 1 + 5
