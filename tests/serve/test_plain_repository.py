"""The product's promise: a built repository loads in a plain ``tritonserver --model-repository`` (no model-control
flags, no --load-model), and the command ``trtrepo serve --print-command`` prints runs as is in a shell.

The gelu example is built with the torch target (op library included: it lands in ``gelu_block/plugins/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.triton

STARTUP_TIMEOUT = 120.0


@pytest.fixture(autouse=True)
def _tritonserver(tritonserver_available: None) -> None:
    """Every test here needs a tritonserver and tritonclient (skips with the reason otherwise)."""


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def _wait_ready(proc: subprocess.Popen, http: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while _status(f"http://{http}/v2/models/gelu_block/ready") != 200:
        assert proc.poll() is None, f"tritonserver exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
        assert time.monotonic() < deadline, f"not READY in {STARTUP_TIMEOUT} s:\n{log.read_text()[-4000:]}"
        time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # the group this test started: the shell, the server, its stubs
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _index(http: str) -> list[dict]:
    req = urllib.request.Request(f"http://{http}/v2/repository/index", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=5.0) as resp:
        return list(json.loads(resp.read()))


def test_plain_tritonserver_loads_the_built_repository(gelu_project: Path, tmp_path: Path) -> None:
    from trtrepo.serve import backend_directory, find_tritonserver, free_port, server_environment

    repo = gelu_project.parent / "repo"
    folders = sorted(p.name for p in repo.iterdir() if p.is_dir())
    assert folders == ["gelu_block"], "every root folder must be a model folder"
    assert all((repo / f / "config.pbtxt").is_file() for f in folders)
    assert (repo / "gelu_block" / "plugins" / "libtrtrepo_ops_plugin_src.so").is_file()
    assert (repo / "gelu_block" / "logs" / "ops").is_dir()

    install = find_tritonserver()
    http = f"127.0.0.1:{free_port()}"
    # what a user runs: the repository, and where the bundled server keeps its backends; the ports only keep this
    # test off servers that other tests (or people) run on the defaults
    cmd = [str(install.binary), f"--model-repository={repo}", f"--http-port={http.split(':')[1]}",
           f"--grpc-port={free_port()}", f"--metrics-port={free_port()}"]
    backends = backend_directory(install)
    if backends is not None:
        cmd.append(f"--backend-directory={backends}")
    log = tmp_path / "tritonserver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=server_environment(install), start_new_session=True)
    try:
        _wait_ready(proc, http, log)
        assert _status(f"http://{http}/v2/health/ready") == 200, "every model of the repository is READY"
        assert [(m["name"], m.get("state")) for m in _index(http)] == [("gelu_block", "READY")]
    finally:
        _stop(proc)
    assert "Poll failed" not in log.read_text()


def test_printed_command_runs_as_is(gelu_project: Path, tmp_path: Path) -> None:
    """``trtrepo serve --print-command`` output, pasted into a shell with no trtrepo environment, serves the model."""
    from trtrepo.serve import free_port, serve_forever

    lines: list[str] = []
    http_port = free_port()
    assert serve_forever(gelu_project.parent / "repo", http_port=http_port, grpc_port=free_port(),
                         metrics_port=free_port(), print_only=True, echo=lines.append) == 0
    assert len(lines) == 1 and "--load-model" not in lines[0] and "--model-control-mode" not in lines[0]
    log = tmp_path / "tritonserver.log"
    clean_env = {k: v for k, v in os.environ.items()
                 if k not in ("PYTHONPATH", "TRTREPO_PYTHONPATH", "LD_LIBRARY_PATH")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", lines[0]], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=clean_env, cwd=tmp_path, start_new_session=True)
    try:
        _wait_ready(proc, f"127.0.0.1:{http_port}", log)
    finally:
        _stop(proc)
