"""Input checks of an op whose CPU kernel is its Python decomposition: op.yaml's dtypes and shape patterns.

The generated C++ binding checks inputs before its kernels run (trtrepo/ops/generated.py); an op served on CPU by
its decomposition gets the same checks, with the same messages, from here. This module imports nothing but the
standard library: the torch target copies it next to the decompositions it ships (``python_ops/``), and the served
model.py loads it from there without trtrepo.

A pattern is a list of entries, one per dim: ``"..."`` (the leading dims every input shares), an int (that size),
or ``[factor, symbol]`` (``D`` is ``[1, "D"]``, ``2*H`` is ``[2, "H"]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

ELLIPSIS = "..."


def pattern_text(pattern: Sequence[Any]) -> str:
    """``[..., 2*H]``."""
    parts = []
    for p in pattern:
        if p == ELLIPSIS:
            parts.append(ELLIPSIS)
        elif isinstance(p, int):
            parts.append(str(p))
        else:
            parts.append(p[1] if p[0] == 1 else f"{p[0]}*{p[1]}")
    return "[" + ", ".join(parts) + "]"


def _dims(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def shape_problem(inputs: Sequence[tuple[str, Sequence[Any] | None]], shapes: Sequence[Sequence[int]]) -> str | None:
    """Why ``shapes`` do not fit the inputs' patterns (the generated binding's words), or None when they do."""
    symbols: dict[str, tuple[int, str]] = {}
    leading: Sequence[int] | None = None
    for (name, pattern), shape in zip(inputs, shapes, strict=True):
        if pattern is None:
            continue
        text = pattern_text(pattern)
        fixed = [p for p in pattern if p != ELLIPSIS]
        has_ellipsis = len(fixed) != len(pattern)
        if len(shape) < len(fixed) or (not has_ellipsis and len(shape) != len(fixed)):
            return f"input {name} must have shape {text}, got {_dims(shape)}"
        if has_ellipsis:
            lead = list(shape[:len(shape) - len(fixed)])
            if leading is None:
                leading = lead
            elif lead != list(leading):
                return f"input {name}: its leading dims (...) {_dims(lead)} differ from the other inputs' " \
                       f"{_dims(leading)}"
        for j, p in enumerate(fixed):
            position = j - len(fixed) if has_ellipsis else j
            value = shape[position]
            where = f"{name}[{position}]"
            if isinstance(p, int):
                if value != p:
                    return f"input {name} must have shape {text}: {where} must be {p}, got {value}"
                continue
            factor, symbol = p
            if value % factor != 0:
                return f"input {name} must have shape {text}: {where} must be a multiple of {factor}, got {value}"
            if symbol not in symbols:
                symbols[symbol] = (value // factor, where)
            elif value // factor != symbols[symbol][0]:
                return f"input {name} must have shape {text}: {where} is {value} but {symbols[symbol][1]} gives " \
                       f"{symbol} = {symbols[symbol][0]}"
    return None


def checked(op: str, inputs: Sequence[tuple[str, Sequence[Any] | None]], dtypes: Mapping[str, str],
            fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (the decomposition) behind op.yaml's checks: one element type of ``dtypes`` (torch name without
    ``torch.`` → op.yaml name: ``{"float32": "fp32"}``) for all tensor inputs, the shape patterns; a failed check
    raises RuntimeError like the generated binding's TORCH_CHECK."""
    count = len(inputs)

    def run(*args: Any, **kwargs: Any) -> Any:
        tensors = args[:count]
        first = str(tensors[0].dtype).replace("torch.", "")
        for (name, _), t in zip(inputs, tensors, strict=True):
            kind = str(t.dtype).replace("torch.", "")
            if kind not in dtypes:
                raise RuntimeError(f"{op}: input {name} is {kind}; op.yaml dtypes: {', '.join(dtypes.values())}")
            if kind != first:
                raise RuntimeError(f"{op}: input {name} is {kind} but {inputs[0][0]} is {first} (the kernels take "
                                   "one element type)")
        why = shape_problem(inputs, [tuple(t.shape) for t in tensors])
        if why is not None:
            raise RuntimeError(f"{op}: {why}")
        return fn(*args, **kwargs)

    run.__name__ = getattr(fn, "__name__", "decomposition")
    return run
