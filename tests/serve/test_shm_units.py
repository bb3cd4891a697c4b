"""Shared memory options without a server: the mode check, the CUDA probe's exit 3, stale segments, perf_analyzer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trtrepo.bench.perf_analyzer import perf_analyzer_command
from trtrepo.cli import main
from trtrepo.errors import SpecError
from trtrepo.runners import triton_shm as shm

MINIMAL = Path(__file__).resolve().parents[1] / "spec" / "good" / "minimal.yaml"
DEAD_PID = 4_194_304 + 4321  # above Linux's largest pid_max: no process has it


def test_unknown_mode_names_the_flag_and_the_choices() -> None:
    with pytest.raises(SpecError, match=r"--shared-memory 'posix': must be one of none, system, cuda"):
        shm.check_mode("posix")
    assert main(["check", str(MINIMAL), "--shared-memory", "posix"]) == 2
    assert main(["bench", str(MINIMAL), "--shared-memory", "posix"]) == 2


@pytest.mark.parametrize("command", ["check", "bench"])
def test_cuda_without_gpu_exits_3_before_any_work(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    reason = shm.cuda_unavailable()
    if reason is None:
        pytest.skip("CUDA shared memory is usable here (cuda-python and a GPU): nothing to refuse")
    assert main([command, str(MINIMAL), "--shared-memory", "cuda"]) == 3
    err = capsys.readouterr().err
    first = err.strip().splitlines()[0]
    assert "--shared-memory cuda" in first and f"trtrepo {command}" in first and "GPU" in first, err
    assert "tritonclient[cuda]" in err  # the hint says how to get it
    assert "serve:" not in err and "eager:" not in err  # refused before a server or eager run started


def test_stale_segments_of_dead_processes_are_removed_live_ones_kept(tmp_path: Path) -> None:
    if not shm.SHM_DIR.is_dir():
        pytest.skip(f"{shm.SHM_DIR} does not exist here")
    dead = shm.SHM_DIR / f"{shm.SEGMENT_PREFIX}-{DEAD_PID}-0-in-x"
    mine = shm.SHM_DIR / f"{shm.SEGMENT_PREFIX}-{os.getpid()}-99-in-x"
    foreign = shm.SHM_DIR / f"not-trtrepo-{DEAD_PID}"
    for path in (dead, mine, foreign):
        path.write_bytes(b"\0" * 8)
    try:
        assert dead in shm.segments(DEAD_PID) and mine in shm.segments(os.getpid())
        removed = shm.remove_stale_segments()
        assert dead in removed and not dead.exists()
        assert mine.exists() and foreign.exists()  # a live process's segment, and one that is not ours
    finally:
        for path in (dead, mine, foreign):
            path.unlink(missing_ok=True)


def test_perf_analyzer_gets_shared_memory_and_the_output_size(tmp_path: Path) -> None:
    args = ("/bin/pa", "gelu", 1, "127.0.0.1:8000", 1, 8, True, tmp_path / "in.json", tmp_path / "o.csv", 50)
    plain = perf_analyzer_command(*args)
    assert not any(a.startswith("--shared-memory") or a.startswith("--output-shared") for a in plain)
    cmd = perf_analyzer_command(*args, shared_memory="cuda", output_bytes=2048)
    assert "--shared-memory=cuda" in cmd and "--output-shared-memory-size=2048" in cmd
    assert "--shared-memory=system" in perf_analyzer_command(*args, shared_memory="system")


def test_output_regions_grow_in_powers_of_two() -> None:
    assert [shm._round_up(n) for n in (1, 2, 3, 1000, 1024, 1025)] == [1, 2, 4, 1024, 1024, 2048]
    assert shm._too_small("... output 'y' (16 bytes) should be at least 8192 bytes to hold the results") == 8192
    assert shm._too_small("some other failure") is None


def test_perf_analyzer_and_bench_take_the_grpc_protocol(tmp_path: Path, repo_root: Path) -> None:
    from trtrepo.bench.run import run_bench
    from trtrepo.errors import SpecError

    args = ("/bin/pa", "gelu", 1, "127.0.0.1:8001", 1, 8, True, tmp_path / "in.json", tmp_path / "o.csv", 50)
    cmd = perf_analyzer_command(*args, protocol="grpc")
    assert cmd[cmd.index("-i") + 1] == "grpc" and cmd[cmd.index("-u") + 1] == "127.0.0.1:8001"
    assert perf_analyzer_command(*args)[cmd.index("-i") + 1] == "http"
    spec = repo_root / "examples" / "gelu_block" / "model.yaml"
    with pytest.raises(SpecError, match="give the server's --url-grpc too"):
        run_bench(spec, url_http="127.0.0.1:8000", protocol="grpc", eager=False)
    with pytest.raises(SpecError, match="--protocol: must be http or grpc"):
        run_bench(spec, protocol="quic", eager=False)
