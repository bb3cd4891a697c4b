"""``trtrepo check`` over several replicas of one repository: requests spread round-robin, results per replica.

The replicas come from repeated ``--url-http``/``--url-grpc`` (paired by position) or an endpoints file (one
replica a line: ``HTTP GRPC [NAME]``, ``-`` for a protocol the replica does not serve, ``#`` comments). Every
replica must serve the same protocols.

For each protocol and model, every live replica must first have the model ready; then the single requests go to
the live replicas in turn (case *i* to replica *i mod n*), and each ragged burst to one replica (the next in turn),
so every replica answers part of every model. A replica that cannot be reached or answers with a transport error
(connection refused, reset, timeout: every call of :class:`~trtrepo.runners.triton_client.TritonClient` is bounded
by the request timeout) is marked failed with that error and takes no more requests; the request (or burst) that
found it dead is sent again to the next live replica, so every case is still checked by the others. The
run ends with a ServeError only when no replica is left. The report (:class:`~trtrepo.check.report.CheckReport`)
says per case which replica answered and per replica how many requests it answered and why it failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trtrepo.errors import ServeError, SpecError

if TYPE_CHECKING:
    from trtrepo.check.report import CheckReport, ReplicaResult
    from trtrepo.check.run import Progress, Reference
    from trtrepo.runners.triton_client import TritonClient
    from trtrepo.spec import ModelSpec

LOGGER = logging.getLogger(__name__)

NONE_MARK = "-"


@dataclass(frozen=True)
class Replica:
    """One server of the set: its name and its ``host:port`` per protocol (None where it has none)."""

    name: str
    http: str | None
    grpc: str | None

    def url(self, protocol: str) -> str:
        """The endpoint of ``protocol``."""
        url = self.http if protocol == "http" else self.grpc
        if url is None:
            raise ValueError(f"replica {self.name} has no {protocol} endpoint")
        return url


def resolve_replicas(url_http: str | None, url_grpc: str | None,
                     replica_urls: tuple[Sequence[str], Sequence[str]] | None = None,
                     endpoints_file: str | Path | None = None) -> list[Replica]:
    """The replicas to check, URLs validated; empty when none was given (the check starts its own server).

    Args:
        url_http: One HTTP endpoint (the single-server form).
        url_grpc: One gRPC endpoint.
        replica_urls: Repeated ``--url-http`` values and repeated ``--url-grpc`` values, paired by position.
        endpoints_file: A file of ``HTTP GRPC [NAME]`` lines.

    Raises:
        SpecError: URLs given both as options and in a file, lists of different lengths, a malformed line or URL,
            two replicas with one name, replicas serving different protocols.
    """
    from trtrepo.check.run import _check_url

    http = ([url_http] if url_http else []) + list(replica_urls[0] if replica_urls else [])
    grpc = ([url_grpc] if url_grpc else []) + list(replica_urls[1] if replica_urls else [])
    if endpoints_file is not None:
        if http or grpc:
            raise SpecError(f"--endpoints {endpoints_file}: give the replicas either in the file or as "
                            "--url-http/--url-grpc, not both")
        rows = _read_endpoints(Path(endpoints_file))
    else:
        if http and grpc and len(http) != len(grpc):
            raise SpecError(f"--url-http given {len(http)} times, --url-grpc {len(grpc)} times: they pair by "
                            "position, one of each per replica (or only one kind)")
        count = max(len(http), len(grpc))
        rows = [((http[i] if http else None), (grpc[i] if grpc else None), None, f"replica {i + 1}")
                for i in range(count)]
    replicas = []
    located = len(rows) > 1 or endpoints_file is not None  # say which replica (or line) a bad URL is on
    for h, g, name, where in rows:
        hv = _check_url(f"--url-http {where}" if located else "--url-http", h) if h else None
        gv = _check_url(f"--url-grpc {where}" if located else "--url-grpc", g) if g else None
        replicas.append(Replica(name=name or hv or gv or where, http=hv, grpc=gv))
    names = [r.name for r in replicas]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise SpecError(f"replica name {dup!r} is given twice", hint="name each replica once")
    kinds = {(r.http is not None, r.grpc is not None) for r in replicas}
    if len(kinds) > 1:
        raise SpecError("the replicas serve different protocols (some lack an HTTP or gRPC endpoint)",
                        hint="give every replica the same endpoints")
    return replicas


def _read_endpoints(path: Path) -> list[tuple[str | None, str | None, str | None, str]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"--endpoints {path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    rows: list[tuple[str | None, str | None, str | None, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3) or fields[:2] == [NONE_MARK, NONE_MARK]:
            raise SpecError(f"{path}:{number}: expected 'HTTP GRPC [NAME]' (host:port or '-'), got {raw.strip()!r}")
        h, g = (None if f == NONE_MARK else f for f in fields[:2])
        rows.append((h, g, fields[2] if len(fields) == 3 else None, f"({path}:{number})"))
    if not rows:
        raise SpecError(f"--endpoints {path}: lists no replica")
    return rows


class _Live:
    """A replica during the run: its clients (one per protocol, kept open) and whether it failed."""

    def __init__(self, replica: Replica, result: ReplicaResult, timeout: float, shared_memory: str = "none") -> None:
        self.replica = replica
        self.result = result
        self.timeout = timeout
        self.shared_memory = shared_memory
        self._clients: dict[str, TritonClient] = {}

    @property
    def alive(self) -> bool:
        return not self.result.error

    def client(self, protocol: str) -> TritonClient:
        from trtrepo.runners.triton_client import TritonClient

        if protocol not in self._clients:
            self._clients[protocol] = TritonClient(protocol, self.replica.url(protocol), self.timeout,
                                                         self.shared_memory)
        return self._clients[protocol]

    def fail(self, exc: BaseException, progress: Progress) -> None:
        self.result.error = str(exc)
        progress(f"replica {self.replica.name}: FAILED, no more requests go to it: {exc}")
        self.close()

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


def check_replicas(report: CheckReport, chosen: Sequence[ModelSpec], protocols: Sequence[str],
                   replicas: Sequence[Replica], served_names: dict[str, list[str]],
                   references: dict[str, list[Reference]], timeout: float, ready_timeout: float,
                   progress: Progress, shared_memory: str = "none") -> None:
    """Check every model over every protocol, its requests spread over ``replicas``; results into ``report``.

    Raises:
        ServeError: Every replica failed (the message names each with its error).
    """
    from trtrepo.check.report import ReplicaResult

    live = [_Live(r, ReplicaResult(name=r.name, http=r.http, grpc=r.grpc), timeout, shared_memory)
            for r in replicas]
    report.replicas = [s.result for s in live]
    report.endpoints = {p: ", ".join(r.url(p) for r in replicas) for p in protocols}
    progress(f"check: {len(replicas)} replicas: " + ", ".join(r.name for r in replicas))
    try:
        turn = 0
        for protocol in protocols:
            for model in chosen:
                turn = _check_model(report, model, protocol, live, served_names[model.name], references[model.name],
                                    ready_timeout, turn, progress)
    finally:
        for s in live:
            s.close()
    for s in live:
        done = [c for c in report.cases if c.replica == s.replica.name]
        s.result.requests = len(done)
        s.result.failed = sum(1 for c in done if not c.passed)
        progress(f"replica {s.replica.name}: {s.result.status} ({s.result.requests - s.result.failed}/"
                 f"{s.result.requests} requests matched){': ' + s.result.error if s.result.error else ''}")


def _next_live(live: Sequence[_Live], turn: int) -> tuple[_Live, int]:
    """The first live replica at or after ``turn`` (round-robin), and the turn after it."""
    for step in range(len(live)):
        s = live[(turn + step) % len(live)]
        if s.alive:
            return s, turn + step + 1
    failed = "; ".join(f"{s.replica.name}: {s.result.error}" for s in live)
    raise ServeError(f"every replica failed ({failed})", hint="are the servers running? check the endpoints")


def _check_model(report: CheckReport, model: ModelSpec, protocol: str, live: Sequence[_Live], served: list[str],
                 references: list[Reference], ready_timeout: float, turn: int, progress: Progress) -> int:
    from trtrepo.check.run import _case, _case_line, _check_ragged, _compare_outputs, _split_cases
    from trtrepo.runners.triton_client import RequestFailed

    started = time.monotonic()
    for s in live:
        if s.alive:
            try:
                s.client(protocol).wait_model_ready(model.name, ready_timeout, progress=progress)
            except ServeError as exc:
                s.fail(exc, progress)
    datatypes, singles, ragged = _split_cases(model, references)
    progress(f"check: {model.name} over {protocol}: {len(singles)} requests one by one across the live replicas"
             + (f", then {len(ragged)} at once (ragged batches) on one of them" if ragged else ""))
    first = len(report.cases)
    for case, expected in singles:
        while True:  # a replica found dead keeps its failed entry; the case goes to the next live one
            target, turn = _next_live(live, turn)
            result = _case(model, protocol, case)
            result.replica = target.replica.name
            try:
                reply = target.client(protocol).infer(model.name, case.arrays, served, datatypes)
            except RequestFailed as exc:
                result.error = str(exc)
            except ServeError as exc:
                result.error = str(exc)
                target.fail(exc, progress)
            else:
                result.latency_ms = round(reply.latency_s * 1e3, 3)
                result.outputs = _compare_outputs(model, served, reply.outputs, expected)
            report.cases.append(result)
            progress(f"{_case_line(result)} [{target.replica.name}]")
            if target.alive:
                break
    while ragged:
        target, turn = _next_live(live, turn)
        before = len(report.cases)
        try:
            _check_ragged(report, model, protocol, target.replica.url(protocol), served, ragged, datatypes, None,
                          target.timeout, progress, target.shared_memory)
        except ServeError as exc:
            del report.cases[before:]  # a burst cut short: one failed entry for the replica, not half a burst
            failed = _case(model, protocol, ragged[0][0])
            failed.case, failed.error = "ragged", str(exc)
            report.cases.append(failed)
            target.fail(exc, progress)
        for c in report.cases[before:]:
            c.replica = target.replica.name
        if target.alive:
            break
    done = report.cases[first:]
    progress(f"check: {model.name} {protocol}: {sum(1 for c in done if c.passed)}/{len(done)} requests matched "
             f"({time.monotonic() - started:.1f} s)")
    return turn
