"""Compile the custom ops: torch op library (.so), PTX per kernel (TensorRT AOT plugins), TensorRT plugin library.

Why direct compiler invocations and not ``torch.utils.cpp_extension.load``: ``load`` compiles inside the Python
process, hides its commands, caches by name rather than by content and cannot leave a reproduce script. Here every
step is a subprocess whose command and output go to ``build.log`` beside the artifact, the commands are written to
``reproduce.sh``, and the cache key is a sha256 over the sources, the commands and the toolchain versions, so a
rebuild with nothing changed compiles nothing. ``cpp_extension`` is still used for what it knows best: torch's
include and library paths. The kernels (.cu) include no torch headers, so nvcc only compiles plain CUDA; the torch
bindings (.cpp) are compiled by the host compiler.

The TensorRT plugin library is built by CMake (``plugin_src/CMakeLists.txt``, target ``trtrepo_trt_plugins``) and
only when TensorRT's headers and libraries are found.

Environment:
    TRTREPO_CUDA_ARCHS: CUDA architectures, e.g. ``80;90`` (also ``sm_90``, ``compute_90a``, ``9.0``). Default for
        the CUDA torch library: the visible GPU's, else 90; for PTX: the lowest given, else 80 (PTX is JIT-compiled
        forward by the driver, so the lowest one runs everywhere).
    TRTREPO_CACHE_DIR: Cache root (``trtrepo.settings.cache_dir``).
    TENSORRT_ROOT / TRTREPO_TENSORRT_ROOT: Where TensorRT is installed (``include/NvInfer.h``, ``lib/libnvinfer.so``).
    TRTREPO_BUILD_JOBS: Parallel compiler processes (default: CPU count).
    CXX: Host compiler (default ``c++``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from trtrepo import deps, settings
from trtrepo._hashing import content_key, sha256_file
from trtrepo.errors import BuildError, MissingDependencyError
from trtrepo.ops.description import OpDescription, discover_ops

LOGGER = logging.getLogger(__name__)

LIBRARY_NAME = "libtrtrepo_ops.so"
TRT_TARGET = "trtrepo_trt_plugins"
DEFAULT_PTX_ARCH = "80"
DEFAULT_GPU_ARCH = "90"
HEARTBEAT_S = 15.0
_DONE = "artifacts.json"
# torch's recent headers use C++20 (cpp_extension compiles with -std=c++20 too); the kernels stay C++17 for nvcc.
_CXX_FLAGS = ("-std=c++20", "-O3", "-fPIC", "-Wall", "-Wno-unused-function")
_NVCC_FLAGS = ("-std=c++17", "-O3", "--expt-relaxed-constexpr")

Progress = Callable[[str], None]

_compile_count = 0


def compile_count() -> int:
    """How many compiler/CMake processes this Python process has started (a cache hit starts none)."""
    return _compile_count


@dataclass(frozen=True)
class BuiltOps:
    """What :func:`build_ops` produced.

    Attributes:
        descriptions: op name → description.
        torch_library: The op library for ``torch.ops.load_library``.
        with_cuda: Whether the library holds CUDA kernels (else CPU only).
        ptx: op name → PTX file with every dtype entry of the op's kernel.
        trt_plugin_library: The TensorRT plugin library, or None when not asked for.
        hashes: sha256 per artifact: ``torch_library``, ``ptx:<op name>``, ``trt_plugin_library``.
    """

    descriptions: dict[str, OpDescription]
    torch_library: Path
    with_cuda: bool
    ptx: dict[str, Path]
    trt_plugin_library: Path | None
    hashes: dict[str, str]


def parse_archs(value: str) -> list[str]:
    """``"sm_80;compute_90a, 8.6"`` → ``["80", "90a", "86"]``.

    Raises:
        BuildError: An entry is not a CUDA architecture.
    """
    archs = []
    for item in re.split(r"[;,\s]+", value.strip()):
        if not item:
            continue
        m = re.fullmatch(r"(?:sm_|compute_)?(\d+)(?:\.(\d))?([af]?)", item)
        if not m:
            raise BuildError(f"TRTREPO_CUDA_ARCHS: {item!r} is not a CUDA architecture",
                             hint="use numbers like 80;90 (or sm_90, compute_90a, 9.0)")
        archs.append(m.group(1) + (m.group(2) or "") + m.group(3))
    return archs


def _arch_key(arch: str) -> int:
    return int(re.match(r"\d+", arch).group(0))  # type: ignore[union-attr]


def ptx_arch() -> str:
    """The virtual architecture PTX is generated for (see the module doc)."""
    env = os.environ.get("TRTREPO_CUDA_ARCHS")
    if env and parse_archs(env):
        return min(parse_archs(env), key=_arch_key)
    return DEFAULT_PTX_ARCH


def gpu_archs() -> list[str]:
    """Architectures the CUDA torch library is compiled for (see the module doc)."""
    env = os.environ.get("TRTREPO_CUDA_ARCHS")
    if env and parse_archs(env):
        return parse_archs(env)
    if deps.has_cuda_torch():
        import torch

        major, minor = torch.cuda.get_device_capability()
        return [f"{major}{minor}"]
    return [DEFAULT_GPU_ARCH]


# ---------------------------------------------------------------------------------------------------------------
# toolchain


@functools.cache
def _tool_version(tool: str) -> str:
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60, check=False).stdout
    except OSError:
        return "absent"
    return " | ".join(line for line in out.splitlines() if line.strip())[-300:]


def _cxx() -> str:
    return os.environ.get("CXX") or shutil.which("c++") or "g++"


def _nvcc() -> Path:
    nvcc = deps.find_nvcc()
    if nvcc is None:
        raise MissingDependencyError("building CUDA kernels needs nvcc, which was not found",
                                     hint=deps.INSTALL_HINTS["nvcc"])
    return nvcc


def _torch_info() -> dict[str, object]:
    import torch
    from torch.utils import cpp_extension

    return {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cxx11_abi": int(torch._C._GLIBCXX_USE_CXX11_ABI),
        "include": cpp_extension.include_paths(),
        "lib": cpp_extension.library_paths(),
    }


# ---------------------------------------------------------------------------------------------------------------
# running steps


@dataclass(frozen=True)
class _Step:
    label: str
    cmd: tuple[str, ...]
    source: Path | None = None


_GCC_ERR = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)?\s*(?:fatal )?error:\s*(?P<msg>.+)$", re.M)
_NVCC_ERR = re.compile(r"^(?P<file>[^\s(][^(]*)\((?P<line>\d+)\):\s*(?:catastrophic )?error:?\s*(?P<msg>.+)$", re.M)


def first_compiler_error(output: str) -> str | None:
    """The first ``file:line: message`` error in gcc/clang/nvcc output (None if there is none)."""
    hits = [m for rx in (_GCC_ERR, _NVCC_ERR) for m in rx.finditer(output)]
    if not hits:
        return None
    m = min(hits, key=lambda h: h.start())
    return f"{m.group('file')}:{m.group('line')}: {m.group('msg').strip()}"


def _write_reproduce(folder: Path, steps: Sequence[_Step]) -> Path:
    script = folder / "reproduce.sh"
    lines = ["#!/bin/sh", "# Re-runs this build's steps by hand (written by trtrepo.ops.build).", "set -e",
             f"cd {shlex.quote(str(folder))}"]
    lines += [shlex.join(s.cmd) for s in steps]
    script.write_text("\n".join(lines) + "\n")
    script.chmod(0o755)
    return script


def _run_step(step: _Step, cwd: Path, log: Path, progress: Progress, index: str) -> None:
    global _compile_count
    _compile_count += 1
    progress(f"{index} {step.label}")
    start = time.monotonic()
    proc = subprocess.Popen(step.cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks: list[str] = []
    while True:
        try:
            out, _ = proc.communicate(timeout=HEARTBEAT_S)
            chunks.append(out or "")
            break
        except subprocess.TimeoutExpired:
            progress(f"{index} still {step.label} ({time.monotonic() - start:.0f} s)")
    output = "".join(chunks)
    with log.open("a") as f:
        f.write(f"$ {shlex.join(step.cmd)}\n{output}[exit {proc.returncode}, {time.monotonic() - start:.1f} s]\n\n")
    if proc.returncode != 0:
        where = first_compiler_error(output)
        if where is None:
            tail = [ln for ln in output.splitlines() if ln.strip()]
            where = tail[-1] if tail else f"exit status {proc.returncode}"
        raise BuildError(f"{step.label} failed: {where} (log: {log})",
                         hint=f"fix the source, or re-run the step by hand: sh {log.parent / 'reproduce.sh'}")


def _run_steps(steps: Sequence[_Step], final: Sequence[_Step], cwd: Path, progress: Progress) -> None:
    """Run ``steps`` in parallel, then ``final`` in order; log and reproduce.sh go in ``cwd``."""
    log = cwd / "build.log"
    log.write_text("")
    _write_reproduce(cwd, [*steps, *final])
    total = len(steps) + len(final)
    jobs = settings.build_jobs()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_step, s, cwd, log, progress, f"[{i + 1}/{total}]") for i, s in enumerate(steps)]
        for fut in futures:
            fut.result()
    for i, s in enumerate(final):
        _run_step(s, cwd, log, progress, f"[{len(steps) + i + 1}/{total}]")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{folder.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sha256(path: Path) -> str:
    return sha256_file(path)


def _content_hash(files: Sequence[Path], extra: object) -> str:
    return content_key([(f.name, f) for f in files], extra)


def _cached_build(folder: Path, artifacts: Sequence[str], build: Callable[[], None], progress: Progress,
                  what: str) -> None:
    """Run ``build`` in ``folder`` unless a finished build of the same hash is there."""
    with _locked(folder):
        done = folder / _DONE
        if done.is_file() and all((folder / a).is_file() for a in artifacts):
            progress(f"{what}: cached ({folder})")
            return
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        build()
        missing = [a for a in artifacts if not (folder / a).is_file()]
        if missing:
            raise BuildError(f"{what}: the build succeeded but {', '.join(missing)} is missing (log: "
                             f"{folder / 'build.log'})")
        done.write_text(json.dumps({a: _sha256(folder / a) for a in artifacts}, indent=1))


# ---------------------------------------------------------------------------------------------------------------
# plugin_src layout


def _roots(sources: Sequence[Path]) -> list[Path]:
    """plugin_src roots (the folders holding common/) of the given roots or op folders."""
    roots = []
    for s in sources:
        s = Path(s).resolve()
        root = s.parent if (s / "op.yaml").is_file() else s
        if root not in roots:
            roots.append(root)
    return roots


def _common_files(roots: Sequence[Path]) -> list[Path]:
    return [f for r in roots for f in sorted((r / "common").glob("*"))
            if f.is_file() and not f.name.startswith("trt_") and f.suffix in (".h", ".cuh", ".cpp", ".cu", ".hpp")]


def _is_plugin_file(p: Path) -> bool:
    return "_plugin." in p.name


def _torch_sources(desc: OpDescription, with_cuda: bool) -> list[Path]:
    """The op folder's .cpp (bindings, CPU references) and, with CUDA, its .cu kernels; never TensorRT plugin code."""
    files = sorted(p for p in desc.folder.glob("*.cpp") if not _is_plugin_file(p))
    if with_cuda:
        files += sorted(p for p in desc.folder.glob("*.cu") if not _is_plugin_file(p))
    return files


def _op_inputs(desc: OpDescription) -> list[Path]:
    return [p for p in desc.folder.iterdir() if p.is_file() and not _is_plugin_file(p)
            and p.suffix in (".cpp", ".cu", ".h", ".cuh", ".hpp", ".yaml")]


# ---------------------------------------------------------------------------------------------------------------
# the three builds


def _build_torch_library(descs: dict[str, OpDescription], roots: list[Path], cache_dir: Path, with_cuda: bool,
                         progress: Progress) -> Path:
    info = _torch_info()
    cxx = _cxx()
    defines = [f"-D_GLIBCXX_USE_CXX11_ABI={info['cxx11_abi']}"]
    includes = [f"-I{p}" for p in info["include"]]  # type: ignore[attr-defined]
    libs = [f"-L{p}" for p in info["lib"]] + [f"-Wl,-rpath,{p}" for p in info["lib"]]  # type: ignore[attr-defined]
    libs += ["-lc10", "-ltorch_cpu", "-ltorch"]
    nvcc: Path | None = None
    archs: list[str] = []
    if with_cuda:
        nvcc = _nvcc()
        cuda_home = nvcc.parent.parent
        includes.append(f"-I{cuda_home / 'include'}")
        libs += [f"-L{cuda_home / 'lib64'}", "-lc10_cuda", "-ltorch_cuda", "-lcudart"]
        archs = gpu_archs()
    else:
        defines.append("-DTRTREPO_CPU_ONLY")

    sources = [s for d in descs.values() for s in _torch_sources(d, with_cuda)]
    steps: list[_Step] = []
    objects: list[str] = []
    for i, src in enumerate(sources):
        obj = f"{i:02d}_{src.stem}.o"
        objects.append(obj)
        if src.suffix == ".cu":
            assert nvcc is not None
            gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
            top = max(archs, key=_arch_key)
            gencode.append(f"-gencode=arch=compute_{top},code=compute_{top}")
            cmd = (str(nvcc), *_NVCC_FLAGS, *gencode, "-Xcompiler", "-fPIC", "-c", str(src), "-o", obj)
            steps.append(_Step(f"nvcc {src.parent.name}/{src.name}", cmd, src))
        else:
            cmd = (cxx, *_CXX_FLAGS, *defines, *includes, "-c", str(src), "-o", obj)
            steps.append(_Step(f"compiling {src.parent.name}/{src.name}", cmd, src))
    link = _Step(f"linking {LIBRARY_NAME}", (cxx, "-shared", "-o", LIBRARY_NAME, *objects, *libs))

    key = _content_hash(
        [*sources, *_common_files(roots), *(f for d in descs.values() for f in _op_inputs(d))],
        {"torch": info, "cxx": _tool_version(cxx), "nvcc": _tool_version(str(nvcc)) if nvcc else None,
         "steps": [s.cmd for s in steps] + [link.cmd], "with_cuda": with_cuda},
    )
    folder = cache_dir / "torch" / key[:16]
    _cached_build(folder, [LIBRARY_NAME], lambda: _run_steps(steps, [link], folder, progress), progress,
                  f"torch op library ({'CPU+CUDA' if with_cuda else 'CPU'})")
    return folder / LIBRARY_NAME


def _build_ptx(desc: OpDescription, roots: list[Path], cache_dir: Path, progress: Progress) -> Path:
    assert desc.kernel is not None
    nvcc = _nvcc()
    arch = ptx_arch()
    out = f"{desc.op_name}.ptx"
    step = _Step(f"nvcc -ptx {desc.folder.name}/{desc.kernel.source.name}",
                 (str(nvcc), "-ptx", *_NVCC_FLAGS, f"-arch=compute_{arch}", str(desc.kernel.source), "-o", out),
                 desc.kernel.source)
    key = _content_hash([*_op_inputs(desc), *_common_files(roots)],
                        {"nvcc": _tool_version(str(nvcc)), "cmd": step.cmd})
    folder = cache_dir / "ptx" / f"{desc.op_name}-{key[:16]}"

    def build() -> None:
        _run_steps([step], [], folder, progress)
        text = (folder / out).read_text()
        missing = [e for e in desc.kernel.entries.values() if f".visible .entry {e}(" not in text]  # type: ignore
        if missing:
            raise BuildError(f"{desc.path}: kernel.entries: {', '.join(missing)} not in the PTX of "
                             f"{desc.kernel.source.name} (log: {folder / 'build.log'})",  # type: ignore[union-attr]
                             hint='declare each entry as extern "C" __global__ in the kernel source')

    _cached_build(folder, [out], build, progress, f"PTX of {desc.name}")
    return folder / out


def find_tensorrt() -> tuple[Path, Path, Path] | None:
    """(root, folder of NvInfer.h, folder of libnvinfer.so) from TENSORRT_ROOT / TRTREPO_TENSORRT_ROOT or the
    usual install places (NGC images put TensorRT under /usr); None if absent."""
    roots = [os.environ.get("TRTREPO_TENSORRT_ROOT"), os.environ.get("TENSORRT_ROOT"), "/usr/local/tensorrt",
             "/opt/tensorrt", "/usr"]
    for r in roots:
        if not r:
            continue
        root = Path(r)
        incs = [root / "include", root / "include" / "x86_64-linux-gnu", root / "include" / "aarch64-linux-gnu"]
        libdirs = [root / "lib", root / "lib64", root / "lib" / "x86_64-linux-gnu", root / "lib" / "aarch64-linux-gnu"]
        inc = next((i for i in incs if (i / "NvInfer.h").is_file()), None)
        lib = next((d for d in libdirs if any(d.glob("libnvinfer.so*"))), None)
        if inc and lib:
            return root, inc, lib
    return None


def _build_trt_plugins(descs: dict[str, OpDescription], roots: list[Path], cache_dir: Path,
                       progress: Progress) -> Path:
    found = find_tensorrt()
    if found is None:
        raise MissingDependencyError(
            "the TensorRT plugin library needs TensorRT's NvInfer.h and libnvinfer.so, which were not found "
            "(looked in TENSORRT_ROOT, TRTREPO_TENSORRT_ROOT, /usr/local/tensorrt, /opt/tensorrt, /usr)",
            hint=f"set TENSORRT_ROOT=<TensorRT install>, or build inside {deps.NGC_PYTORCH_IMAGE}")
    trt_root = found[0]
    root = roots[0]
    if not (root / "CMakeLists.txt").is_file():
        raise BuildError(f"{root / 'CMakeLists.txt'}: missing; it builds the TensorRT plugin library")
    cmake = shutil.which("cmake")
    if cmake is None:
        raise MissingDependencyError("the TensorRT plugin library needs cmake", hint="pip install cmake")
    nvcc = _nvcc()
    archs = ";".join(gpu_archs())
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".cpp", ".cu", ".h", ".cuh", ".txt", ".cmake")]
    # cmake's build tree is inside the cached folder; paths are absolute so reproduce.sh runs from anywhere.
    key = _content_hash(files, {"trt": str(found), "archs": archs, "nvcc": _tool_version(str(nvcc)),
                                "cmake": _tool_version(cmake), "cxx": _tool_version(_cxx())})
    folder = cache_dir / "trt" / key[:16]
    lib_name = f"lib{TRT_TARGET}.so"
    jobs = str(settings.build_jobs())
    configure = _Step("cmake configure", (cmake, "-S", str(root), "-B", str(folder / "cmake"),
                                          f"-DTENSORRT_ROOT={trt_root}", f"-DCMAKE_CUDA_ARCHITECTURES={archs}",
                                          f"-DCMAKE_CUDA_COMPILER={nvcc}", "-DCMAKE_BUILD_TYPE=Release"))
    build = _Step(f"cmake --build ({TRT_TARGET})",
                  (cmake, "--build", str(folder / "cmake"), "--target", TRT_TARGET, "-j", jobs))

    def run() -> None:
        _run_steps([], [configure, build], folder, progress)
        built = sorted((folder / "cmake").rglob(f"lib{TRT_TARGET}*.so*"))
        if not built:
            raise BuildError(f"cmake built no lib{TRT_TARGET}.so (log: {folder / 'build.log'})")
        shutil.copy2(built[0], folder / lib_name)

    _cached_build(folder, [lib_name], run, progress, "TensorRT plugin library")
    return folder / lib_name


def build_ops(sources: Sequence[Path], cache_dir: Path, *, with_cuda: bool | None = None, tensorrt: bool = False,
              progress: Progress = LOGGER.info) -> BuiltOps:
    """Build every op under ``sources`` (plugin_src roots or op folders), reusing cached builds.

    Args:
        sources: plugin_src folders (each holding ``common/`` and op folders) or single op folders.
        cache_dir: Cache root; builds go to ``<cache_dir>/{torch,ptx,trt}/<content hash>/`` with ``build.log`` and
            ``reproduce.sh``.
        with_cuda: Compile the CUDA kernels into the torch library; None: when torch is a CUDA build and nvcc is
            found.
        tensorrt: Also build the TensorRT plugin library (raises MissingDependencyError without TensorRT).
        progress: Called with one-line progress messages.

    Raises:
        SpecError: An op.yaml is invalid.
        BuildError: A compile failed (message: the first ``file:line: error`` and the log path).
        MissingDependencyError: torch, nvcc, CUDA torch (with_cuda=True) or TensorRT (tensorrt=True) is missing.
    """
    deps.require("torch", "building the custom op library")
    descs = discover_ops(sources)
    if not descs:
        raise BuildError(f"no op.yaml found under {', '.join(str(s) for s in sources)}",
                         hint="each op is a folder plugin_src/<op>/ with an op.yaml (see plugin_src/README.md)")
    roots = _roots(sources)
    cache_dir = Path(cache_dir).resolve()
    if with_cuda is None:
        import torch

        with_cuda = torch.version.cuda is not None and deps.find_nvcc() is not None
    elif with_cuda:
        import torch

        if torch.version.cuda is None:
            raise MissingDependencyError(f"a CUDA op library needs a CUDA build of torch; this is {torch.__version__}",
                                         hint=deps.INSTALL_HINTS["cuda_torch"])
    torch_lib = _build_torch_library(descs, roots, cache_dir, with_cuda, progress)
    hashes = {"torch_library": _sha256(torch_lib)}
    ptx: dict[str, Path] = {}
    for name, desc in descs.items():
        if desc.kernel is not None:
            ptx[name] = _build_ptx(desc, roots, cache_dir, progress)
            hashes[f"ptx:{name}"] = _sha256(ptx[name])
    trt_lib = None
    if tensorrt:
        trt_lib = _build_trt_plugins(descs, roots, cache_dir, progress)
        hashes["trt_plugin_library"] = _sha256(trt_lib)
    return BuiltOps(descriptions=descs, torch_library=torch_lib, with_cuda=with_cuda, ptx=ptx,
                    trt_plugin_library=trt_lib, hashes=hashes)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trtrepo.ops.build PLUGIN_SRC [CACHE_DIR]``: build and print the artifacts (for scripts)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m trtrepo.ops.build PLUGIN_SRC [CACHE_DIR]", file=sys.stderr)
        return 2
    cache = Path(args[1]) if len(args) > 1 else settings.cache_dir()
    built = build_ops([Path(args[0])], cache, progress=print)
    print(json.dumps({"torch_library": str(built.torch_library), "with_cuda": built.with_cuda,
                      "ptx": {k: str(v) for k, v in built.ptx.items()}, "hashes": built.hashes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
