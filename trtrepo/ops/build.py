"""Compile the custom ops of one or more plugin roots: the torch op library (.so), PTX per kernel (TensorRT AOT
plugins) and the TensorRT plugin library (.so).

Why direct compiler invocations and not ``torch.utils.cpp_extension.load`` or CMake: every step is a subprocess whose
command and output go to ``build.log`` beside the artifact, the commands are written to ``reproduce.sh``, and each
artifact is cached by its own content key — the bytes of the files it is built from, named relative to their op
folder, plus the flags and toolchain versions — so a rebuild with nothing changed compiles nothing, an identical copy
of a plugin root elsewhere hits the same cache entry, and a change of the torch binding does not rebuild the PTX.
``cpp_extension`` is still used for what it knows best: torch's include and library paths. The kernels (.cu) include
no torch headers, so nvcc only compiles plain CUDA; the torch bindings (.cpp) are compiled by the host compiler.

A plugin root holds op folders only: the shared headers ship with trtrepo (``trtrepo/ops/include``, on every include
path), and the TensorRT plugin library's creator registry and each op's ``op_rules.h`` are generated from the
discovered op.yaml files of all roots (:mod:`trtrepo.ops.codegen`). The plugin library needs TensorRT's headers
only: it links no TensorRT library (the creators find the process's registry at load time).

In an op folder: ``*.cu`` are kernels (torch library with CUDA, TensorRT plugin library), ``*.cpp`` the torch
binding and CPU references (torch library), ``*_plugin.cpp`` / ``*_plugin.h`` the TensorRT plugin (plugin library
only), ``*.h`` / ``*.cuh`` headers of all three.

Environment: TRTREPO_CUDA_ARCHS, TRTREPO_CACHE_DIR, TRTREPO_BUILD_JOBS, TRTREPO_TENSORRT_INCLUDE /
TRTREPO_TENSORRT_ROOT, TRTREPO_NVCC (``trtrepo.settings``); CXX.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trtrepo import deps, settings
from trtrepo._hashing import content_key, sha256_file
from trtrepo.contracts import Progress
from trtrepo.errors import BuildError, MissingDependencyError
from trtrepo.ops import codegen, generated, toolchain
from trtrepo.ops.description import OpDescription, discover_ops
from trtrepo.ops.steps import Step, cached_build, compile_count, run_steps

LOGGER = logging.getLogger(__name__)

__all__ = ["TRT_LIBRARY_NAME", "BuiltOps", "TorchLibrary", "build_ops", "compile_count", "library_name", "ptx_entries"]

TRT_LIBRARY_NAME = "libtrtrepo_trt_plugins.so"
HEADER_SUFFIXES = (".h", ".cuh", ".hpp")
EXPORTS_MAP = "exports.map"  # the plugin library's linker version script (in gen/)
EXPORTS = "{\n  global: getCreators; setLoggerFinder;\n  local: *;\n};\n"


@dataclass(frozen=True)
class TorchLibrary:
    """One plugin root's torch op library: each root gets its own, so roots combine freely in one process."""

    path: Path
    ops: tuple[str, ...]
    root: Path


@dataclass(frozen=True)
class BuiltOps:
    """What :func:`build_ops` produced.

    Attributes:
        descriptions: op name → description.
        torch_libraries: The op libraries for ``torch.ops.load_library``, one per plugin root, in root order.
        with_cuda: Whether the libraries hold CUDA kernels (else CPU only).
        ptx: op name → PTX file with every dtype entry of the op's kernel.
        trt_plugin_library: The TensorRT plugin library (all roots in one), or None when not asked for.
        hashes: sha256 per artifact: ``torch:<library file name>``, ``ptx:<op name>``, ``trt_plugin_library``.
    """

    descriptions: dict[str, OpDescription]
    torch_libraries: tuple[TorchLibrary, ...]
    with_cuda: bool
    ptx: dict[str, Path]
    trt_plugin_library: Path | None
    hashes: dict[str, str]

    @property
    def torch_library(self) -> Path:
        """The first root's op library (the only one when the spec has one plugin root)."""
        return self.torch_libraries[0].path


# ---------------------------------------------------------------------------------------------------------------
# which files feed which artifact


def _is_plugin_file(p: Path) -> bool:
    return "_plugin." in p.name


def _files(desc: OpDescription, suffixes: Sequence[str], plugin: bool | None = False) -> list[Path]:
    """Files of the op folder with these suffixes; ``plugin``: only plugin files (True), none (False), any (None)."""
    out = []
    for p in sorted(desc.folder.iterdir()):
        if not p.is_file() or p.suffix not in suffixes:
            continue
        if plugin is None or _is_plugin_file(p) == plugin:
            out.append(p)
    return out


def _headers(desc: OpDescription) -> list[Path]:
    return _files(desc, HEADER_SUFFIXES, plugin=None)


def hand_binding(desc: OpDescription) -> bool:
    """The op folder holds its own torch binding (``*_torch.cpp``): it wins over the generated one."""
    return any(p.name.endswith("_torch.cpp") for p in _files(desc, (".cpp",)))


def hand_plugin(desc: OpDescription) -> bool:
    """The op folder holds its own TensorRT plugin (``*_plugin.cpp``): it wins over the generated one."""
    return bool(_files(desc, (".cpp",), plugin=True))


_INCLUDES_LAUNCHER = re.compile(r'^\s*#\s*include\s+"launch\.h"', re.M)


def plugin_uses_generated_launcher(desc: OpDescription) -> bool:
    """A hand-written plugin that includes ``"launch.h"`` calls the launcher trtrepo generates from op.yaml (the kernel
    source is then compiled through it, not on its own)."""
    return any(_INCLUDES_LAUNCHER.search(p.read_text(errors="replace")) for p in plugin_files(desc))


def plugin_files(desc: OpDescription) -> list[Path]:
    """The op folder's hand-written TensorRT plugin sources and headers (``*_plugin.*``)."""
    return _files(desc, (".cpp", *HEADER_SUFFIXES), plugin=True)


def _generated_for_torch(desc: OpDescription) -> dict[str, str]:
    """Generated files the torch library needs for ``desc`` (none with a hand-written binding).

    Raises:
        BuildError: The op has neither a binding nor a kernel block to generate one from.
    """
    if hand_binding(desc):
        return {}
    if desc.kernel is None:
        raise BuildError(f"{desc.path}: {desc.name} has no torch binding (*_torch.cpp) and no kernel block to "
                         "generate one from", hint="add kernel: {source, entries, scalars, block, grid} to op.yaml")
    files = generated.sources(desc, desc.cpu, plugin=False)
    return files


def _kernel_files(desc: OpDescription, generate: bool) -> list[Path]:
    """The .cu files compiled on their own: all of them, or, when trtrepo generates the launcher (which includes the
    kernel source), all but the kernel source."""
    kernel = desc.kernel.source if (generate and desc.kernel is not None) else None
    return [p for p in _files(desc, (".cu",)) if p != kernel]


def _write_generated(folder: Path, files: dict[str, dict[str, str]]) -> None:
    for op, texts in files.items():
        (folder / "gen" / op).mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            (folder / "gen" / op / name).write_text(text)


def _named(desc: OpDescription, files: Sequence[Path]) -> list[tuple[str, Path]]:
    """Files named for a content key: ``<op id>/<path in the op folder>`` (no absolute path)."""
    return [(f"{codegen.op_id(desc)}/{f.relative_to(desc.folder).as_posix()}", f) for f in files]


def _shared_headers() -> list[tuple[str, Path]]:
    include = toolchain.include_dir()
    return [(f"include/{p.name}", p) for p in sorted(include.iterdir()) if p.is_file()]


def _label(desc: OpDescription, src: Path) -> str:
    return f"{desc.folder.name}/{src.name}"


def _object(desc: OpDescription, src: Path) -> str:
    return f"{codegen.op_id(desc)}__{src.stem}{src.suffix.replace('.', '_')}.o"


def _includes(desc: OpDescription) -> list[str]:
    return [f"-I{desc.folder}", f"-I{toolchain.include_dir()}"]


# ---------------------------------------------------------------------------------------------------------------
# the torch op library


def _build_torch_library(descs: dict[str, OpDescription], name: str, cache_dir: Path, with_cuda: bool,
                         progress: Progress) -> Path:
    torch = toolchain.torch_facts()
    cxx = toolchain.cxx()
    defines = [f"-D_GLIBCXX_USE_CXX11_ABI={torch.cxx11_abi}"]
    system = [a for p in torch.include for a in ("-isystem", p)]
    libs = [f"-L{p}" for p in torch.lib] + [f"-Wl,-rpath,{p}" for p in torch.lib] + ["-lc10", "-ltorch_cpu", "-ltorch"]
    nvcc: Path | None = None
    archs: list[str] = []
    if with_cuda:
        nvcc = toolchain.nvcc()
        system += ["-isystem", str(toolchain.cuda_home() / "include")]
        libs += [f"-L{toolchain.cuda_home() / 'lib64'}", "-lc10_cuda", "-ltorch_cuda", "-lcudart"]
        archs = toolchain.gpu_archs()
    else:
        defines.append("-DTRTREPO_CPU_ONLY")

    steps: list[Step] = []
    objects: list[str] = []
    keyed: list[tuple[str, Path]] = _shared_headers()
    gen_files: dict[str, dict[str, str]] = {}
    for desc in descs.values():
        gen = _generated_for_torch(desc)
        op = codegen.op_id(desc)
        if gen:
            gen_files[op] = gen
        includes = [f"-Igen/{op}", *_includes(desc)] if gen else _includes(desc)
        sources = [*_files(desc, (".cpp",)), *(_kernel_files(desc, bool(gen)) if with_cuda else [])]
        keyed += _named(desc, [*sources, *_headers(desc), *([desc.kernel.source] if gen and desc.kernel else [])])
        units: list[tuple[str, str, str]] = [(str(src), _label(desc, src), _object(desc, src)) for src in sources]
        if gen:
            units.append((f"gen/{op}/{generated.BINDING_SOURCE}", f"{desc.folder.name} (generated binding)",
                          f"{op}__gen_binding.o"))
        if gen and with_cuda:
            units.append((f"gen/{op}/{generated.LAUNCH_SOURCE}", f"{desc.folder.name} (generated launcher)",
                          f"{op}__gen_launch.o"))
        for src, label, obj in units:
            objects.append(obj)
            if src.endswith(".cu"):
                assert nvcc is not None
                cmd = (str(nvcc), *toolchain.NVCC_FLAGS, *toolchain.gencode_flags(archs), *includes,
                       "-Xcompiler", "-fPIC", "-c", src, "-o", obj)
                steps.append(Step(f"nvcc {label}", cmd))
            else:
                cmd = (cxx, *toolchain.CXX_FLAGS, *defines, *includes, *system, "-c", src, "-o", obj)
                steps.append(Step(f"compiling {label}", cmd))
    link = Step(f"linking {name}", (cxx, "-shared", "-o", name, *objects, *libs))
    key = content_key(keyed, {
        "generated": gen_files,
        "torch": [torch.version, torch.cuda, torch.cxx11_abi, torch.include, torch.lib],
        "cxx": [toolchain.tool_version(cxx), toolchain.CXX_FLAGS, defines],
        "nvcc": [toolchain.tool_version(str(nvcc)), toolchain.NVCC_FLAGS, archs] if nvcc else None,
        "objects": objects, "name": name,
    })
    folder = cache_dir / "torch" / key[:16]

    def run() -> None:
        _write_generated(folder, gen_files)
        run_steps(steps, [link], folder, progress)

    cached_build(folder, [name], run, progress, f"torch op library {name} ({'CPU+CUDA' if with_cuda else 'CPU'})")
    return folder / name


# ---------------------------------------------------------------------------------------------------------------
# PTX (TensorRT AOT plugins)


def ptx_entries(text: str) -> dict[str, list[str]]:
    """``.visible .entry`` name → its parameter types (``u64``, ``u32``, ...) in order, from PTX text."""
    out: dict[str, list[str]] = {}
    for m in re.finditer(r"\.visible\s+\.entry\s+(\w+)\s*\((.*?)\)", text, re.S):
        out[m.group(1)] = re.findall(r"\.param\s+\.(\w+)", m.group(2))
    return out


def _build_ptx(desc: OpDescription, cache_dir: Path, progress: Progress) -> Path:
    kernel = desc.require_kernel()
    nvcc = toolchain.nvcc()
    arch = toolchain.ptx_arch()
    out = f"{desc.op_name}.ptx"
    step = Step(f"nvcc -ptx {_label(desc, kernel.source)}",
                (str(nvcc), "-ptx", *toolchain.NVCC_FLAGS, f"-arch=compute_{arch}", *_includes(desc),
                 str(kernel.source), "-o", out))
    # Only what nvcc reads: the kernel source and the headers it can include (not the bindings, not op.yaml).
    key = content_key([*_named(desc, [kernel.source, *_headers(desc)]), *_shared_headers()],
                      {"nvcc": toolchain.tool_version(str(nvcc)), "flags": toolchain.NVCC_FLAGS, "arch": arch,
                       "source": kernel.source.name})
    folder = cache_dir / "ptx" / f"{desc.op_name}-{key[:16]}"
    cached_build(folder, [out], lambda: run_steps([step], [], folder, progress), progress, f"PTX of {desc.name}")
    text = (folder / out).read_text()
    missing = [e for e in kernel.entries.values() if e not in ptx_entries(text)]
    if missing:
        raise BuildError(f"{desc.path}: kernel.entries: {', '.join(missing)} not in the PTX of "
                         f"{kernel.source.name} (log: {folder / 'build.log'})",
                         hint='declare each entry as extern "C" __global__ in the kernel source')
    return folder / out


# ---------------------------------------------------------------------------------------------------------------
# the TensorRT plugin library


def _build_trt_plugins(descs: dict[str, OpDescription], cache_dir: Path, progress: Progress) -> Path:
    headers = toolchain.find_tensorrt_headers()
    if headers is None:
        raise MissingDependencyError(
            "the TensorRT plugin library needs TensorRT's headers (NvInferRuntime.h), which were not found (looked "
            f"in {settings.TENSORRT_INCLUDE.name}, {settings.TENSORRT_ROOT.name}, TENSORRT_ROOT, /usr/local/tensorrt, "
            "/opt/tensorrt, /usr)",
            hint=f"set {settings.TENSORRT_INCLUDE.name}=<folder of NvInferRuntime.h>, or build inside "
            f"{deps.NGC_PYTORCH_IMAGE}")
    with_plugin = [d for d in descs.values() if d.plugin is not None]
    if not with_plugin:
        raise BuildError("no op declares a plugin block in op.yaml: there is no TensorRT plugin library to build",
                         hint="add plugin: {name, version} to the op.yaml of the ops lowered as plugin")
    for desc in with_plugin:
        if not hand_plugin(desc) and desc.kernel is None:
            raise BuildError(f"{desc.path}: plugin: {desc.name} declares a TensorRT plugin, but {desc.folder} has no "
                             "*_plugin.cpp and op.yaml no kernel block to generate one from",
                             hint="add kernel: to op.yaml (trtrepo generates the plugin), write <op>_plugin.cpp, or "
                             "drop the plugin block and lower the op as decompose")
    nvcc = toolchain.nvcc()
    cxx = toolchain.cxx()
    archs = toolchain.gpu_archs()
    werror = ["-Werror"] if settings.plugin_werror() else []
    system = ["-isystem", str(headers.include), "-isystem", str(toolchain.cuda_home() / "include")]
    gen_files: dict[str, dict[str, str]] = {}
    registry = codegen.registry_source(with_plugin)

    steps: list[Step] = []
    objects: list[str] = []
    keyed: list[tuple[str, Path]] = _shared_headers()
    for desc in with_plugin:
        op = codegen.op_id(desc)
        generate = not hand_plugin(desc)
        launcher = generate or plugin_uses_generated_launcher(desc)
        gen_files[op] = {codegen.RULES_HEADER: codegen.rules_header(desc)}
        if launcher:
            texts = generated.sources(desc, desc.cpu, binding=False, plugin=generate)
            gen_files[op].update({k: v for k, v in texts.items() if k != codegen.RULES_HEADER})
        includes = [f"-Igen/{op}", *_includes(desc)]
        keyed += _named(desc, [*_files(desc, (".cu",)), *_files(desc, (".cpp",), plugin=True), *_headers(desc)])
        units = [(str(src), _label(desc, src), _object(desc, src)) for src in _files(desc, (".cpp",), plugin=True)]
        cu_units = [(str(src), _label(desc, src), _object(desc, src)) for src in _kernel_files(desc, launcher)]
        if generate:
            units.append((f"gen/{op}/{generated.PLUGIN_SOURCE}", f"{desc.folder.name} (generated plugin)",
                          f"{op}__gen_plugin.o"))
        if launcher:
            cu_units.append((f"gen/{op}/{generated.LAUNCH_SOURCE}", f"{desc.folder.name} (generated launcher)",
                             f"{op}__gen_launch.o"))
        for src, label, obj in units:
            objects.append(obj)
            steps.append(Step(f"compiling {label}", (cxx, *toolchain.PLUGIN_CXX_FLAGS, *werror, *includes, *system,
                                                     "-c", src, "-o", obj)))
        for src, label, obj in cu_units:
            objects.append(obj)
            steps.append(Step(f"nvcc {label}",
                              (str(nvcc), *toolchain.NVCC_FLAGS, *toolchain.gencode_flags(archs), *includes,
                               "-Xcompiler", "-fPIC,-fvisibility=hidden", "-c", src, "-o", obj)))
    steps.append(Step(f"compiling {codegen.REGISTRY_SOURCE}",
                      (cxx, *toolchain.PLUGIN_CXX_FLAGS, *werror, f"-I{toolchain.include_dir()}", *system, "-c",
                       f"gen/{codegen.REGISTRY_SOURCE}", "-o", "registry.o")))
    objects.append("registry.o")
    # --no-undefined: everything the library calls resolves against CUDA and libc, never a TensorRT library.
    # The version script exports the two entry points only: -fvisibility=hidden does not hide the standard
    # library's template instantiations (std::string's constructors), which would otherwise be exported.
    link = Step(f"linking {TRT_LIBRARY_NAME}",
                (cxx, "-shared", "-o", TRT_LIBRARY_NAME, *objects, f"-L{toolchain.cuda_home() / 'lib64'}",
                 "-lcudart", "-ldl", "-Wl,--no-undefined", f"-Wl,--version-script=gen/{EXPORTS_MAP}"))
    key = content_key(keyed, {
        "generated": [gen_files, registry], "tensorrt": [headers.version, sha256_file(headers.include /
                                                                                      "NvInferRuntime.h")],
        "cxx": [toolchain.tool_version(cxx), toolchain.PLUGIN_CXX_FLAGS, werror],
        "nvcc": [toolchain.tool_version(str(nvcc)), toolchain.NVCC_FLAGS, archs], "objects": objects,
        "exports": EXPORTS,
    })
    folder = cache_dir / "trt" / key[:16]

    def run() -> None:
        _write_generated(folder, gen_files)
        (folder / "gen" / codegen.REGISTRY_SOURCE).write_text(registry)
        (folder / "gen" / EXPORTS_MAP).write_text(EXPORTS)
        run_steps(steps, [link], folder, progress)

    cached_build(folder, [TRT_LIBRARY_NAME], run, progress,
                 f"TensorRT plugin library (TensorRT {headers.version} headers)")
    return folder / TRT_LIBRARY_NAME


# ---------------------------------------------------------------------------------------------------------------
# entry point


def build_ops(sources: Sequence[Path], cache_dir: Path, *, with_cuda: bool | None = None, tensorrt: bool = False,
              progress: Progress = LOGGER.info) -> BuiltOps:
    """Build every op under ``sources`` (plugin roots or op folders), reusing cached builds.

    Args:
        sources: Plugin roots (folders of op folders) or single op folders; ops of every root are combined.
        cache_dir: Cache root; builds go to ``<cache_dir>/{torch,ptx,trt}/<content key>/`` with ``build.log`` and
            ``reproduce.sh``.
        with_cuda: Compile the CUDA kernels into the torch library; None: when torch is a CUDA build and nvcc is
            found.
        tensorrt: Also build the TensorRT plugin library (raises MissingDependencyError without TensorRT headers).
        progress: Called with one-line progress messages.

    Raises:
        SpecError: An op.yaml is invalid, or two roots declare the same op.
        BuildError: A compile failed (message: the first ``file:line: error`` and the log path).
        MissingDependencyError: torch, nvcc, CUDA torch (with_cuda=True) or TensorRT headers (tensorrt=True).
    """
    deps.require("torch", "building the custom op library")
    descs = discover_ops(sources)  # all roots together: refuses one op declared in two roots
    groups = _libraries(sources, descs)
    if not descs:
        raise BuildError(f"no op.yaml found under {', '.join(str(s) for s in sources)}",
                         hint="each op is a folder <plugin root>/<op>/ with an op.yaml (see plugin_src/README.md)")
    cache_dir = Path(cache_dir).resolve()
    if with_cuda is None:
        import torch

        with_cuda = torch.version.cuda is not None and deps.find_nvcc() is not None
    elif with_cuda:
        import torch

        if torch.version.cuda is None:
            raise MissingDependencyError(f"a CUDA op library needs a CUDA build of torch; this is {torch.__version__}",
                                         hint=deps.INSTALL_HINTS["cuda_torch"])
    libraries = []
    hashes: dict[str, str] = {}
    for (root, name), ops in groups.items():
        path = _build_torch_library(ops, name, cache_dir, with_cuda, progress)
        libraries.append(TorchLibrary(path, tuple(ops), root))
        hashes[f"torch:{name}"] = sha256_file(path)
    ptx: dict[str, Path] = {}
    for name, desc in descs.items():
        if desc.kernel is not None:
            ptx[name] = _build_ptx(desc, cache_dir, progress)
            hashes[f"ptx:{name}"] = sha256_file(ptx[name])
    trt_lib = None
    if tensorrt:
        trt_lib = _build_trt_plugins(descs, cache_dir, progress)
        hashes["trt_plugin_library"] = sha256_file(trt_lib)
    return BuiltOps(descriptions=descs, torch_libraries=tuple(libraries), with_cuda=with_cuda, ptx=ptx,
                    trt_plugin_library=trt_lib, hashes=hashes)


def library_name(root: Path, taken: set[str]) -> str:
    """``libtrtrepo_ops_<root folder>.so``, made unique among ``taken``."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", root.name) or "root"
    name, n = f"libtrtrepo_ops_{stem}.so", 2
    while name in taken:
        name, n = f"libtrtrepo_ops_{stem}_{n}.so", n + 1
    return name


def _libraries(sources: Sequence[Path],
               descs: dict[str, OpDescription]) -> dict[tuple[Path, str], dict[str, OpDescription]]:
    """(root, library file name) → its ops, one library per source given (a root, or a single op folder)."""
    groups: dict[tuple[Path, str], dict[str, OpDescription]] = {}
    placed: set[str] = set()
    taken: set[str] = set()
    for source in sources:
        root = Path(source).resolve()
        ops = {n: d for n, d in descs.items() if n not in placed and (d.folder == root or d.folder.parent == root)}
        if not ops:
            continue
        name = library_name(root, taken)
        taken.add(name)
        placed |= set(ops)
        groups[(root, name)] = dict(sorted(ops.items()))
    return groups


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trtrepo.ops.build PLUGIN_ROOT... [--tensorrt]``: build and print the artifacts (for lanes)."""
    args = list(sys.argv[1:] if argv is None else argv)
    tensorrt = "--tensorrt" in args
    roots = [Path(a) for a in args if a != "--tensorrt"]
    if not roots:
        print("usage: python -m trtrepo.ops.build PLUGIN_ROOT... [--tensorrt]", file=sys.stderr)
        return 2
    built = build_ops(roots, settings.cache_dir(), tensorrt=tensorrt, progress=print)
    print(json.dumps({"torch_libraries": [str(lib.path) for lib in built.torch_libraries], "with_cuda": built.with_cuda,
                      "ptx": {k: str(v) for k, v in built.ptx.items()},
                      "trt_plugin_library": str(built.trt_plugin_library) if built.trt_plugin_library else None,
                      "hashes": built.hashes}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
