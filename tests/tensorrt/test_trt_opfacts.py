"""Op description → plugin fields, argument split, dtype mapping, output rules (no TensorRT needed)."""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable

import pytest

from trtrepo.errors import BuildError, SpecError
from trtrepo.ops.description import Attribute, OpDescription, PluginInfo
from trtrepo.ops.expr import float_bits
from trtrepo.tensorrt.opfacts import plugin_fields, require_plugin, split_args

WriteOp = Callable[[str], OpDescription]


def _op_yaml(schema: str, attributes: str = "", extra: str = "") -> str:
    """A one-input, one-output op.yaml ``ns::op`` with ``schema``'s non-tensor arguments as ``attributes``."""
    return (f'name: ns::op\nschema: "{schema}"\ninputs: [x]\n{attributes}outputs:\n  - {{name: y, like: x}}\n'
            f"dtypes: [fp32]\n{extra}")


def test_real_descriptions_read(bias_gelu: OpDescription, rms_norm: OpDescription) -> None:
    assert bias_gelu.name == "trtrepo::bias_gelu" and bias_gelu.namespace == "trtrepo"
    assert require_plugin(bias_gelu) == PluginInfo("TrtrepoBiasGelu", "1", "trtrepo")
    assert bias_gelu.inputs == ("x", "bias")
    assert rms_norm.attributes == (Attribute("eps", "float", 1.0e-6),)
    assert [o.name for o in rms_norm.outputs] == ["out", "residual_out"]
    assert rms_norm.kernel is not None and rms_norm.kernel.entries["bf16"] == "trtrepo_fused_add_rms_norm_bf16"


def test_plugin_fields_from_defaults_and_values(rms_norm: OpDescription) -> None:
    (default,) = plugin_fields(rms_norm, {})
    assert (default.name, default.field_type, default.numpy_dtype) == ("eps", "FLOAT32", "float32")
    assert default.values == (1.0e-6,)
    (given,) = plugin_fields(rms_norm, {"eps": 1e-5})
    assert given.values == (1e-5,)


def test_plugin_field_types_for_int_and_bool(write_op: WriteOp) -> None:
    desc = write_op(_op_yaml("op(Tensor x, int k=3, bool flag=False) -> Tensor",
                              "attributes:\n  - {name: k, type: int, default: 3}\n"
                              "  - {name: flag, type: bool, default: false}\n"))
    k, flag = plugin_fields(desc, {"flag": True})
    assert (k.field_type, k.numpy_dtype, k.values) == ("INT32", "int32", (3,))
    assert (flag.field_type, flag.numpy_dtype, flag.values) == ("INT32", "int32", (1,))
    with pytest.raises(BuildError, match="is not a int"):
        plugin_fields(desc, {"k": 2.5})
    with pytest.raises(BuildError, match="int32"):
        plugin_fields(desc, {"k": 2**40})


def test_unknown_attribute_type_is_a_spec_error(write_op: WriteOp) -> None:
    # op.yaml rejects such a type at load time; a type the loader may accept later without a plugin field mapping
    # must still stop here
    op = write_op(_op_yaml("op(Tensor x) -> Tensor"))
    desc = dataclasses.replace(op, attributes=(Attribute("s", "str", "a"),))
    with pytest.raises(SpecError, match="plugin fields support"):
        plugin_fields(desc, {})


def test_required_attribute_without_value(write_op: WriteOp) -> None:
    desc = write_op(_op_yaml("op(Tensor x, float eps) -> Tensor", "attributes:\n  - {name: eps, type: float}\n"))
    assert desc.attributes == (Attribute("eps", "float", None),)
    with pytest.raises(BuildError, match="no value and no default"):
        plugin_fields(desc, {})


def test_split_args_positional_keyword_and_default(rms_norm: OpDescription) -> None:
    tensors, attrs = split_args(rms_norm, ("X", "R", "W", 1e-3), {})
    assert tensors == ["X", "R", "W"] and attrs == {"eps": 1e-3}
    tensors, attrs = split_args(rms_norm, ("X", "R"), {"weight": "W"})
    assert tensors == ["X", "R", "W"] and attrs == {"eps": 1.0e-6}
    _, attrs = split_args(rms_norm, ("X", "R", "W"), {"eps": 2e-6})
    assert attrs == {"eps": 2e-6}


def test_split_args_errors(bias_gelu: OpDescription) -> None:
    with pytest.raises(BuildError, match="'bias' is missing"):
        split_args(bias_gelu, ("X",), {})
    with pytest.raises(BuildError, match="unknown argument 'alpha'"):
        split_args(bias_gelu, ("X", "B"), {"alpha": 1})
    with pytest.raises(BuildError, match="positional args"):
        split_args(bias_gelu, ("X", "B", 3), {})


def test_output_shapes_follow_the_rules(rms_norm: OpDescription, write_op: WriteOp) -> None:
    assert rms_norm.output_shapes([(4, 7, 64), (4, 7, 64), (64,)]) == [(4, 7, 64), (4, 7, 64)]
    pool = write_op('name: ns::pool\nschema: "pool(Tensor x, int k=2) -> Tensor"\ninputs: [x]\n'
                    "attributes: [{name: k, type: int, default: 2}]\n"
                    'outputs:\n  - {name: y, shape: "x[:-1] + [k]", dtype: fp32}\ndtypes: [fp16]\n')
    assert pool.output_shapes([(4, 7, 64)]) == [(4, 7, 2)]
    assert pool.output_shapes([(3, 9)], {"k": 5}) == [(3, 5)]
    assert pool.output_dtypes(["fp16"]) == ["fp32"]
    with pytest.raises(SpecError, match="takes 1 inputs"):
        pool.output_shapes([(1,), (2,)])


def test_float_bits_is_the_ieee_pattern() -> None:
    assert float_bits(1.0) == 0x3F800000
    assert struct.unpack("<f", struct.pack("<i", float_bits(1e-6)))[0] == pytest.approx(1e-6, rel=1e-7)
    assert float_bits(-2.0) < 0


def test_plugin_block_read_and_required(write_op: WriteOp) -> None:
    op = write_op(_op_yaml("op(Tensor x) -> Tensor", extra='plugin: {name: P, version: "2"}\n'))
    assert (require_plugin(op), op.outputs[0].like) == (PluginInfo("P", "2", "ns"), "x")
    with pytest.raises(BuildError, match="has no plugin block"):
        require_plugin(write_op(_op_yaml("op(Tensor x) -> Tensor")))
    with pytest.raises(SpecError, match="namespace::op"):
        write_op(_op_yaml("op(Tensor x) -> Tensor").replace("name: ns::op", "name: noop"))
