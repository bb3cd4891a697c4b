"""Load the built torch op library and give every op a fake (shape) kernel made from its op.yaml output rules.

Fake kernels let torch.export trace the ops with dynamic dims. They are generated, not hand-written: an output
``{name: out, like: x}`` is ``torch.empty_like(x)``, ``{name: out, shape: "x[:-1] + [2]", dtype: x}`` is a new
tensor of that (symbolic) shape. An op whose library already registers a Meta kernel (C++
``TORCH_LIBRARY_IMPL(ns, Meta, m)``) keeps it; ``trtrepo ops check`` compares it with the rule.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo.errors import BuildError

if TYPE_CHECKING:
    from trtrepo.ops.build import BuiltOps
    from trtrepo.ops.description import OpDescription

LOGGER = logging.getLogger(__name__)

_LOCK = threading.Lock()
_LOADED_LIBRARIES: set[Path] = set()
_FAKES: set[str] = set()
_PYTHON_CPU: dict[str, Any] = {}  # op name → the torch.library.Library holding its Python CPU impl (kept alive)
_DESCRIPTIONS: dict[str, OpDescription] = {}  # every op load_ops made callable in this process


def make_fake(desc: OpDescription) -> Callable[..., Any]:
    """A fake kernel for ``desc`` from its op.yaml output rules; arguments are bound by the schema's names.

    ``like: x`` outputs are ``empty_like(x)``; ``shape:`` rules are evaluated over the inputs' sizes, which are
    SymInts under torch.export, so dynamic dims stay symbolic.
    """
    import torch

    from trtrepo import dtypes
    from trtrepo.ops import expr

    names = [a.name for a in desc.torch_op()._schema.arguments]
    algebra = expr.python_algebra(minimum=torch.sym_min, maximum=torch.sym_max)

    def fake(*args: Any, **kwargs: Any) -> Any:
        bound = dict(zip(names, args, strict=False))
        bound.update(kwargs)
        tensors = [bound[n] for n in desc.inputs]
        attrs = {a.name: bound.get(a.name) for a in desc.attributes}
        shapes = desc.output_shapes([list(t.shape) for t in tensors], attrs, algebra)
        kinds = desc.output_dtypes([dtypes.from_torch(t.dtype) for t in tensors])
        outs = tuple(torch.empty_like(bound[rule.like]) if rule.like is not None
                     else tensors[0].new_empty(shape, dtype=dtypes.to_torch(kind))
                     for rule, shape, kind in zip(desc.outputs, shapes, kinds, strict=True))
        return outs[0] if len(outs) == 1 else outs

    fake.__name__ = f"{desc.op_name}_fake"
    fake.__doc__ = f"Fake kernel of {desc.name} from {desc.path}."
    return fake


def has_meta_kernel(name: str) -> bool:
    """Whether a C++ Meta kernel is registered for ``name`` (``ns::op``)."""
    import torch

    return bool(torch._C._dispatch_has_kernel_for_dispatch_key(name, "Meta"))


def register_fakes(descriptions: dict[str, OpDescription]) -> None:
    """Register a generated fake kernel for each op that has neither one nor a C++ Meta kernel (idempotent)."""
    import torch

    for name, desc in descriptions.items():
        if name in _FAKES:
            continue
        if has_meta_kernel(name):
            LOGGER.debug("%s has a C++ Meta kernel; no Python fake registered", name)
        else:
            torch.library.register_fake(name, make_fake(desc))
        _FAKES.add(name)


def load_library(path: Path) -> None:
    """``torch.ops.load_library(path)`` once per path.

    Raises:
        BuildError: The library does not load (missing symbols, wrong torch), with the loader's message.
    """
    import torch

    path = Path(path).resolve()
    with _LOCK:
        if path in _LOADED_LIBRARIES:
            return
        try:
            torch.ops.load_library(str(path))  # type: ignore[no-untyped-call]  # untyped in torch
        except OSError as exc:
            raise BuildError(f"{path}: cannot load the op library: {exc}",
                             hint="rebuild it with the torch that loads it (delete the cache folder)") from None
        _LOADED_LIBRARIES.add(path)


def _defined(desc: OpDescription) -> bool:
    import torch

    return hasattr(getattr(torch.ops, desc.namespace), desc.op_name)


def load_ops(built: BuiltOps) -> None:
    """Load every op library of ``built`` and register fake kernels for its ops (idempotent).

    A process can hold one definition of an op: a library whose ops are all defined already (the same root built
    into another cache folder and loaded earlier) is not loaded again, and the loaded definitions serve.

    Raises:
        BuildError: A library does not load, does not define an op its op.yaml declares, or only some of its ops
            are already defined by another library.
    """
    for library in built.torch_libraries:
        descs = {name: built.descriptions[name] for name in library.ops}
        present = [name for name, desc in descs.items() if _defined(desc)]
        loaded = Path(library.path).resolve() in _LOADED_LIBRARIES
        if loaded or len(present) < len(descs):
            if present and not loaded:
                raise BuildError(f"{library.path}: ops {', '.join(present)} are already defined in this process by "
                                 "another library", hint="load one op library per plugin root and process")
            load_library(library.path)
        else:
            LOGGER.debug("ops %s already defined; %s not loaded", ", ".join(present), library.path)
        for name, desc in descs.items():
            if not _defined(desc):
                raise BuildError(f"{desc.path}: {name} is declared but {library.path} does not define it",
                                 hint=f"add TORCH_LIBRARY_FRAGMENT({desc.namespace}, m) {{ m.def(...) }} to the "
                                 "binding")
    with _LOCK:
        register_fakes(built.descriptions)
        register_python_cpu(built.descriptions)
        _DESCRIPTIONS.update(built.descriptions)


def loaded_descriptions() -> dict[str, OpDescription]:
    """The ops :func:`load_ops` loaded into this process (what an eager run's op watch checks)."""
    return dict(_DESCRIPTIONS)


def has_kernel(name: str, key: str) -> bool:
    """Whether op ``name`` (``ns::op``) has a kernel registered for dispatch key ``key`` (``CPU``, ``CUDA``...)."""
    import torch

    return bool(torch._C._dispatch_has_kernel_for_dispatch_key(name, key))


def python_cpu_ops() -> set[str]:
    """The ops whose CPU kernel this process registered from their decomposition (:func:`register_python_cpu`)."""
    return set(_PYTHON_CPU)


def register_python_cpu(descriptions: dict[str, OpDescription]) -> list[str]:
    """Give every op without a CPU kernel (a generated binding whose op.yaml names no C++ reference) its
    decomposition, behind op.yaml's input checks, as the CPU implementation (idempotent). Returns the ops that got
    one."""
    import torch

    done = []
    for name, desc in descriptions.items():
        if name in _PYTHON_CPU or desc.decomposition is None or has_kernel(name, "CPU"):
            continue
        library = torch.library.Library(desc.namespace, "IMPL")  # type: ignore[no-untyped-call]  # untyped in torch
        library.impl(desc.op_name, desc.checked_decomposition(), "CPU")  # type: ignore[no-untyped-call]
        _PYTHON_CPU[name] = library
        LOGGER.debug("%s: no CPU kernel; its decomposition serves on CPU", name)
        done.append(name)
    return done


def ensure_loaded(sources: Sequence[Path | str], with_cuda: bool | None = None) -> BuiltOps:
    """Build (into the cache, if not built yet) and load the ops of ``sources`` for use outside trtrepo's stages.

    trtrepo's own stages load a spec's ``plugin_sources`` before they call a factory, so a factory never needs this;
    it is for scripts and notebooks that run a model by hand.
    """
    from trtrepo import settings
    from trtrepo.ops.build import build_ops

    built = build_ops([Path(s) for s in sources], settings.cache_dir(), with_cuda=with_cuda)
    load_ops(built)
    return built
