"""Faults tried from outside, as a user or an operator meets them: one case per file in ``faults/``.

Each case (a YAML file, see ``faults/README.md``) runs ``trtrepo serve`` or ``trtrepo check`` as a real subprocess
on a private copy of the built gelu repository, after breaking the copy the way the case says, optionally acting
while it runs (a signal to trtrepo, a kill of its tritonserver), and then asserts:

* the exit code, and the exact shape of the error line (and hint), with nothing printed after them;
* that nothing in the repository was written or lost: every file hashed before and after (the Python backend's
  own ``__pycache__`` aside, which the repository must still verify with);
* that no tritonserver or Python-backend stub of the run is left (``/proc``, by the repository path on their
  command lines), and, for a case that must be refused before any work, that none was ever started;
* where the parity report went (never into the repository).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from trtrepo._hashing import hash_tree

HERE = Path(__file__).resolve().parent
CASES = sorted((HERE / "faults").glob("*.yaml"))
CLASSES = {"4": "servers never outlive their command", "5": "a repository that lies is refused",
           "7": "user mistakes are one-line user errors", "10": "no silent waits, no reports written into the "
           "repository"}
KEYS = {"title", "class", "starts", "repository", "spec", "break", "env", "server", "inject", "command", "during",
        "expect", "needs_unwritable"}
PLACEHOLDER = re.compile(r"\{(repo|spec|tmp|http|grpc|python)\}")
EXPECT_KEYS = {"exit", "error", "hint", "first", "tail_only", "lines", "no_lines", "report", "within", "gone_within"}
SERVER_COMMS = ("tritonserver", "triton_python_b")  # /proc/<pid>/comm is cut at 15 characters
INJECTIONS = {
    # a bug in trtrepo after the server started: the comparison raises something no code path expects
    "crash-in-compare": "import trtrepo.check.compare as c\n"
                        "def boom(*a, **k):\n    raise ZeroDivisionError('injected fault')\n"
                        "c.compare = boom\n",
}


def _load(path: Path) -> dict[str, Any]:
    case = yaml.safe_load(path.read_text())
    assert isinstance(case, dict), f"{path.name}: a case is a mapping"
    assert set(case) <= KEYS, f"{path.name}: unknown keys {sorted(set(case) - KEYS)}"
    assert set(case.get("expect", {})) <= EXPECT_KEYS, f"{path.name}: unknown expect keys"
    assert str(case.get("class")) in CLASSES and case.get("starts") in ("nothing", "tritonserver"), path.name
    assert path.stem.startswith(f"{case['class']}-"), f"{path.name}: the file name starts with its class"
    return case


def _params() -> list[Any]:
    params = []
    for path in CASES:
        case = _load(path)
        marks = [pytest.mark.integration] + ([pytest.mark.triton] if case["starts"] == "tritonserver" else [])
        params.append(pytest.param(path, marks=marks, id=path.stem))
    return params


def test_every_class_has_its_cases() -> None:
    counts = {k: sum(1 for p in CASES if p.stem.split("-", 1)[0] == k) for k in CLASSES}
    assert counts["4"] >= 8 and counts["5"] >= 8 and counts["7"] >= 8 and counts["10"] >= 4, counts


# ---------------------------------------------------------------------------------------------- processes
def _run_processes(repo: Path) -> dict[int, str]:
    """pid → comm of every live (not zombie) tritonserver or stub whose command line names ``repo``."""
    needle = str(repo).encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm not in SERVER_COMMS:
                continue
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2:].split()[0] == "Z" or needle not in cmdline:
            continue
        found[int(entry.name)] = comm
    return found


class _Watcher(threading.Thread):
    """Records every server process of the run that shows up while the command runs."""

    def __init__(self, repo: Path) -> None:
        super().__init__(daemon=True)
        self.repo = repo
        self.seen: dict[int, str] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.seen.update(_run_processes(self.repo))
            time.sleep(0.05)


def _describe(pids: dict[int, str]) -> str:
    """``pid comm (state, parent, group, session)`` of each process, for a failure message."""
    out = []
    for pid, comm in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            state, ppid, pgrp, sid = stat[stat.rfind(")") + 2:].split()[:4]
            out.append(f"{pid} {comm} (state {state}, parent {ppid}, group {pgrp}, session {sid})")
        except OSError:
            out.append(f"{pid} {comm} (gone)")
    return "; ".join(out)


def _leftovers(repo: Path, within: float) -> dict[int, str]:
    deadline = time.monotonic() + within
    while (left := _run_processes(repo)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


# ------------------------------------------------------------------------------------------------ breaking
def _break(repo: Path, steps: list[dict[str, Any]], fill: Any) -> None:
    for step in steps:
        (op, arg), = step.items()
        path = _one_path(repo, fill(arg["path"])) if isinstance(arg, dict) and "path" in arg else None
        if op == "append":
            with open(path, "ab") as f:
                f.write(arg["text"].encode())
        elif op == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            data = bytes.fromhex(arg["hex"]) if "hex" in arg else arg["text"].encode()
            path.write_bytes(data)
        elif op == "delete":
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        elif op == "mkdir":
            path.mkdir(parents=True)
        elif op == "pyc":  # __pycache__ entry for a .py, as the server writes it (or forged from other code)
            _write_pyc(path, arg.get("code"))
        else:
            raise AssertionError(f"unknown break step {op!r}")


def _one_path(repo: Path, text: str) -> Path:
    """``text`` under ``repo`` (an absolute path as it is); a glob must name exactly one existing file."""
    if not any(c in text for c in "*?["):
        return repo / text
    found = sorted(repo.glob(text))
    assert len(found) == 1, f"{text!r} matches {found}"
    return found[0]


def _write_pyc(source: Path, code: str | None) -> None:
    """The pyc the import system would write for ``source``; with ``code``, that code under source's header."""
    import importlib.util
    import marshal

    stat = source.stat()
    body = compile(code if code is not None else source.read_bytes(), str(source), "exec", dont_inherit=True)
    header = importlib.util.MAGIC_NUMBER + (0).to_bytes(4, "little") + \
        (int(stat.st_mtime) & 0xFFFFFFFF).to_bytes(4, "little") + (stat.st_size & 0xFFFFFFFF).to_bytes(4, "little")
    target = Path(importlib.util.cache_from_source(str(source)))
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(header + marshal.dumps(body))


def _skip_unless_unwritable(folder: Path) -> None:
    """Skip (saying why) where ``folder`` can be written here: the case needs one that cannot."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return
    pytest.skip(f"{folder} is writable on this machine: the case needs a folder that is not")


def _verification(repo: Path) -> object:
    """What the manifest check says about ``repo``: its findings, or the error its manifest gives."""
    from trtrepo.errors import ServeError
    from trtrepo.serve import inspect_repository

    try:
        return inspect_repository(repo).findings
    except ServeError as exc:
        return exc.message


def _tree(repo: Path) -> dict[str, str]:
    return {k: v for k, v in hash_tree(repo).items() if "__pycache__/" not in k}


# ---------------------------------------------------------------------------------------------------- run
@dataclass
class _Run:
    proc: subprocess.Popen[str]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    acted: list[str] = field(default_factory=list)


def _reader(stream: Any, lines: list[str], on_line: Any) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))
        on_line(lines[-1])


def _act(run: _Run, during: dict[str, Any], repo: Path, seen: dict[int, str]) -> None:
    do = during["do"]
    if during.get("wait_for"):  # e.g. the Python stub: act while the model is loading in it
        deadline = time.monotonic() + 60
        while during["wait_for"] not in _run_processes(repo).values() and time.monotonic() < deadline:
            time.sleep(0.02)
    seen.update(_run_processes(repo))
    if do in ("kill-server", "hang-stub-kill-server"):
        running = _run_processes(repo)
        servers = [pid for pid, comm in running.items() if comm == "tritonserver"]
        assert servers, "no tritonserver of this run to kill"
        if do == "hang-stub-kill-server":  # a stub that hangs cannot notice its server is gone
            stubs = [pid for pid, comm in running.items() if comm == "triton_python_b"]
            assert stubs, "no stub of this run to hang"
            for pid in stubs:
                os.kill(pid, signal.SIGSTOP)
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
    else:
        run.proc.send_signal(getattr(signal, do))
    run.acted.append(do)


@pytest.mark.parametrize("path", _params())
def test_fault(path: Path, gelu_project: Path, gelu_spec_text: str, repo_root: Path, tmp_path: Path,
               request: pytest.FixtureRequest) -> None:
    from trtrepo.serve import default_report_path

    case = _load(path)
    expect = case.get("expect", {})
    if case.get("needs_unwritable"):
        _skip_unless_unwritable(Path(case["needs_unwritable"]))
    repo = tmp_path / "repo"
    shutil.copytree(gelu_project.parent / "repo", repo, symlinks=True)
    # a server of an earlier test may have compiled model.py: start from the repository as the build left it
    for cache in repo.rglob("__pycache__"):
        shutil.rmtree(cache)
    if case.get("repository", "built") == "plain":
        (repo / "trtrepo-manifest.json").unlink()
    spec_text = gelu_spec_text
    for key, value in (case.get("spec") or {}).items():
        spec_text, n = re.subn(rf"(\b{key}: )\d+", rf"\g<1>{value}", spec_text)
        assert n == 1, f"spec key {key}"
    spec = tmp_path / "model.yaml"
    spec.write_text(spec_text)
    values = {"repo": str(repo), "spec": str(spec), "tmp": str(tmp_path), "python": sys.executable}
    if case.get("server"):
        server = request.getfixturevalue(f"{case['server']}_server")
        values.update(http=server.http_url, grpc=server.grpc_url)

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)

    def pattern(text: str) -> str:  # placeholders in a regex stand for the literal text
        return PLACEHOLDER.sub(lambda m: re.escape(values[m.group(1)]), text)

    _break(repo, case.get("break") or [], fill)
    before_tree, before = _tree(repo), _verification(repo)

    argv = [fill(str(a)) for a in case["command"]]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo_root), os.environ.get("PYTHONPATH", "")]),
               **{k: fill(str(v)) for k, v in (case.get("env") or {}).items()})
    if case.get("inject"):
        cmd = [sys.executable, "-c", INJECTIONS[case["inject"]] + "import sys\nfrom trtrepo.cli import main\n"
               "sys.exit(main(sys.argv[1:]))\n", *argv]
    else:
        cmd = [sys.executable, "-m", "trtrepo", *argv]
    watcher = _Watcher(repo)
    watcher.start()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env=env, cwd=tmp_path, start_new_session=True)
    run = _Run(proc)
    during = case.get("during")
    trigger = re.compile(pattern(during["after"])) if during else None

    def on_line(line: str) -> None:
        if trigger is not None and not run.acted and trigger.search(line):
            _act(run, during, repo, watcher.seen)

    readers = [threading.Thread(target=_reader, args=(s, lines, on_line), daemon=True)
               for s, lines in ((proc.stdout, run.out), (proc.stderr, run.err))]
    for r in readers:
        r.start()
    # a case refused before any work is quick; if the guard breaks, the server it starts must not hold the run
    within = float(expect.get("within", 60 if case["starts"] == "nothing" else 240))
    try:
        code = proc.wait(within)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        for r in readers:
            r.join(10)
        left = _leftovers(repo, float(expect.get("gone_within", 15)))
        watcher.done.set()
        watcher.join(5)
        with contextlib.suppress(ProcessLookupError):  # whatever the case left, never into the next case
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shown = "\n".join(["--- stdout", *run.out, "--- stderr", *run.err])
    assert code is not None, f"still running after {within:.0f} s\n{shown}"
    if during:
        assert run.acted, f"the trigger {during['after']!r} never showed\n{shown}"

    # exit code and message shape
    assert code == expect["exit"], shown
    lines = run.out + run.err
    errors = [i for i, line in enumerate(run.err) if line.startswith("error: ")]
    if "error" in expect:
        assert errors, shown
        first = errors[0]
        assert re.fullmatch(pattern(expect["error"]), run.err[first]), f"error line:\n{run.err[first]}\n{shown}"
        after = run.err[first + 1:]
        if "hint" in expect:
            hints = [line for line in after if line.startswith("hint: ")]
            assert hints and re.fullmatch(pattern(expect["hint"]), hints[-1]), shown
        if expect.get("tail_only", True):
            assert all(line.startswith("hint: ") for line in after) and len(after) <= 1, \
                f"nothing may follow the error line but its hint\n{shown}"
        if expect.get("first"):
            assert first == 0, f"the error must come before any work\n{shown}"
    else:
        assert not errors, shown
    for wanted in expect.get("lines", []):
        assert any(re.search(pattern(wanted), line) for line in lines), f"no line matches {wanted!r}\n{shown}"
    no_lines = list(expect.get("no_lines", []))
    if code != 70:
        no_lines += ["Traceback", "Exception ignored", "this is a bug in trtrepo"]
    for unwanted in no_lines:
        assert not any(re.search(pattern(unwanted), line) for line in lines), f"a line matches {unwanted!r}\n{shown}"

    # processes
    assert not left, f"left running after the command ended: {_describe(left)}\n{shown}"
    started = {comm for comm in watcher.seen.values()}
    if case["starts"] == "nothing":
        assert not started, f"refused cases start no server, saw {watcher.seen}\n{shown}"
    elif code != 2:
        assert "tritonserver" in started, f"the case meant to start a tritonserver\n{shown}"

    # nothing written or lost in the repository
    assert _tree(repo) == before_tree, f"the repository changed\n{shown}"
    assert _verification(repo) == before, "the repository verifies as it did before"
    assert not (repo / "parity-report.json").exists()
    report = expect.get("report", "none")
    default = default_report_path(repo)
    if report == "default":
        assert default.is_file(), shown
    else:
        assert not default.exists(), f"{default} written\n{shown}"
        if report != "none":
            assert Path(fill(report)).is_file(), shown
