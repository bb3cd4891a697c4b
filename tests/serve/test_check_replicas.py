"""``trtrepo check`` over three real tritonserver replicas of one repository (the gelu example, torch target):
requests spread over them, one report entry per replica, and a replica killed mid-run reported by name, quickly,
while the other two are still checked. The replica list parsing is unit-tested at the end (no server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from trtrepo.check.replicas import Replica, resolve_replicas
from trtrepo.cli import main
from trtrepo.errors import SpecError

KILL_BOUND_S = 60.0  # the whole check with one replica killed mid-run (each request is bounded by its timeout)


@pytest.fixture(scope="module")
def replicas(gelu_project: Path, tritonserver_available: None) -> Iterator[list[Any]]:
    """Three tritonservers on the one built repository (free ports each). The last test kills the third."""
    from trtrepo.serve import TritonServer

    servers = [TritonServer(gelu_project.parent / "repo") for _ in range(3)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.mark.triton
def test_check_over_three_replicas_passes_with_entries_per_replica(gelu_project: Path, replicas: list[Any],
                                                                   tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", str(gelu_project), "--report", str(tmp_path / "r.json")]
    for server in replicas:
        argv += ["--url-http", server.http_url, "--url-grpc", server.grpc_url]
    assert main(argv) == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["passed"] is True
    names = [r["name"] for r in data["replicas"]]
    assert names == [s.http_url for s in replicas]
    for entry in data["replicas"]:
        assert entry["status"] == "ok" and entry["requests"] > 0 and entry["failed"] == 0
    # every replica answered both protocols: the requests really were spread
    for name in names:
        assert {c["protocol"] for c in data["cases"] if c["replica"] == name} == {"http", "grpc"}
    assert sum(r["requests"] for r in data["replicas"]) == len(data["cases"])
    out = capsys.readouterr().out
    assert "replica" in out and out.rstrip().endswith(f"parity: PASS ({len(data['cases'])} requests)")


@pytest.mark.triton
def test_replica_killed_mid_run_is_reported_by_name_and_others_pass(gelu_project: Path, replicas: list[Any],
                                                                    tmp_path: Path) -> None:
    from trtrepo.check import run_check

    endpoints = tmp_path / "replicas.txt"
    endpoints.write_text("# http grpc name\n" + "".join(f"{s.http_url} {s.grpc_url} r{i}\n"
                                                        for i, s in enumerate(replicas, 1)))
    victim = replicas[2]
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if victim.is_alive() and line.endswith("[r3]") and ": ok" in line:  # r3 answered once: now it dies
            victim.kill()
            victim.process.wait(10)

    started = time.monotonic()
    report = run_check(gelu_project, endpoints_file=endpoints, progress=progress, request_timeout=10)
    elapsed = time.monotonic() - started
    assert elapsed < KILL_BOUND_S, elapsed
    assert not report.passed
    by_name = {r.name: r for r in report.replicas}
    assert by_name["r3"].status == "UNREACHABLE" and "not reachable" in by_name["r3"].error
    assert by_name["r3"].requests >= 2  # the one it answered and the one that found it dead
    for name in ("r1", "r2"):
        assert by_name[name].passed, report.table()
    # after r3 died, every request went to r1/r2 and matched; the one that found it dead was sent again, so every
    # case was checked by a replica that answered it
    assert all(c.passed for c in report.cases if c.replica != "r3")
    checked = {(c.protocol, c.case) for c in report.cases if c.passed}
    cases = {"min", "opt", "max", "random-0", "random-1", *(f"ragged-{i}" for i in range(6))}
    assert checked == {(p, c) for p in ("http", "grpc") for c in cases}
    assert any(c.passed for c in report.cases if c.replica == "r3")
    assert "FAIL replica r3: " in report.table()
    assert any(line.startswith("replica r3: FAILED") for line in lines)


# ------------------------------------------------------------------ the replica list (unit: no server)
def test_urls_pair_by_position() -> None:
    got = resolve_replicas(None, None, (["a:1", "b:1"], ["a:2", "b:2"]))
    assert got == [Replica("a:1", "a:1", "a:2"), Replica("b:1", "b:1", "b:2")]
    assert resolve_replicas(None, None, ([], ["a:2", "b:2"]))[1] == Replica("b:2", None, "b:2")
    assert resolve_replicas(None, None, None) == []


def test_endpoints_file(tmp_path: Path) -> None:
    path = tmp_path / "e.txt"
    path.write_text("# replicas\n\n127.0.0.1:8000 127.0.0.1:8001 left   # first\nh2:8000 h2:8001\n")
    assert resolve_replicas(None, None, None, path) == [Replica("left", "127.0.0.1:8000", "127.0.0.1:8001"),
                                                        Replica("h2:8000", "h2:8000", "h2:8001")]


@pytest.mark.parametrize(("text", "urls", "message"), [
    (None, (["a:1", "b:1"], ["a:2"]), "--url-http given 2 times, --url-grpc 1 times"),
    ("a:1 a:2 x\nb:1 b:2 x\n", None, "replica name 'x' is given twice"),
    ("a:1 a:2\nb:1 -\n", None, "serve different protocols"),
    ("a:1\n", None, "e.txt:1: expected 'HTTP GRPC [NAME]'"),
    ("a:1 http://b:2\n", None, "e.txt:1) 'http://b:2': give host:port without a scheme"),
    ("", None, "lists no replica"),
    ("a:1 a:2\n", (["c:1"], []), "either in the file or as --url-http/--url-grpc"),
    (None, (["a:1", "b:99999"], []), "--url-http replica 2 'b:99999': port"),
])
def test_bad_replica_lists_name_what_is_wrong(tmp_path: Path, text: str | None,
                                             urls: tuple[list[str], list[str]] | None, message: str) -> None:
    path = None
    if text is not None:
        path = tmp_path / "e.txt"
        path.write_text(text)
    with pytest.raises(SpecError) as info:
        resolve_replicas(None, None, urls, path)
    assert message in info.value.message


def test_cli_passes_several_replicas_to_the_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Repeated flags and --endpoints reach run_check as replica lists; one of each stays the single-server form."""
    import sys
    import types

    seen: list[dict[str, object]] = []

    class Report:
        passed = True

        def table(self) -> str:
            return ""

    def run_check(spec_path: Path, **kwargs: object) -> Report:
        seen.append(kwargs)
        return Report()

    fake = types.ModuleType("trtrepo.check")
    fake.run_check = run_check  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "trtrepo.check", fake)
    spec = tmp_path / "model.yaml"
    spec.write_text("models: []\n")
    assert main(["check", str(spec), "--url-http", "a:1", "--url-http", "b:1", "--url-grpc", "a:2",
                 "--url-grpc", "b:2"]) == 0
    assert seen[-1]["replica_urls"] == (("a:1", "b:1"), ("a:2", "b:2")) and "url_http" not in seen[-1]
    assert main(["check", str(spec), "--endpoints", str(spec)]) == 0
    assert seen[-1]["endpoints_file"] == spec
    assert main(["check", str(spec), "--url-http", "a:1"]) == 0
    assert seen[-1]["url_http"] == "a:1" and seen[-1]["url_grpc"] is None and "replica_urls" not in seen[-1]
