"""Builds: CPU torch op library, PTX entries, content-keyed cache (per artifact, location-free), compiler errors with
file:line, TensorRT absence, and the TensorRT plugin library from several plugin roots where TensorRT headers are."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trtrepo import deps
from trtrepo.errors import BuildError, MissingDependencyError
from trtrepo.ops import build, steps, toolchain

PLUGIN_SRC = Path(__file__).resolve().parents[2] / "plugin_src"
needs_nvcc = pytest.mark.skipif(deps.find_nvcc() is None, reason="nvcc not found (CUDA toolkit)")
compiles = pytest.mark.integration  # runs the real compilers: not part of the unit tier


def test_library_built_with_logs_and_reproduce(built_ops) -> None:
    """The session's build (CPU here; CPU+CUDA where CUDA torch and nvcc are, as on the GPU machine)."""
    import torch

    lib = built_ops.torch_library
    assert lib.is_file() and lib.name == "libtrtrepo_ops_plugin_src.so"
    assert built_ops.with_cuda == (torch.version.cuda is not None and deps.find_nvcc() is not None)
    # CPU: 3 generated bindings + 2 CPU references + link; with CUDA also 3 generated launchers
    assert (lib.parent / "build.log").read_text().count("[exit 0,") >= (9 if built_ops.with_cuda else 6)
    reproduce = (lib.parent / "reproduce.sh").read_text()
    assert f"-I{toolchain.include_dir()}" in reproduce  # the headers that ship with trtrepo
    for op in ("bias_gelu", "silu_and_mul", "fused_add_rms_norm"):  # generated from op.yaml, kept with the build
        assert f" gen/trtrepo__{op}/binding.cpp" in reproduce
        assert (lib.parent / "gen" / f"trtrepo__{op}" / "binding.cpp").is_file()
    assert "bias_gelu_cpu.cpp" in reproduce and "fused_add_rms_norm_cpu" not in reproduce
    assert ("-DTRTREPO_CPU_ONLY" in reproduce) != built_ops.with_cuda
    assert set(built_ops.hashes) == {"torch:libtrtrepo_ops_plugin_src.so", *(f"ptx:{op}" for op in built_ops.ptx)}
    assert set(built_ops.ptx) == {"trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm", "trtrepo::silu_and_mul"}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in built_ops.hashes.values())


@needs_nvcc
def test_ptx_has_every_entry(built_ops) -> None:
    for name, desc in built_ops.descriptions.items():
        text = built_ops.ptx[name].read_text()
        assert f".target sm_{toolchain.ptx_arch()}" in text
        for entry in desc.kernel.entries.values():
            assert f".visible .entry {entry}(" in text
        entries = re.findall(r"\.visible \.entry (\w+)\(", text)
        assert sorted(entries) == sorted(desc.kernel.entries.values())


def _entry_param_types(ptx: str, entry: str) -> list[str]:
    """The PTX types (``u64``, ``u32``, ...) of ``entry``'s ``.param`` list, in order."""
    found = re.search(rf"\.visible \.entry {re.escape(entry)}\((.*?)\)", ptx, re.S)
    assert found, f"no .visible .entry {entry} in the PTX"
    return re.findall(r"\.param\s+\.(\w+)", found.group(1))


def _aot_abi_ok(types: list[str], n_in: int, n_scalars: int, n_out: int) -> bool:
    """TensorRT's AOT ABI: input pointers (.u64), then the int32 scalars (.u32/.s32), then output pointers (.u64)."""
    return (len(types) == n_in + n_scalars + n_out and types[:n_in] == ["u64"] * n_in
            and all(t in ("u32", "s32") for t in types[n_in:n_in + n_scalars])
            and types[n_in + n_scalars:] == ["u64"] * n_out)


@needs_nvcc
def test_ptx_entries_take_inputs_scalars_outputs(built_ops) -> None:
    for name, desc in built_ops.descriptions.items():
        assert desc.kernel is not None and desc.kernel.scalars, name
        text = built_ops.ptx[name].read_text()
        for entry in desc.kernel.entries.values():
            types = _entry_param_types(text, entry)
            assert _aot_abi_ok(types, len(desc.inputs), len(desc.kernel.scalars), len(desc.outputs)), (entry, types)


def test_aot_abi_check_rejects_pointers_first() -> None:
    def ptx(types: list[str]) -> str:
        params = ",\n".join(f"\t.param .{t} k_param_{i}" for i, t in enumerate(types))
        return f".visible .entry k(\n{params}\n)\n{{\n\tld.param.u64 %rd1, [k_param_0];\n}}\n"

    new = _entry_param_types(ptx(["u64", "u64", "u32", "u32", "u64"]), "k")  # bias_gelu: x, bias, n, cols, out
    old = _entry_param_types(ptx(["u64", "u64", "u64", "u32", "u32"]), "k")  # x, bias, out, n, cols
    assert new == ["u64", "u64", "u32", "u32", "u64"]
    assert _aot_abi_ok(new, 2, 2, 1)
    assert not _aot_abi_ok(old, 2, 2, 1)
    assert not _aot_abi_ok(new, 2, 3, 1)  # count mismatch


def test_second_build_compiles_nothing(built_ops, ops_cache: Path, build_stats: dict[str, int]) -> None:
    # The build really compiled once in this session (4 compiles + link + 2 PTX), here or in an earlier test sharing
    # the session's fresh cache; a cache reused across sessions (TRTREPO_TEST_CACHE_DIR) may hold it already.
    if not os.environ.get("TRTREPO_TEST_CACHE_DIR"):
        assert build_stats["session_compiles"] >= 7
    before = build.compile_count()
    again = build.build_ops([PLUGIN_SRC], ops_cache, with_cuda=False)
    assert build.compile_count() == before
    assert again.torch_library == built_ops.torch_library
    assert again.hashes == built_ops.hashes


def _broken_op(root: Path, name: str, files: dict[str, str]) -> Path:
    op = root / name
    op.mkdir(parents=True)
    (op / "op.yaml").write_text(
        f'name: trtrepo_test::{name}\nschema: "{name}(Tensor x) -> Tensor"\ninputs: [x]\n'
        "outputs: [{name: out, like: x}]\ndtypes: [fp32]\n"
        + (f"kernel: {{source: {name}_kernel.cu, entries: {{fp32: {name}_f32}}, block: 256, grid: rows}}\n"
           if f"{name}_kernel.cu" in files else "")
    )
    for fname, text in files.items():
        (op / fname).write_text(text)
    return op


@compiles
def test_cpp_compile_error_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _broken_op(src, "oops", {"oops_torch.cpp": "// fine\nint f() {\n  return undeclared_name;\n}\n"})
    with pytest.raises(BuildError) as info:
        build.build_ops([src], tmp_path / "cache", with_cuda=False)
    msg = str(info.value)
    assert re.search(r"oops_torch\.cpp:3: .*undeclared_name", msg), msg
    log = re.search(r"\(log: (\S+)\)", msg)
    assert log and Path(log.group(1)).is_file()
    assert (Path(log.group(1)).parent / "reproduce.sh").is_file()
    assert "reproduce.sh" in (info.value.hint or "")


@needs_nvcc
@compiles
def test_ptx_compile_error_names_file_and_line(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _broken_op(src, "bad", {"bad_cpu.cpp": "int g() { return 0; }\n",
                            "bad_kernel.cu": 'extern "C" __global__ void bad_f32(float* x) {\n  x[0] = nope;\n}\n'})
    with pytest.raises(BuildError) as info:
        build.build_ops([src], tmp_path / "cache", with_cuda=False)
    assert re.search(r"bad_kernel\.cu:2: .*nope", str(info.value)), str(info.value)


@needs_nvcc
@compiles
def test_missing_ptx_entry_is_reported(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _broken_op(src, "ent", {"ent_cpu.cpp": "int h() { return 0; }\n",
                            "ent_kernel.cu": "__global__ void ent_f32(float* x) { x[0] = 1.0f; }\n"})  # C++ mangled
    with pytest.raises(BuildError, match=r"kernel.entries: ent_f32 not in the PTX"):
        build.build_ops([src], tmp_path / "cache", with_cuda=False)


def test_first_compiler_error_formats() -> None:
    gcc = "In file included from a.cpp:1:\n/x/b.h:12:5: error: 'foo' was not declared\n/x/c.cpp:3:1: error: later\n"
    assert steps.first_compiler_error(gcc) == "/x/b.h:12: 'foo' was not declared"
    nvcc = '/k/op.cu(41): error: identifier "nope" is undefined\n'
    assert steps.first_compiler_error(nvcc) == '/k/op.cu:41: identifier "nope" is undefined'
    assert steps.first_compiler_error("all good\n") is None


def test_tensorrt_missing_names_headers_and_image(built_ops, ops_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRTREPO_TENSORRT_INCLUDE", raising=False)
    if toolchain.find_tensorrt_headers() is not None:
        pytest.skip("TensorRT headers are installed here: the absence path cannot be exercised")
    monkeypatch.setenv("TENSORRT_ROOT", str(ops_cache / "no-tensorrt-here"))
    with pytest.raises(MissingDependencyError) as info:
        build.build_ops([PLUGIN_SRC], ops_cache, with_cuda=False, tensorrt=True)
    assert "NvInferRuntime.h" in str(info.value) and "TRTREPO_TENSORRT_INCLUDE" in str(info.value)
    assert deps.NGC_PYTORCH_IMAGE in (info.value.hint or "")


def test_with_cuda_needs_cuda_torch(ops_cache: Path) -> None:
    import torch

    if torch.version.cuda is not None:
        pytest.skip("this torch is a CUDA build")
    with pytest.raises(MissingDependencyError, match="CUDA build of torch"):
        build.build_ops([PLUGIN_SRC], ops_cache, with_cuda=True)


@pytest.mark.parametrize(("value", "expected"), [
    ("80;90", ["80", "90"]), ("sm_90a, compute_100", ["90a", "100"]), ("8.6 12.0", ["86", "120"]),
])
def test_parse_archs(value: str, expected: list[str]) -> None:
    assert toolchain.parse_archs(value) == expected


def test_parse_archs_rejects_garbage() -> None:
    with pytest.raises(BuildError, match="TRTREPO_CUDA_ARCHS"):
        toolchain.parse_archs("hopper")


def test_ptx_arch_is_lowest_requested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRTREPO_CUDA_ARCHS", "90;80;100")
    assert toolchain.ptx_arch() == "80"
    monkeypatch.delenv("TRTREPO_CUDA_ARCHS")
    assert toolchain.ptx_arch() == toolchain.DEFAULT_PTX_ARCH


def test_no_ops_found(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"no op\.yaml"):
        build.build_ops([tmp_path], tmp_path / "cache")


def test_cache_is_keyed_by_content_not_location(built_ops, ops_cache: Path, tmp_path: Path) -> None:
    """An identical copy of the plugin root elsewhere compiles nothing; a changed CPU reference rebuilds the torch
    library but not the PTX; a changed kernel rebuilds its PTX."""
    copy = tmp_path / "elsewhere" / "plugin_src"
    shutil.copytree(PLUGIN_SRC, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = steps.compile_count()
    same = build.build_ops([copy], ops_cache, with_cuda=False)
    assert steps.compile_count() == before, "an identical copy must hit the cache"
    assert same.hashes == built_ops.hashes

    reference = copy / "bias_gelu" / "bias_gelu_cpu.cpp"
    reference.write_text(reference.read_text() + "\n// changed CPU reference\n")
    changed = build.build_ops([copy], ops_cache, with_cuda=False)
    assert changed.torch_library != built_ops.torch_library and steps.compile_count() > before
    assert changed.ptx == built_ops.ptx, "a CPU reference change must not rebuild the PTX"

    kernel = copy / "bias_gelu" / "bias_gelu_kernel.cu"
    kernel.write_text(kernel.read_text() + "\n// changed kernel\n")
    again = build.build_ops([copy], ops_cache, with_cuda=False)
    assert again.ptx["trtrepo::bias_gelu"] != built_ops.ptx["trtrepo::bias_gelu"]
    assert again.ptx["trtrepo::fused_add_rms_norm"] == built_ops.ptx["trtrepo::fused_add_rms_norm"]


def _headers_or_skip() -> toolchain.TensorRTHeaders:
    headers = toolchain.find_tensorrt_headers()
    if headers is None:
        pytest.skip("TensorRT headers not found (set TRTREPO_TENSORRT_INCLUDE to NVIDIA/TensorRT's include/): the "
                    "plugin library cannot be compiled here")
    return headers


def _dynamic_symbols(library: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True)
    return {line.split()[-1] for line in out.stdout.splitlines() if line.strip()}


@needs_nvcc
@compiles
def test_plugin_library_of_two_roots_exports_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built against TensorRT's headers from two roots: one library, every root's creators registered, only
    getCreators / setLoggerFinder exported, no TensorRT library linked (loaders: IPluginRegistry::loadLibrary,
    trtexec --dynamicPlugins)."""
    _headers_or_skip()
    monkeypatch.setenv("TRTREPO_PLUGIN_WERROR", "1")
    second = tmp_path / "second_root"
    shutil.copytree(PLUGIN_SRC / "fused_add_rms_norm", second / "fused_add_rms_norm")
    built = build.build_ops([PLUGIN_SRC / "bias_gelu", second], tmp_path / "cache", with_cuda=False, tensorrt=True)
    library = built.trt_plugin_library
    assert library is not None and library.is_file()
    exported = _dynamic_symbols(library)
    assert {"getCreators", "setLoggerFinder"} <= exported
    assert not [s for s in exported if "trtrepo" in s.lower()], "only the two entry points may be exported"
    registry = (library.parent / "gen" / "trtrepo_plugin_registry.cpp").read_text()
    assert "trtrepo_creator_trtrepo__bias_gelu()" in registry and "trtrepo_creator_trtrepo__fused_add_rms_norm()" \
        in registry
    needed = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    assert "libnvinfer" not in needed


def test_an_op_without_binding_and_kernel_is_named(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _broken_op(src, "bare", {"bare_cpu.cpp": "int g() { return 0; }\n"})
    with pytest.raises(BuildError, match=r"bare/op\.yaml: trtrepo_test::bare has no torch binding \(\*_torch\.cpp\) "
                                         r"and no kernel block to generate one from"):
        build.build_ops([src], tmp_path / "cache", with_cuda=False)
