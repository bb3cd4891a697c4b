"""The one dtype vocabulary: trtrepo's names (``fp32`` …) and what every layer calls them.

model.yaml, op.yaml, config.pbtxt, the Triton wire protocol, numpy, torch, TensorRT and the kernels' C enum each
spell a dtype their own way. One table holds every spelling; every other module asks it (``dtypes.get("fp16")
.triton``) instead of keeping a table of its own. Nothing here imports torch, numpy or TensorRT: the ``to_*`` and
``from_*`` helpers import them when called.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from trtrepo.errors import BuildError


@dataclass(frozen=True)
class DType:
    """One dtype in every spelling.

    Attributes:
        name: trtrepo's name (model.yaml, op.yaml, the manifest): ``fp32``.
        torch: ``torch`` attribute: ``float32``.
        numpy: numpy dtype name, or None where numpy has none (bf16 travels as ``ml_dtypes.bfloat16`` / raw bits).
        triton: Triton wire datatype (tritonclient, KServe v2): ``FP32``.
        config: config.pbtxt ``DataType``: ``TYPE_FP32``.
        tensorrt: ``tensorrt.DataType`` member: ``FLOAT``.
        itemsize: Bytes per element.
        raw: Little-endian numpy dtype of its raw bytes (warm-up files; bf16 as its 16 bits).
        floating: A floating-point type.
        kernel: Value of the kernels' ``TrtrepoDType`` enum (``trtrepo_dtype.h``); None for types kernels never take.
        c_type: The C/CUDA element type of a pointer of this dtype in a kernel entry.
    """

    name: str
    torch: str
    numpy: str | None
    triton: str
    config: str
    tensorrt: str
    itemsize: int
    raw: str
    floating: bool
    kernel: int | None = None
    c_type: str = ""


_TABLE = (
    DType("fp32", "float32", "float32", "FP32", "TYPE_FP32", "FLOAT", 4, "<f4", True, 0, "float"),
    DType("fp16", "float16", "float16", "FP16", "TYPE_FP16", "HALF", 2, "<f2", True, 1, "__half"),
    DType("bf16", "bfloat16", None, "BF16", "TYPE_BF16", "BF16", 2, "<u2", True, 2, "__nv_bfloat16"),
    DType("int32", "int32", "int32", "INT32", "TYPE_INT32", "INT32", 4, "<i4", False, None, "int32_t"),
    DType("int64", "int64", "int64", "INT64", "TYPE_INT64", "INT64", 8, "<i8", False, None, "int64_t"),
    DType("bool", "bool", "bool", "BOOL", "TYPE_BOOL", "BOOL", 1, "|u1", False, None, "bool"),
)
DTYPES: dict[str, DType] = {d.name: d for d in _TABLE}
NAMES: tuple[str, ...] = tuple(DTYPES)
FLOAT_NAMES: tuple[str, ...] = tuple(d.name for d in _TABLE if d.floating)
KERNEL_NAMES: tuple[str, ...] = tuple(d.name for d in _TABLE if d.kernel is not None)
PRECISIONS: tuple[str, ...] = FLOAT_NAMES

# Spellings users bring from torch, numpy and Triton, for "did you mean".
ALIASES: dict[str, str] = {
    "float32": "fp32", "float": "fp32", "f32": "fp32", "float16": "fp16", "half": "fp16", "f16": "fp16",
    "bfloat16": "bf16", "TYPE_FP32": "fp32", "TYPE_FP16": "fp16", "TYPE_BF16": "bf16", "FP32": "fp32",
    "FP16": "fp16", "BF16": "bf16", "int": "int64", "long": "int64", "TYPE_INT32": "int32", "TYPE_INT64": "int64",
    "TYPE_BOOL": "bool", "INT32": "int32", "INT64": "int64", "BOOL": "bool",
}


class UnknownDType(BuildError):
    """A dtype that has no entry in the table: an artifact (a plan, a program) uses a type trtrepo cannot serve."""


def get(name: str) -> DType:
    """The dtype called ``name`` (trtrepo spelling).

    Raises:
        UnknownDType: ``name`` is not one of :data:`NAMES` (the message suggests the closest one).
    """
    try:
        return DTYPES[name]
    except KeyError:
        raise UnknownDType(f"dtype {name!r} is not one of {', '.join(NAMES)}{did_you_mean(name, NAMES)}") from None


def did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'fp16'?)`` for a misspelled or foreign dtype name, else ''."""
    if ALIASES.get(word) in choices:
        return f" (did you mean {ALIASES[word]!r}?)"
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _find(attr: str, value: str, what: str) -> DType:
    for d in _TABLE:
        if getattr(d, attr) == value:
            return d
    raise UnknownDType(f"{what} {value} has no trtrepo dtype (known: {', '.join(NAMES)})")


def from_tensorrt(member: str) -> str:
    """``tensorrt.DataType`` member name (``HALF`` or ``DataType.HALF``) → trtrepo name."""
    return _find("tensorrt", member.rsplit(".", 1)[-1], "TensorRT dtype").name


def from_triton(datatype: str) -> str:
    """Triton wire datatype (``FP16``) or config type (``TYPE_FP16``) → trtrepo name."""
    if datatype.startswith("TYPE_"):
        return _find("config", datatype, "Triton config dtype").name
    return _find("triton", datatype, "Triton dtype").name


def to_torch(name: str) -> Any:
    """trtrepo name → ``torch.dtype``."""
    import torch

    return getattr(torch, get(name).torch)


def from_torch(dtype: Any) -> str:
    """``torch.dtype`` → trtrepo name."""
    text = str(dtype).removeprefix("torch.")
    return _find("torch", text, "torch dtype").name


def to_numpy(name: str) -> Any:
    """trtrepo name → numpy dtype; bf16 → ``ml_dtypes.bfloat16`` where installed (tritonclient's choice), else
    ``uint16`` (its raw bits)."""
    import numpy as np

    d = get(name)
    if d.numpy is not None:
        return np.dtype(d.numpy)
    try:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    except ImportError:
        return np.dtype(np.uint16)
