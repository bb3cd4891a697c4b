"""op.yaml parsing: the shipped ops, broken descriptions (tests/ops/cases/*), launch-rule expressions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trtrepo.errors import SpecError
from trtrepo.ops.description import OpDescription, discover_ops, load_op_description

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
CASES = Path(__file__).parent / "cases"


def test_shipped_ops_parse() -> None:
    ops = discover_ops([PLUGIN_SRC])
    assert list(ops) == ["trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm", "trtrepo::silu_and_mul"]
    swiglu = ops["trtrepo::silu_and_mul"]
    assert swiglu.outputs[0].like is None and swiglu.output_shapes([(4, 3, 10)]) == [(4, 3, 5)]
    assert [str(d) for d in swiglu.input_specs[0].pattern or ()] == ["...", "2*H"]
    rms = ops["trtrepo::fused_add_rms_norm"]
    assert rms.inputs == ("x", "residual", "weight")
    assert [(a.name, a.type, a.default) for a in rms.attributes] == [("eps", "float", 1e-6)]
    assert [(o.name, o.like, o.shape.text, o.dtype) for o in rms.outputs] == [("out", "x", "x", "x"),
                                                                               ("residual_out", "x", "x", "x")]
    assert [str(d) for d in rms.input_specs[0].pattern or ()] == ["...", "D"]
    assert rms.dtypes == ("fp32", "fp16", "bf16")
    assert (rms.plugin.name, rms.plugin.version, rms.plugin.namespace) == ("TrtrepoFusedAddRmsNorm", "1", "trtrepo")
    assert rms.kernel is not None and rms.kernel.entries["bf16"] == "trtrepo_fused_add_rms_norm_bf16"
    assert [s.name for s in rms.kernel.scalars] == ["rows", "cols", "eps_bits"]
    assert callable(rms.load_decomposition())


def test_op_folder_and_root_both_accepted() -> None:
    assert list(discover_ops([PLUGIN_SRC / "bias_gelu"])) == ["trtrepo::bias_gelu"]


def test_duplicate_op_names_in_two_roots_rejected_naming_both_folders(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(PLUGIN_SRC / "bias_gelu", tmp_path / "other" / "gelu_copy")
    with pytest.raises(SpecError, match="already declared") as info:
        discover_ops([PLUGIN_SRC, tmp_path / "other"])
    assert str(PLUGIN_SRC / "bias_gelu") in (info.value.hint or "")
    assert str(tmp_path / "other" / "gelu_copy") in (info.value.hint or "")
    # the same folder reached twice (as a root and as an op folder) is one op, not a clash
    assert list(discover_ops([PLUGIN_SRC / "bias_gelu", PLUGIN_SRC]))[:2] == ["trtrepo::bias_gelu",
                                                                              "trtrepo::fused_add_rms_norm"]


def test_missing_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="does not exist"):
        discover_ops([tmp_path / "nope"])


def _broken_cases() -> list[Path]:
    return sorted(p for p in CASES.glob("broken_*") if (p / "op.yaml").is_file())


@pytest.mark.parametrize("case", _broken_cases(), ids=lambda p: p.name)
def test_broken_description(case: Path) -> None:
    """Each case's op.yaml starts with '# expect: <text>': the SpecError names the file; message + hint hold it."""
    expect = (case / "op.yaml").read_text().splitlines()[0].removeprefix("# expect:").strip()
    with pytest.raises(SpecError) as info:
        load_op_description(case / "op.yaml")
    assert str(case / "op.yaml") in str(info.value)
    assert expect in f"{info.value} {info.value.hint or ''}"


def test_there_are_broken_cases() -> None:
    assert len(_broken_cases()) >= 8


def launch(desc: OpDescription, shape: list[int], dtype: str, attrs: dict[str, float] | None = None):
    """The launch for a first input of ``shape`` (the other inputs from the shape patterns)."""
    return desc.launch(desc.input_shapes(shape[:-1], {"D": shape[-1]}), dtype, attrs)


def test_bias_gelu_launch_rule() -> None:
    desc = discover_ops([PLUGIN_SRC])["trtrepo::bias_gelu"]
    # fp16: 8 elements per 16-byte vector, 256 threads → 2048 elements per block.
    cfg = launch(desc, [3, 5, 4096], "fp16")
    assert (cfg.entry, cfg.block, cfg.grid, cfg.shared_memory) == ("trtrepo_bias_gelu_f16", 256, 30, 0)
    assert cfg.scalars == (3 * 5 * 4096, 4096)
    assert launch(desc, [7, 3], "fp32").grid == 1  # ceil(21 / 1024)
    assert launch(desc, [1025, 1], "fp32").grid == 2


def test_fused_add_rms_norm_launch_rule() -> None:
    desc = discover_ops([PLUGIN_SRC])["trtrepo::fused_add_rms_norm"]
    warp = launch(desc, [17, 1024], "fp16", {"eps": 1e-6})  # 128 vectors: a warp per row, 8 rows per block
    assert (warp.grid, warp.scalars[:2]) == (3, (17, 1024))
    assert warp.scalars[2] == 0x358637BD  # float32 bits of 1e-6
    assert launch(desc, [17, 1024], "fp32", {"eps": 1e-6}).grid == 5  # 256 vectors: 64 threads per row, 4 rows
    assert launch(desc, [1001, 4096], "fp16", {"eps": 1e-6}).grid == 501  # 512 vectors: 128 threads, 2 rows
    assert launch(desc, [1001, 4096], "fp32", {"eps": 1e-6}).grid == 1001  # 1024 vectors: a block per row
    block = launch(desc, [2, 3, 1025], "bf16", {"eps": 1e-6})  # 129 vectors (rounded up): 64 threads, 4 rows
    assert (block.entry, block.grid) == ("trtrepo_fused_add_rms_norm_bf16", 2)
    assert launch(desc, [5, 70000], "fp32", {"eps": 1e-6}).grid == 5  # past the register-cached rows: still a block


def _threads_per_row(vecs: int, vec_per_thread: int, block: int) -> int:
    """The .cu's threads_per_row: the fewest of 32, 64, ... block threads holding ``vecs`` vectors, 4 per thread."""
    threads = 32
    while threads < block and threads * vec_per_thread < vecs:
        threads *= 2
    return threads


def test_launch_rule_matches_launcher_source() -> None:
    """The rms norm kernel and its op.yaml state the same block size and rows-per-block rule (the generated launcher
    launches what op.yaml says; the kernel's tiling assumes it: a change to one needs both)."""
    ops = discover_ops([PLUGIN_SRC])
    rms_op = ops["trtrepo::fused_add_rms_norm"]
    rms = rms_op.kernel
    assert rms is not None
    text = rms.source.read_text()
    assert f"constexpr int kBlock = {rms.block};" in text
    found = re.search(r"constexpr int kVecPerThread = (\d+);", text)
    assert found, "kVecPerThread not found in the rms norm kernel"
    per_thread = int(found.group(1))
    assert "vecs <= 32 * kVecPerThread ? 32 : vecs <= 64 * kVecPerThread ? 64 : vecs <= 128 * kVecPerThread ? 128" \
        in text
    for dtype, vec in (("fp32", 4), ("fp16", 8), ("bf16", 8)):
        for cols in (1, 7, 8, 31, 32, 33, 64, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 2047,
                     2048, 2049, 4095, 4096, 4097, 8192, 8193, 16384, 65536):
            for rows in (1, 3, 8, 9, 1000):
                threads = _threads_per_row(-(-cols // vec), per_thread, rms.block)
                want = -(-rows // (rms.block // threads))
                got = launch(rms_op, [rows, cols], dtype, {"eps": 1e-6}).grid
                assert got == want, (dtype, rows, cols, got, want)
