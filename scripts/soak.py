#!/usr/bin/env python3
"""Soak test: many requests at fixed concurrency against a served model on loopback; errors and latency.

Builds nothing: point it at a built repository (``trtrepo build`` first) and the model.yaml it came from. It
starts tritonserver on 127.0.0.1 with free ports (or uses --url), sends ``--requests`` requests from
``--concurrency`` threads (one client each, batch sizes cycling through ``--batch-sizes``), bounded by
``--max-seconds``, and checks a sample of answers against eager PyTorch. Writes JSON and a Markdown summary.

    PYTHONPATH=. python scripts/soak.py examples/gelu_block/model.yaml --requests 10000 --concurrency 16 \
        --json docs/soak.json --markdown docs/soak.md
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_yaml", type=Path)
    parser.add_argument("--model", default=None, help="model name (default: the first)")
    parser.add_argument("--repository", type=Path, default=None)
    parser.add_argument("--url", default=None, help="host:port of a running server (protocol: --protocol)")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="grpc")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-sizes", default="1,2,4,8")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    parser.add_argument("--check-every", type=int, default=50, help="compare every Nth answer with eager")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)

    from trtrepo.spec import load_spec

    spec = load_spec(args.model_yaml)
    model = spec.model(args.model) if args.model else spec.models[0]
    repository = (args.repository or spec.repository).resolve()
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    if model.triton.max_batch_size:
        sizes = [s for s in sizes if s <= model.triton.max_batch_size] or [1]
    pool = _inputs(model, sizes)
    references = _eager(spec, model, pool)

    if args.url:
        result = _soak(args, model, args.url, pool, references)
        command = ""
    else:
        from trtrepo.serve import TritonServer

        with TritonServer(repository) as server:
            url = server.http_url if args.protocol == "http" else server.grpc_url
            command = server.command_line
            result = _soak(args, model, url, pool, references)
            server.check_alive()
    result.update({"model": model.name, "protocol": args.protocol, "concurrency": args.concurrency,
                   "batch_sizes": sizes, "server_command": command, "machine": _machine()})
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(_markdown(result, args))
    ok = result["errors"] == 0 and result["mismatches"] == 0 and result["completed"] == args.requests
    return 0 if ok else 1


def _inputs(model, sizes):
    from trtrepo.check.inputs import _arrays

    rng = np.random.default_rng(model.parity.seed)
    pool = []
    for batch in sizes:
        shapes = {t.name: (batch, *t.opt[1:]) if model.triton.max_batch_size else tuple(t.opt) for t in model.inputs}
        pool.append(_arrays(model.inputs, shapes, rng))
    return pool


def _eager(spec, model, pool):
    import torch

    from trtrepo.check.inputs import to_numpy, to_torch
    from trtrepo.export import load_module
    from trtrepo.ops.stage import prepare_ops

    prepare_ops(spec, [model], progress=lambda _: None)
    net = load_module(model, spec.root, "cpu")
    refs = []
    for arrays in pool:
        with torch.inference_mode():
            out = net(*[to_torch(arrays[t.name], t.dtype) for t in model.inputs])
        refs.append([to_numpy(o) for o in (out if isinstance(out, (tuple, list)) else [out])])
    return refs


def _soak(args, model, url, pool, references):
    from trtrepo import dtypes
    from trtrepo.check import _served_output_names
    from trtrepo.check.client import TritonClient
    from trtrepo.check.compare import compare
    from trtrepo.check.tolerances import output_tolerance

    served = _served_output_names(model, (args.repository or model_repository(args)).resolve())
    datatypes = {t.name: dtypes.get(t.dtype).triton for t in model.inputs}
    counter = iter(range(args.requests))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    mismatches: list[str] = []
    checked = [0]
    deadline = time.monotonic() + args.max_seconds

    def worker() -> None:
        with TritonClient(args.protocol, url, timeout=30) as client:
            while time.monotonic() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                k = i % len(pool)
                try:
                    reply = client.infer(model.name, pool[k], served, datatypes)
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                with lock:
                    latencies.append(reply.latency_s)
                if i % args.check_every == 0:
                    for spec_out, name, expected in zip(model.outputs, served, references[k], strict=True):
                        atol, rtol = output_tolerance(model, spec_out.name)
                        r = compare(spec_out.name, reply.outputs[name], expected, atol, rtol)
                        with lock:
                            checked[0] += 1
                            if not r.passed:
                                mismatches.append(f"request {i}: {r.message}")

    start = time.monotonic()
    threads = [threading.Thread(target=worker, name=f"soak-{n}") for n in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    ms = sorted(x * 1e3 for x in latencies)

    def pct(p: float) -> float:
        return round(ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))], 3) if ms else float("nan")

    return {
        "requested": args.requests,
        "completed": len(latencies),
        "errors": len(errors),
        "error_samples": sorted(set(errors))[:5],
        "outputs_checked": checked[0],
        "mismatches": len(mismatches),
        "mismatch_samples": mismatches[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1) if wall else None,
        "latency_ms": {"mean": round(statistics.fmean(ms), 3) if ms else None, "p50": pct(50), "p90": pct(90),
                       "p95": pct(95), "p99": pct(99), "max": round(ms[-1], 3) if ms else None},
        "stopped_by_time_limit": time.monotonic() >= deadline,
    }


def model_repository(args):
    from trtrepo.spec import load_spec

    return load_spec(args.model_yaml).repository


def _machine() -> dict[str, object]:
    import os

    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _markdown(r: dict, args) -> str:
    lat = r["latency_ms"]
    counts = " | ".join(str(r[k]) for k in ("requested", "completed", "errors", "outputs_checked", "mismatches",
                                             "wall_s", "throughput_rps"))
    return f"""# Soak test

`scripts/soak.py` against a real tritonserver on loopback ({r['protocol']}), model `{r['model']}` (torch target,
Python backend), {r['concurrency']} concurrent clients, batch sizes {r['batch_sizes']} in rotation, every
{args.check_every}th answer compared with eager PyTorch.

Machine: {r['machine']['platform']}, {r['machine']['cpus']} CPUs, GPU: {r['machine']['gpu'] or 'none'};
Python {r['machine']['python']}, torch {r['machine']['torch']}, numpy {r['machine']['numpy']}.

| requests | completed | errors | outputs checked | mismatches | wall (s) | throughput (req/s) |
| --- | --- | --- | --- | --- | --- | --- |
| {counts} |

| latency (ms) | mean | p50 | p90 | p95 | p99 | max |
| --- | --- | --- | --- | --- | --- | --- |
| client round trip | {lat['mean']} | {lat['p50']} | {lat['p90']} | {lat['p95']} | {lat['p99']} | {lat['max']} |

Reproduce: `PYTHONPATH=. python scripts/soak.py {args.model_yaml} --requests {args.requests} --concurrency
{args.concurrency} --protocol {r['protocol']} --json docs/soak.json --markdown docs/soak.md` (build the repository
first). Raw numbers: docs/soak.json. These are CPU numbers on a 2-core CI machine: they show the server stays
correct and error-free under sustained concurrent load, not GPU performance.
"""


if __name__ == "__main__":
    sys.exit(main())
