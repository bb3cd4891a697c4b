"""The parts of serve and check that need no server: constructing a server does no I/O, run folders and bounded
logs, stop signals as exceptions, report paths and URLs checked before any work, one tritonserver discovery."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from trtrepo.errors import ServeError, SpecError
from trtrepo.serve import (
    Interrupted,
    TritonServer,
    check_port,
    default_report_path,
    find_tritonserver,
    new_log_path,
    run_folder,
    stop_on_signals,
)
from trtrepo.serve.logs import open_log


def test_constructing_a_server_does_no_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTREPO_TRITONSERVER", str(tmp_path / "no-such-binary"))
    monkeypatch.setenv("TRTREPO_CACHE_DIR", str(tmp_path / "cache"))
    server = TritonServer(tmp_path / "no-such-repository", http_port=70000)  # nothing is looked at yet
    assert server.install is None and server.command == [] and server.log_path is None
    assert not (tmp_path / "cache").exists()
    with pytest.raises(RuntimeError, match="call prepare"):
        _ = server.command_line
    with pytest.raises(SpecError, match=r"^http_port: 70000 is not a port \(0-65535; 0 picks a free one\)$"):
        server.prepare()
    server.http_port = 0
    with pytest.raises(ServeError, match=r"repository .*no-such-repository does not exist"):
        server.prepare()
    assert server.stop() is None  # never started: nothing to stop


@pytest.mark.parametrize("value", [-1, 65536, True, "8000"])
def test_check_port_refuses(value: object) -> None:
    with pytest.raises(SpecError, match=r"^--grpc-port: .* is not a port"):
        check_port(value, "--grpc-port")  # type: ignore[arg-type]


def test_run_folder_is_per_repository_under_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTREPO_CACHE_DIR", str(tmp_path / "cache"))
    a, b = run_folder(tmp_path / "x" / "model repo"), run_folder(tmp_path / "y" / "model repo")
    assert a != b and a.parent == b.parent == tmp_path / "cache" / "runs"
    assert a.name.startswith("model_repo-") and run_folder(tmp_path / "x" / "model repo") == a
    assert default_report_path(tmp_path / "x" / "model repo") == a / "parity-report.json"
    assert not a.exists()


def test_logs_are_kept_with_the_run_and_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTREPO_CACHE_DIR", str(tmp_path / "cache"))
    repo = tmp_path / "repo"
    paths = []
    for i in range(6):
        path = new_log_path(repo)
        assert not path.exists() and path not in paths  # a name only; two in one second differ
        with open_log(path, keep=3) as log:
            log.write(b"log %d\n" % i)
        os.utime(path, (time.time() + i, time.time() + i))  # distinct ages, newest last
        paths.append(path)
    folder = run_folder(repo) / "logs"
    assert sorted(folder.iterdir()) == sorted(paths[-3:])


def test_log_folder_that_cannot_be_made_is_a_serve_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("TRTREPO_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ServeError, match=r"^cannot write the server log .*/cache/runs/repo-\w+/logs/"):
        open_log(new_log_path(tmp_path / "repo"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)])
def test_stop_signals_raise_interrupted_inside_the_block_only(sig: signal.Signals, code: int) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as info, stop_on_signals():
        os.kill(os.getpid(), sig)
        time.sleep(5)  # the handler raises at once; reaching the end of the sleep is a failure
    assert info.value.exit_code == code and info.value.code == code and info.value.signal_name == sig.name
    assert str(info.value) == f"interrupted by {sig.name}"
    assert not isinstance(info.value, Exception), "except Exception must not swallow a stop signal"
    assert signal.getsignal(sig) == before


def test_doctor_and_serve_share_one_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trtrepo.doctor import run_doctor

    def row() -> object:
        return next(c for c in run_doctor() if c.name == "tritonserver")

    not_executable = tmp_path / "tritonserver"
    not_executable.write_text("#!/bin/sh\n")
    monkeypatch.setenv("TRTREPO_TRITONSERVER", str(not_executable))
    with pytest.raises(ServeError) as info:
        find_tritonserver()
    check = row()
    assert not check.ok and check.detail == info.value.message  # doctor says what serve would say
    monkeypatch.delenv("TRTREPO_TRITONSERVER")
    try:
        install = find_tritonserver()
    except ServeError as exc:
        assert not row().ok and row().detail == exc.message
    else:
        check = row()
        assert check.detail.startswith(f"{install.binary} (from ")
        assert check.ok == (not install.stub_problem)


# --------------------------------------------------------------------------------------- check, before work
def _spec(tmp_path: Path) -> Path:
    (tmp_path / "tiny.py").write_text("def build():\n    raise AssertionError('never called before the checks')\n")
    spec = tmp_path / "model.yaml"
    spec.write_text("repository: repo\nmodels:\n  - name: m\n    source: tiny:build\n    target: torch\n"
                    "    inputs: [{name: x, shape: [4]}]\n    outputs: [y]\n")
    return spec


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"url_http": "127.0.0.1:99999"}, "--url-http '127.0.0.1:99999': port '99999' is not a port number (1-65535)"),
    ({"url_http": "127.0.0.1:0"}, "--url-http '127.0.0.1:0': port '0' is not a port number (1-65535)"),
    ({"url_grpc": "localhost"}, "--url-grpc 'localhost': must be host:port (e.g. 127.0.0.1:8000)"),
    ({"url_http": "http://h:1"}, "--url-http 'http://h:1': give host:port without a scheme (e.g. 127.0.0.1:8000)"),
    ({"report_path": "{tmp}/model.yaml/r.json"}, "--report {tmp}/model.yaml/r.json: {tmp}/model.yaml is a file, "
                                                 "not a folder"),
    ({"report_path": "{tmp}"}, "--report {tmp}: is a folder"),
], ids=["port-high", "port-zero", "no-port", "scheme", "under-a-file", "a-folder"])
def test_check_refuses_before_any_work(tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    from trtrepo.check import run_check

    spec = _spec(tmp_path)
    args = {k: v.replace("{tmp}", str(tmp_path)) for k, v in kwargs.items()}
    lines: list[str] = []
    with pytest.raises(SpecError) as info:
        run_check(spec, progress=lines.append, protocols=("grpc",) if "url_grpc" in args else ("http",), **args)
    assert info.value.message == message.replace("{tmp}", str(tmp_path)) and info.value.exit_code == 2
    assert lines == [], "nothing ran before the error"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.yaml", "tiny.py"], "nothing was written"


def test_report_in_a_folder_nobody_can_write(tmp_path: Path) -> None:
    import tempfile

    from trtrepo.check import writable_report_path

    try:
        with tempfile.TemporaryFile(dir="/sys"):
            pytest.skip("/sys is writable here: the test needs a folder that is not")
    except OSError:
        pass
    with pytest.raises(SpecError, match=r"^--report /sys/r\.json: cannot write in /sys \(.+\)$"):
        writable_report_path("/sys/r.json", "--report")
    with pytest.raises(ServeError, match=r"^default report /sys/r\.json: cannot write in /sys") as info:
        writable_report_path("/sys/r.json", "default report")
    assert "--report PATH" in (info.value.hint or "")


def test_writable_report_path_creates_nothing(tmp_path: Path) -> None:
    from trtrepo.check import writable_report_path

    assert writable_report_path(tmp_path / "a" / "b" / "r.json", "--report") == tmp_path / "a" / "b" / "r.json"
    assert list(tmp_path.iterdir()) == []


def test_a_client_that_cannot_be_made_prints_nothing_after_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """tritonclient's half-made client raises in ``__del__``; Python would print that after our error line."""
    pytest.importorskip("tritonclient.http", reason="needs tritonclient")
    import gc
    import sys

    from trtrepo.runners.triton_client import TritonClient

    leaked: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", leaked.append)  # where Python reports what __del__ raises
    with pytest.raises(ServeError, match=r"^http 127\.0\.0\.1:99999: cannot create a client: Port out of range"):
        TritonClient("http", "127.0.0.1:99999")
    gc.collect()
    assert leaked == []
