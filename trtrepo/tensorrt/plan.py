"""ExportedProgram → TensorRT plan with Torch-TensorRT: profiles, precision, timing cache, build log.

Precision: trtrepo.export already casts the model to its precision before export, so the network's dtypes ARE the
precision. Torch-TensorRT >= 2.13 builds strongly typed networks only (and ignores ``enabled_precisions``); for
2.7–2.12 the same result comes from ``use_explicit_typing=True`` with ``enabled_precisions={float32}`` (the only
combination those releases accept). One behaviour across releases: the engine computes in the model's dtypes.

Environment: ``TRTREPO_TRT_OPT_LEVEL`` (0-5) sets the builder optimization level (default: Torch-TensorRT's).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trtrepo import dtypes, settings
from trtrepo.errors import BuildError, SpecError
from trtrepo.tensorrt.tt_adapter import InputProfile

if TYPE_CHECKING:
    from trtrepo.spec import ModelSpec, TensorSpec

LOGGER = logging.getLogger(__name__)

TIMING_CACHE_NAME = "timing.cache"


@dataclass(frozen=True)
class PlanResult:
    """A built plan and where its build left traces."""

    plan: bytes
    log_path: Path
    timing_cache: Path
    options: dict[str, Any]
    seconds: float


def input_profiles(inputs: Sequence[TensorSpec]) -> list[InputProfile]:
    """One optimization profile entry per model input, from model.yaml's min/opt/max."""
    return [InputProfile(name=t.name, min_shape=tuple(t.min), opt_shape=tuple(t.opt), max_shape=tuple(t.max),
                         dtype=dtypes.get(t.dtype).torch) for t in inputs]


def precision_options(accepted: Collection[str], precision: str) -> dict[str, Any]:
    """Precision keyword options for this Torch-TensorRT release (see the module docstring).

    Args:
        accepted: Keyword parameters the release's converter takes.
        precision: The model's precision (fp32|fp16|bf16); the model is already cast to it.

    Returns:
        Options with torch dtypes named as strings (``"float32"``); the caller turns them into torch dtypes.
    """
    if precision not in ("fp32", "fp16", "bf16"):
        raise SpecError(f"precision: {precision!r} is not one of fp32, fp16, bf16")
    if "use_explicit_typing" in accepted:  # 2.7–2.12: strong typing is opt-in and wants enabled_precisions={fp32}
        return {"use_explicit_typing": True, "enabled_precisions": ("float32",)}
    return {}  # 2.13+: strongly typed only


def build_options(accepted: Collection[str], precision: str, timing_cache: Path,
                  output_binding_names: Any = None) -> dict[str, Any]:
    """All keyword options for ``convert_exported_program_to_serialized_trt_engine`` in this release.

    Args:
        accepted: Keyword parameters the release's converter takes.
        precision: The model's precision.
        timing_cache: Timing cache file kept between builds.
        output_binding_names: The spec's output names shaped like forward()'s return value, passed where the
            release can name outputs (2.14); None leaves Torch-TensorRT's ``output0``… names.
    """
    options: dict[str, Any] = {
        "min_block_size": 1,
        "require_full_compilation": True,  # a plan is one engine: any op left to PyTorch is a build error
        "timing_cache_path": str(timing_cache),
        "truncate_double": True,
        # fp32 means IEEE fp32 as in eager PyTorch (whose CUDA matmuls default to TF32 off); TensorRT would
        # otherwise pick TF32 tactics and drift ~1e-3 from eager (seen on the GPU lane with TensorRT-RTX).
        "disable_tf32": precision == "fp32",
        **precision_options(accepted, precision),
    }
    level = settings.trt_opt_level()
    if level is not None:
        options["optimization_level"] = level
    if output_binding_names is not None:
        options["output_binding_names"] = output_binding_names
    return {k: v for k, v in options.items() if k in accepted}


def build_plan(ep: Any, model: ModelSpec, cache_dir: Path, log_dir: Path) -> PlanResult:
    """Build the model's plan; the Torch-TensorRT / TensorRT log goes to ``<log_dir>/<model>.tensorrt.log``.

    Raises:
        MissingDependencyError: TensorRT or Torch-TensorRT is missing (nothing is written then).
        BuildError: Conversion or the engine build failed (message names the log).
    """
    from trtrepo.deps import require

    require("tensorrt", "the TensorRT target")
    require("torch_tensorrt", "the TensorRT target")
    import torch

    from trtrepo.tensorrt import tt_adapter

    trt_cache = cache_dir / "tensorrt"
    trt_cache.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    timing_cache = trt_cache / TIMING_CACHE_NAME
    log_path = log_dir / f"{model.name}.tensorrt.log"
    accepted = tt_adapter.convert_parameters()
    names = _output_names_tree(ep, [o.name for o in model.outputs]) if "output_binding_names" in accepted else None
    options = build_options(accepted, model.precision, timing_cache, names)
    call_options = dict(options)
    if "enabled_precisions" in call_options:
        call_options["enabled_precisions"] = {getattr(torch, d) for d in call_options["enabled_precisions"]}
    handler = logging.FileHandler(log_path, mode="w")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    tt_logger = logging.getLogger("torch_tensorrt")
    old_level = tt_logger.level
    tt_logger.addHandler(handler)
    tt_logger.setLevel(logging.DEBUG)
    start = time.monotonic()
    try:
        LOGGER.info("%s: building TensorRT plan (options %s, log %s)", model.name, options, log_path)
        plan = tt_adapter.convert_to_engine(ep, input_profiles(model.inputs), call_options)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BuildError(f"{model.yaml_path}: TensorRT plan build of {model.name!r} failed: {first} (log: {log_path})",
                         hint="an op with no converter needs lowering plugin, aot or decompose in model.yaml ops:"
                         ) from exc
    finally:
        tt_logger.removeHandler(handler)
        tt_logger.setLevel(old_level)
        handler.close()
    return PlanResult(plan=plan, log_path=log_path, timing_cache=timing_cache, options=options,
                      seconds=time.monotonic() - start)


def _output_names_tree(ep: Any, names: Sequence[str]) -> Any:
    """The spec's output names in the pytree structure of the program's outputs (None when the counts differ)."""
    import torch.utils._pytree as pytree

    try:
        out_spec = ep.module_call_graph[0].signature.out_spec
    except (AttributeError, IndexError):
        return None
    if out_spec is None or out_spec.num_leaves != len(names):
        return None
    return pytree.tree_unflatten(list(names), out_spec)
