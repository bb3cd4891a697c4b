"""Op description → plugin fields, argument split, dtype mapping, output rules (no TensorRT needed)."""

from __future__ import annotations

import struct

import pytest

from trtrepo.errors import BuildError, SpecError
from trtrepo.tensorrt.opfacts import (
    AttributeFacts,
    OpFacts,
    OutputFacts,
    dtype_from_trt,
    float_bits,
    kernel_entries,
    op_facts,
    output_shapes,
    plugin_fields,
    split_args,
    trt_datatype_name,
)


def test_real_descriptions_read(bias_gelu: OpFacts, rms_norm: OpFacts) -> None:
    assert bias_gelu.op == "trtrepo::bias_gelu" and bias_gelu.namespace == "trtrepo"
    assert bias_gelu.plugin_name == "TrtrepoBiasGelu" and bias_gelu.plugin_version == "1"
    assert bias_gelu.inputs == ("x", "bias")
    assert rms_norm.attributes == (AttributeFacts("eps", "float", 1.0e-6),)
    assert [o.name for o in rms_norm.outputs] == ["out", "residual_out"]
    assert rms_norm.kernel_entries["bf16"] == "trtrepo_fused_add_rms_norm_bf16"


def test_plugin_fields_from_defaults_and_values(rms_norm: OpFacts) -> None:
    (default,) = plugin_fields(rms_norm, {})
    assert (default.name, default.field_type, default.numpy_dtype) == ("eps", "FLOAT32", "float32")
    assert default.values == (1.0e-6,)
    (given,) = plugin_fields(rms_norm, {"eps": 1e-5})
    assert given.values == (1e-5,)


def test_plugin_field_types_for_int_and_bool() -> None:
    facts = OpFacts(op="ns::op", inputs=("x",), attributes=(AttributeFacts("k", "int", 3),
                                                            AttributeFacts("flag", "bool", False)))
    k, flag = plugin_fields(facts, {"flag": True})
    assert (k.field_type, k.numpy_dtype, k.values) == ("INT32", "int32", (3,))
    assert (flag.field_type, flag.numpy_dtype, flag.values) == ("INT32", "int32", (1,))
    with pytest.raises(BuildError, match="is not a int"):
        plugin_fields(facts, {"k": 2.5})
    with pytest.raises(BuildError, match="int32"):
        plugin_fields(facts, {"k": 2**40})


def test_unknown_attribute_type_is_a_spec_error() -> None:
    facts = OpFacts(op="ns::op", inputs=("x",), attributes=(AttributeFacts("s", "str", "a"),))
    with pytest.raises(SpecError, match="plugin fields support"):
        plugin_fields(facts, {})


def test_required_attribute_without_value() -> None:
    facts = OpFacts(op="ns::op", inputs=("x",), attributes=(AttributeFacts("eps", "float", None),))
    with pytest.raises(BuildError, match="no value and no default"):
        plugin_fields(facts, {})


def test_split_args_positional_keyword_and_default(rms_norm: OpFacts) -> None:
    tensors, attrs = split_args(rms_norm, ("X", "R", "W", 1e-3), {})
    assert tensors == ["X", "R", "W"] and attrs == {"eps": 1e-3}
    tensors, attrs = split_args(rms_norm, ("X", "R"), {"weight": "W"})
    assert tensors == ["X", "R", "W"] and attrs == {"eps": 1.0e-6}
    _, attrs = split_args(rms_norm, ("X", "R", "W"), {"eps": 2e-6})
    assert attrs == {"eps": 2e-6}


def test_split_args_errors(bias_gelu: OpFacts) -> None:
    with pytest.raises(BuildError, match="'bias' is missing"):
        split_args(bias_gelu, ("X",), {})
    with pytest.raises(BuildError, match="unknown argument 'alpha'"):
        split_args(bias_gelu, ("X", "B"), {"alpha": 1})
    with pytest.raises(BuildError, match="positional args"):
        split_args(bias_gelu, ("X", "B", 3), {})


def test_dtype_mapping_round_trip() -> None:
    for name in ("fp32", "fp16", "bf16", "int32", "int64", "bool"):
        assert dtype_from_trt(trt_datatype_name(name)) == name
        assert dtype_from_trt("DataType." + trt_datatype_name(name)) == name
    assert trt_datatype_name("fp16") == "HALF"
    with pytest.raises(BuildError, match="no Triton mapping"):
        dtype_from_trt("FP8")
    with pytest.raises(BuildError, match="no TensorRT mapping"):
        trt_datatype_name("fp64")


def test_output_shapes_follow_like_rules(rms_norm: OpFacts) -> None:
    assert output_shapes(rms_norm, [(4, 7, 64), (4, 7, 64), (64,)]) == [(4, 7, 64), (4, 7, 64)]
    bad = OpFacts(op="ns::op", inputs=("x",), outputs=(OutputFacts("y", "z"),))
    with pytest.raises(SpecError, match="not one of its inputs"):
        output_shapes(bad, [(1,)])


def test_float_bits_is_the_ieee_pattern() -> None:
    assert float_bits(1.0) == 0x3F800000
    assert struct.unpack("<f", struct.pack("<i", float_bits(1e-6)))[0] == pytest.approx(1e-6, rel=1e-7)
    assert float_bits(-2.0) < 0


def test_kernel_entries_forms() -> None:
    assert kernel_entries("a::b", "k_f32") == {"fp32": "k_f32", "fp16": "k_f16", "bf16": "k_bf16"}
    assert kernel_entries("a::b", {"fp32": "x"}) == {"fp32": "x"}
    assert kernel_entries("a::b", None) == {}


def test_op_facts_from_mapping_and_bad_name() -> None:
    facts = op_facts({"name": "ns::op", "inputs": ["x"], "outputs": [{"name": "y", "like": "x"}],
                      "plugin": {"name": "P", "version": "2"}})
    assert (facts.plugin_name, facts.plugin_version, facts.outputs[0].like) == ("P", "2", "x")
    with pytest.raises(SpecError, match="namespace::op"):
        op_facts({"name": "noop"})
