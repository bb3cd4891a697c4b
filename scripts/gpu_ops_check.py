"""GPU check of the custom ops: CUDA kernels vs the pure-PyTorch decompositions, exported model on the GPU, timing.

Run through scripts/gpu_ops_check.sh (it also runs this under compute-sanitizer). Modes:
    full:  every case below + export/reload check + bandwidth numbers; writes <out>/gpu_ops_check.json
    small: a few cases touching every code path (vector/scalar, warp/block per row, misaligned), for sanitizers
Prints PASS or FAIL as its last line; exit status 0 only on PASS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# (rows, cols): odd cols (1, 3, 127, 8193), the warp/block switch (1024/1025), vector widths (8, 64, 4096), many
# rows (grid-stride loops) and a single long row.
FULL_SHAPES = [(1, 1), (100_003, 1), (7, 3), (5, 8), (33, 127), (65_536, 64), (9, 1024), (9, 1025), (4, 4096),
               (1_024, 4096), (3, 8193), (1, 65_536)]
SMALL_SHAPES = [(3, 1), (5, 8), (3, 127), (4, 1024), (3, 1025), (2, 4096), (2, 8193)]


def tolerance(dtype: Any) -> dict[str, float]:
    """Both sides compute in fp32 and round once; GPU tanhf/rsqrtf and summation order differ from the CPU by a few
    fp32 ulp: 1e-5 for fp32, one ulp of the dtype (finfo.eps) for fp16/bf16."""
    import torch

    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-5}
    eps = torch.finfo(dtype).eps
    return {"rtol": eps, "atol": eps}


def errors(got: Any, want: Any) -> dict[str, float]:
    """Worst absolute and relative error."""
    g, w = got.double().cpu(), want.double().cpu()
    diff = (g - w).abs()
    rel = diff / w.abs().clamp_min(1e-12)
    return {"max_abs": float(diff.max()) if diff.numel() else 0.0, "max_rel": float(rel.max()) if rel.numel() else 0.0}


def _tensor(shape: tuple[int, ...], dtype: Any, gen: Any, misaligned: bool, scale: float = 1.0) -> Any:
    """A contiguous CUDA tensor; misaligned: starts one element past a 256-byte aligned allocation (scalar path)."""
    import torch

    n = 1
    for d in shape:
        n *= d
    values = (scale * torch.randn(n, generator=gen)).to(dtype)
    if not misaligned:
        return values.reshape(shape).cuda()
    base = torch.empty(n + 1, dtype=dtype, device="cuda")
    base[1:] = values.cuda()
    return base[1:].view(shape)


def check_case(built: Any, rows: int, cols: int, dtype: Any, misaligned: bool) -> list[dict[str, Any]]:
    """Both ops on one shape/dtype; returns one record per output."""
    import torch

    gen = torch.Generator().manual_seed(rows * 131 + cols)
    tol = tolerance(dtype)
    name = f"{rows}x{cols} {str(dtype).removeprefix('torch.')}{' misaligned' if misaligned else ''}"
    out = []

    x = _tensor((rows, cols), dtype, gen, misaligned, 3.0)
    bias = _tensor((cols,), dtype, gen, misaligned)
    ref = built.descriptions["trtrepo::bias_gelu"].load_decomposition()(x.cpu(), bias.cpu())
    got = torch.ops.trtrepo.bias_gelu(x, bias)
    out.append(_record("bias_gelu", "out", name, got, ref, tol))

    x = _tensor((rows, cols), dtype, gen, misaligned)
    res = _tensor((rows, cols), dtype, gen, misaligned)
    w = (1 + 0.1 * _tensor((cols,), torch.float32, gen, False)).to(dtype)
    ref_o, ref_r = built.descriptions["trtrepo::fused_add_rms_norm"].load_decomposition()(
        x.cpu(), res.cpu(), w.cpu(), 1e-5)
    got_o, got_r = torch.ops.trtrepo.fused_add_rms_norm(x, res, w, 1e-5)
    out.append(_record("fused_add_rms_norm", "out", name, got_o, ref_o, tol))
    out.append(_record("fused_add_rms_norm", "residual_out", name, got_r, ref_r, {"rtol": 0.0, "atol": 0.0}))
    return out


def _record(op: str, output: str, case: str, got: Any, want: Any, tol: dict[str, float]) -> dict[str, Any]:
    import torch

    torch.cuda.synchronize()
    ok = got.shape == want.shape and got.dtype == want.dtype and bool(
        torch.allclose(got.cpu().double(), want.double(), rtol=tol["rtol"], atol=tol["atol"]))
    rec = {"op": op, "output": output, "case": case, "ok": ok, **errors(got, want), **tol}
    print(f"{'ok  ' if ok else 'FAIL'} {op}.{output} {case}: max_abs={rec['max_abs']:.3g} max_rel={rec['max_rel']:.3g}")
    return rec


def bandwidth(dtype: Any) -> dict[str, float]:
    """GB/s of each op and of its eager decomposition on a large tensor (bytes moved / median time)."""
    import torch

    rows, cols = 16_384, 4096
    x = torch.randn(rows, cols, device="cuda").to(dtype)
    r = torch.randn_like(x)
    w = torch.randn(cols, device="cuda").to(dtype)
    size = x.element_size() * x.numel()
    from trtrepo.ops.description import load_op_description

    dec_g = load_op_description(REPO / "plugin_src/bias_gelu/op.yaml").load_decomposition()
    dec_n = load_op_description(REPO / "plugin_src/fused_add_rms_norm/op.yaml").load_decomposition()

    def timed(fn: Any) -> float:
        for _ in range(3):
            fn()
        times = []
        for _ in range(20):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) / 1e3)
        return sorted(times)[len(times) // 2]

    return {
        "bias_gelu_GBps": 2 * size / timed(lambda: torch.ops.trtrepo.bias_gelu(x, w)) / 1e9,
        "bias_gelu_eager_GBps": 2 * size / timed(lambda: dec_g(x, w)) / 1e9,
        "fused_add_rms_norm_GBps": 4 * size / timed(lambda: torch.ops.trtrepo.fused_add_rms_norm(x, r, w, 1e-6)) / 1e9,
        "fused_add_rms_norm_eager_GBps": 4 * size / timed(lambda: dec_n(x, r, w, 1e-6)) / 1e9,
    }


def export_check(built: Any, out: Path) -> dict[str, Any]:
    """Export examples/gelu_block on the GPU, then in a fresh process that only load_library()s the .so (what the
    Triton python backend does), torch.export.load + run it and compare with eager."""
    import importlib.util

    import torch
    from torch.export import Dim

    spec = importlib.util.spec_from_file_location("gpu_check_gelu_block", REPO / "examples/gelu_block/model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.build().cuda()
    ep = torch.export.export(net, (torch.randn(4, 64, device="cuda"),),
                             dynamic_shapes={"x": {0: Dim("batch", min=1, max=64)}})
    nodes = sum(1 for n in ep.graph.nodes if n.op == "call_function" and str(n.target).startswith("trtrepo."))
    work = out / "export_check"
    work.mkdir(parents=True, exist_ok=True)
    torch.export.save(ep, str(work / "model.pt2"))
    x = torch.randn(5, 64, device="cuda")
    torch.save({"x": x.cpu(), "y": net(x).cpu()}, work / "io.pt")
    script = (
        "import torch\n"
        f"torch.ops.load_library({str(built.torch_library)!r})\n"
        f"ep = torch.export.load({str(work / 'model.pt2')!r})\n"
        f"io = torch.load({str(work / 'io.pt')!r})\n"
        "y = ep.module()(io['x'].cuda()).cpu()\n"
        "print('MAXDIFF', float((y - io['y']).abs().max()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, check=False)
    maxdiff = None
    for line in proc.stdout.splitlines():
        if line.startswith("MAXDIFF"):
            maxdiff = float(line.split()[1])
    ok = proc.returncode == 0 and nodes == 2 and maxdiff is not None and maxdiff <= 1e-5
    print(f"{'ok  ' if ok else 'FAIL'} export/reload without Python fakes: nodes={nodes} maxdiff={maxdiff}")
    return {"ok": ok, "custom_op_nodes": nodes, "max_abs": maxdiff, "returncode": proc.returncode,
            "stderr_tail": proc.stderr[-3000:]}


def main(argv: list[str] | None = None) -> int:
    """Build the CUDA op library, run the checks, write the summary; 0 on PASS."""
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["full", "small"])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    import torch

    from trtrepo import settings
    from trtrepo.ops.build import build_ops
    from trtrepo.ops.library import load_ops

    if not torch.cuda.is_available():
        print("no CUDA device visible to torch\nFAIL")
        return 1
    start = time.monotonic()
    built = build_ops([REPO / "plugin_src"], settings.cache_dir(), with_cuda=True, progress=print)
    load_ops(built)
    summary: dict[str, Any] = {
        "mode": args.mode, "torch": torch.__version__, "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(), "capability": list(torch.cuda.get_device_capability()),
        "torch_library": str(built.torch_library), "build_s": round(time.monotonic() - start, 1),
    }
    dtypes = [torch.float32, torch.float16, torch.bfloat16]
    shapes = FULL_SHAPES if args.mode == "full" else SMALL_SHAPES
    records = []
    for dtype in dtypes:
        for rows, cols in shapes:
            records += check_case(built, rows, cols, dtype, misaligned=False)
        for rows, cols in shapes[:4] if args.mode == "full" else shapes:
            records += check_case(built, rows, cols, dtype, misaligned=True)
    summary["cases"] = records
    ok = all(r["ok"] for r in records)
    if args.mode == "full":
        summary["export"] = export_check(built, args.out)
        ok = ok and summary["export"]["ok"]
        summary["bandwidth"] = {str(d).removeprefix("torch."): bandwidth(d) for d in dtypes}
        print(json.dumps(summary["bandwidth"], indent=1))
    summary["pass"] = ok
    (args.out / f"gpu_ops_check_{args.mode}.json").write_text(json.dumps(summary, indent=1))
    print(f"{sum(r['ok'] for r in records)}/{len(records)} output checks passed")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
