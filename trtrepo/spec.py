"""model.yaml → typed, validated objects.

Each YAML section becomes one frozen dataclass. Field checks live in the section's parser, cross-field checks
are named ``_check_*`` functions. Every error is a :class:`SpecError` whose message starts with the YAML key
path (``models[0].inputs[1].max: must be >= opt [8, 128]``); unknown keys get a "did you mean" hint.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtrepo import dtypes, settings
from trtrepo._files import resolve_path, shown
from trtrepo.errors import SpecError

LOGGER = logging.getLogger(__name__)

DTYPES = dtypes.NAMES
PRECISIONS = dtypes.PRECISIONS
TARGETS = ("auto", "tensorrt", "torch")
LOWERINGS = ("plugin", "aot", "decompose")
INSTANCE_KINDS = ("auto", "cpu", "gpu")
WARMUP_DATA = ("sample", "random", "zero")
# What the torch target's model.py runs: the exported program itself, or an AOTInductor package compiled from it
TORCH_PROGRAMS = ("exported", "aoti")
# parity criteria (trtrepo.check.stats): elementwise = atol/rtol; cosine is a lower bound, the others upper bounds
METRICS = ("elementwise", "cosine", "max_abs", "mean_abs", "p99_abs", "fraction_outside")

DEFAULT_REPOSITORY = "model_repository"
DEFAULT_PLUGIN_SOURCES = ("plugin_src",)
DEFAULT_VERSION = 1
DEFAULT_PRECISION = "fp32"
DEFAULT_TARGET = "auto"
DEFAULT_LOWERING = "decompose"
DEFAULT_PARITY_SAMPLES = 4
DEFAULT_PARITY_SEED = 0
DEFAULT_RAGGED_REQUESTS = 8
DEFAULT_QUEUE_DELAY_US = 100
DEFAULT_WARMUP_COUNT = 1
# exported, not aoti: an AOTInductor package costs a C++ (and, for CUDA, Triton-kernel) compile per model at build
# time (~20 s for gelu_block on a CPU), is bound to the exact torch version and the device of the build machine
# (GPU architecture, CPU instruction set), and its gain is measured per model (docs/performance.md); a model opts in
DEFAULT_TORCH_PROGRAM = "exported"

# Names become folder names in the repository and identifiers in config.pbtxt: nothing that can escape the
# repository folder ("..", "/") and nothing Triton would reject. Always fullmatch: "$" also matches before a
# trailing newline ("tiny\n" would become a folder tritonserver hangs on).
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,127}")
_OP_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*::[A-Za-z_][A-Za-z0-9_]*")
_FACTORY_RE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")

# Integer ranges of what reads the values: Triton keeps versions as int64, batch sizes, counts and dims as int32
# (TensorRT's dims are int32 too).
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# One sample of one input at its max shape; above this a warm-up file, a parity sample or a benchmark request would
# need more memory than any machine has (a static dim of 10**12 elements).
MAX_SAMPLE_BYTES = 16 * 2**30

# A build replaces the repository folder with what it writes: these folders are never a repository.
SYSTEM_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt",
                  "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib",
                  "/usr/local", "/usr/share", "/var", "/var/tmp")
HOME_FOLDERS = ("Desktop", "Documents", "Downloads", "Music", "Pictures", "Public", "Templates", "Videos", ".cache",
                ".config", ".local", ".ssh")


# --------------------------------------------------------------------------------------------- typed sections
@dataclass(frozen=True)
class TensorSpec:
    """One model input: its shape with -1 for dynamic dims and, for those dims, the min/opt/max profile."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        """Indices of the dims declared -1."""
        return tuple(i for i, d in enumerate(self.shape) if d == -1)


@dataclass(frozen=True)
class Metric:
    """A parity criterion: ``elementwise`` (atol/rtol), or a statistic and its bound (``cosine`` >= threshold, the
    others <= threshold)."""

    criterion: str = "elementwise"
    threshold: float = 0.0


@dataclass(frozen=True)
class OutputSpec:
    """One model output and its parity tolerances and criterion (None = the model's parity default)."""

    name: str
    atol: float | None = None
    rtol: float | None = None
    metric: Metric | None = None


@dataclass(frozen=True)
class SourceSpec:
    """Where the model comes from: a factory ``module:callable`` or a saved ExportedProgram (.pt2)."""

    factory: str | None = None
    exported_program: Path | None = None


@dataclass(frozen=True)
class DynamicBatching:
    """Triton dynamic batcher settings."""

    preferred_batch_size: tuple[int, ...] = ()
    max_queue_delay_microseconds: int = DEFAULT_QUEUE_DELAY_US


@dataclass(frozen=True)
class InstanceGroup:
    """One Triton instance group; kind ``auto`` becomes GPU where the target device has one, else CPU."""

    kind: str = "auto"
    count: int = 1
    gpus: tuple[int, ...] = ()


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions Triton serves: ``latest`` N, ``all``, or ``specific`` versions."""

    kind: str = "latest"
    latest: int = 1
    versions: tuple[int, ...] = ()


@dataclass(frozen=True)
class Warmup:
    """Model warm-up written into config.pbtxt; ``sample`` = seeded parity inputs at the opt shape, as files."""

    enabled: bool = True
    data: str = "sample"
    count: int = DEFAULT_WARMUP_COUNT


@dataclass(frozen=True)
class TritonSpec:
    """Serving settings for one model."""

    max_batch_size: int = 0
    dynamic_batching: DynamicBatching | None = None
    instance_groups: tuple[InstanceGroup, ...] = (InstanceGroup(),)
    version_policy: VersionPolicy = VersionPolicy()
    warmup: Warmup = Warmup()


@dataclass(frozen=True)
class TorchOptions:
    """Options of the torch target (ignored by the tensorrt target).

    Attributes:
        program: ``exported``: model.py runs the torch.export program (model.pt2). ``aoti``: the build also
            compiles it with AOTInductor into ``model.aoti-<device>.pt2`` (custom ops through AOTI's proxy
            executor; the profile's dynamic dims kept) and model.py runs that package; one that cannot be loaded
            is a load error naming the file, never a silent fall back to the exported program.
    """

    program: str = DEFAULT_TORCH_PROGRAM


@dataclass(frozen=True)
class ParitySpec:
    """Parity settings; atol/rtol None = the default for the model's precision (trtrepo.check.tolerances)."""

    atol: float | None = None
    rtol: float | None = None
    samples: int = DEFAULT_PARITY_SAMPLES
    seed: int = DEFAULT_PARITY_SEED
    ragged_requests: int = DEFAULT_RAGGED_REQUESTS
    metric: Metric | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One model of the repository."""

    name: str
    version: int
    source: SourceSpec
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[OutputSpec, ...]
    precision: str = DEFAULT_PRECISION
    target: str = DEFAULT_TARGET
    ops: Mapping[str, str] = field(default_factory=dict)
    triton: TritonSpec = TritonSpec()
    parity: ParitySpec = ParitySpec()
    torch: TorchOptions = TorchOptions()
    yaml_path: str = ""

    def lowering(self, op: str) -> str:
        """The lowering chosen for ``op`` (``ns::name``), or the default when the spec names none."""
        return self.ops.get(op, DEFAULT_LOWERING)


@dataclass(frozen=True)
class Spec:
    """A whole model.yaml: where the repository goes, which plugin sources to build, and the models."""

    path: Path
    repository: Path
    plugin_sources: tuple[Path, ...]
    models: tuple[ModelSpec, ...]

    @property
    def root(self) -> Path:
        """The folder model.yaml lives in; relative paths in it resolve against this."""
        return self.path.parent

    def model(self, name: str) -> ModelSpec:
        """The model called ``name``; SpecError naming the known models otherwise."""
        for model in self.models:
            if model.name == name:
                return model
        raise SpecError(f"--models: unknown model {name!r}", hint=f"models in {self.path}: {self.model_names()}")

    def model_names(self) -> str:
        """Comma-separated model names, for messages."""
        return ", ".join(m.name for m in self.models)

    def select(self, names: str | Sequence[str] | None) -> list[ModelSpec]:
        """The models to work on: all (None), or the named ones (a list, or one comma-separated string).

        Raises:
            SpecError: No names given, or a name that is not a model of this spec (naming the known ones).
        """
        if names is None:
            return list(self.models)
        chosen = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
        chosen = [n for n in chosen if n]
        if not chosen:
            raise SpecError("--models: no model names given", hint=f"models in {self.path}: {self.model_names()}")
        return [self.model(n) for n in dict.fromkeys(chosen)]


# ------------------------------------------------------------------------------------------------ entry point
def load_spec(path: str | Path) -> Spec:
    """Read and validate a model.yaml.

    Args:
        path: The model.yaml file.

    Returns:
        The validated spec; paths in it are absolute.

    Raises:
        SpecError: The file is missing, is not YAML, or any field is invalid (message names the key path).
    """
    import yaml  # pyyaml is a core dependency but the CLI must start without paying for it

    given = shown(path)
    spec_path = resolve_path(path, given)
    if spec_path.is_dir():
        raise SpecError(f"{given}: is a folder, not a model.yaml", hint="pass the path of a model.yaml (see examples/)")
    if not spec_path.is_file():
        raise SpecError(f"{given}: no such file", hint="pass the path of a model.yaml (see examples/)")
    try:
        data = spec_path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{given}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SpecError(f"{given}:{line}:{column}: not UTF-8 text (byte 0x{data[exc.start]:02x})",
                        hint="save model.yaml as UTF-8") from None
    try:
        raw = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"{given}{where}: not valid YAML: {problem}") from None
    return parse_spec(raw, spec_path)


def _load_yaml(text: str) -> Any:
    """YAML → Python like ``yaml.safe_load``, but a key given twice in one mapping is an error, not "the last wins".

    Raises:
        SpecError: A duplicate key (its YAML path and both lines).
        yaml.YAMLError: Not YAML.
    """
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, "<root>", set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_duplicate_keys(node: Any, where: str, seen_nodes: set[int]) -> None:
    import yaml

    if id(node) in seen_nodes:  # an alias of a node already checked (recursive documents included)
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, f"{where}[{i}]" if where != "<root>" else f"[{i}]", seen_nodes)
    elif isinstance(node, yaml.MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":  # "<<: *defaults" merges keys on purpose
                continue
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            path = _join(where, name)
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode):
                if name in lines:
                    raise SpecError(f"{path}: duplicate key on lines {lines[name]} and {line} (YAML would keep only "
                                    "the last)")
                lines[name] = line
            _refuse_duplicate_keys(value, path, seen_nodes)


def parse_spec(raw: Any, spec_path: Path) -> Spec:
    """Validate an already-parsed YAML document; ``spec_path`` anchors relative paths."""
    root = spec_path.parent
    if raw is None:
        raise SpecError(f"{spec_path}: the file is empty", hint="see examples/annotated/model.yaml for every key")
    doc = _mapping(raw, "<root>", allowed=("repository", "plugin_sources", "models"), required=("models",))
    repository = _resolve(root, _str(doc.get("repository", DEFAULT_REPOSITORY), "repository"), "repository")
    if "plugin_sources" in doc:
        sources = tuple(
            _existing_dir(root, _str(item, f"plugin_sources[{i}]"), f"plugin_sources[{i}]")
            for i, item in enumerate(_list(doc["plugin_sources"], "plugin_sources"))
        )
    else:
        sources = tuple(root / d for d in DEFAULT_PLUGIN_SOURCES if (root / d).is_dir())
    models_raw = _list(doc["models"], "models", min_len=1)
    models = tuple(_model(item, f"models[{i}]", root) for i, item in enumerate(models_raw))
    _check_unique([m.name for m in models], "models", "name")
    check_repository_folder(repository, "repository")
    _check_repository_location(repository, root, sources)
    return Spec(path=spec_path, repository=repository, plugin_sources=sources, models=models)


# ------------------------------------------------------------------------------------------------ sections
_MODEL_KEYS = ("name", "version", "source", "inputs", "outputs", "precision", "target", "ops", "triton", "parity",
               "torch")


def _model(raw: Any, where: str, root: Path) -> ModelSpec:
    doc = _mapping(raw, where, allowed=_MODEL_KEYS, required=("name", "source", "inputs", "outputs"))
    name = _name(doc["name"], f"{where}.name")
    version = _int(doc.get("version", DEFAULT_VERSION), f"{where}.version", minimum=1, maximum=INT64_MAX)
    source = _source(doc["source"], f"{where}.source", root)
    inputs = tuple(_input(x, f"{where}.inputs[{i}]") for i, x in enumerate(_list(doc["inputs"], f"{where}.inputs", 1)))
    outputs = tuple(
        _output(x, f"{where}.outputs[{i}]") for i, x in enumerate(_list(doc["outputs"], f"{where}.outputs", 1))
    )
    _check_unique([t.name for t in inputs], f"{where}.inputs", "name")
    _check_unique([t.name for t in outputs], f"{where}.outputs", "name")
    _check_io_names_disjoint(inputs, outputs, where)
    precision = _choice(doc.get("precision", DEFAULT_PRECISION), f"{where}.precision", PRECISIONS)
    target = _choice(doc.get("target", DEFAULT_TARGET), f"{where}.target", TARGETS)
    ops = _ops(doc.get("ops", {}), f"{where}.ops")
    triton = _triton(doc.get("triton", {}), f"{where}.triton")
    parity = _parity(doc.get("parity", {}), f"{where}.parity")
    torch_options = _torch_options(doc.get("torch", {}), f"{where}.torch")
    _check_batching(inputs, triton, where)
    return ModelSpec(
        name=name,
        version=version,
        source=source,
        inputs=inputs,
        outputs=outputs,
        precision=precision,
        target=target,
        ops=ops,
        triton=triton,
        parity=parity,
        torch=torch_options,
        yaml_path=where,
    )


def _source(raw: Any, where: str, root: Path) -> SourceSpec:
    if isinstance(raw, str):  # shorthand: "pkg.module:fn" or "file.pt2"
        raw = {"exported_program": raw} if raw.endswith(".pt2") else {"factory": raw}
    doc = _mapping(raw, where, allowed=("factory", "exported_program"))
    if ("factory" in doc) == ("exported_program" in doc):
        raise SpecError(f"{where}: give exactly one of factory, exported_program")
    if "factory" in doc:
        factory = _str(doc["factory"], f"{where}.factory")
        if not _FACTORY_RE.fullmatch(factory):
            raise SpecError(f"{where}.factory: must be 'module:callable', got {factory!r}")
        _check_factory_module(factory, f"{where}.factory", root)
        return SourceSpec(factory=factory)
    rel = _str(doc["exported_program"], f"{where}.exported_program")
    path = _resolve(root, rel, f"{where}.exported_program")
    if not path.is_file():
        raise SpecError(f"{where}.exported_program: no such file {rel!r} (looked in {root})")
    if path.suffix != ".pt2":
        raise SpecError(f"{where}.exported_program: must be a torch.export .pt2 file, got {rel!r}")
    return SourceSpec(exported_program=path)


def _input(raw: Any, where: str) -> TensorSpec:
    doc = _mapping(raw, where, allowed=("name", "dtype", "shape", "min", "opt", "max"), required=("name", "shape"))
    name = _name(doc["name"], f"{where}.name")
    dtype = _choice(doc.get("dtype", "fp32"), f"{where}.dtype", DTYPES)
    shape = _shape(doc["shape"], f"{where}.shape", allow_dynamic=True)
    dynamic = any(d == -1 for d in shape)
    profile: dict[str, tuple[int, ...]] = {}
    for key in ("min", "opt", "max"):
        if key in doc:
            value = _shape(doc[key], f"{where}.{key}", allow_dynamic=False)
            _check_rank(value, shape, f"{where}.{key}")
            _check_static_dims_agree(value, shape, f"{where}.{key}")
            profile[key] = value
        elif dynamic:
            raise SpecError(f"{where}.{key}: required because shape {list(shape)} has dynamic dims (-1)")
        else:
            profile[key] = shape
    _check_profile_order(profile["min"], profile["opt"], profile["max"], where)
    _check_sample_size(profile["max"], dtype, f"{where}.{'max' if dynamic else 'shape'}")
    return TensorSpec(name=name, dtype=dtype, shape=shape, min=profile["min"], opt=profile["opt"], max=profile["max"])


def _output(raw: Any, where: str) -> OutputSpec:
    if isinstance(raw, str):
        raw = {"name": raw}
    doc = _mapping(raw, where, allowed=("name", "atol", "rtol", "metric"), required=("name",))
    return OutputSpec(
        name=_name(doc["name"], f"{where}.name"),
        atol=_tolerance(doc["atol"], f"{where}.atol") if "atol" in doc else None,
        rtol=_tolerance(doc["rtol"], f"{where}.rtol") if "rtol" in doc else None,
        metric=_metric(doc["metric"], f"{where}.metric") if "metric" in doc else None,
    )


def _ops(raw: Any, where: str) -> dict[str, str]:
    doc = _mapping(raw, where)
    ops: dict[str, str] = {}
    for key, value in doc.items():
        op = str(key)
        if not _OP_RE.fullmatch(op):
            raise SpecError(f"{where}.{shown(op)}: op names are 'namespace::name' (e.g. trtrepo::bias_gelu)")
        ops[op] = _choice(value, f"{where}.{op}", LOWERINGS)
    return ops


def _triton(raw: Any, where: str) -> TritonSpec:
    doc = _mapping(raw, where, allowed=("max_batch_size", "dynamic_batching", "instance_group", "version_policy",
                                        "warmup"))
    max_batch = _int(doc.get("max_batch_size", 0), f"{where}.max_batch_size", minimum=0, maximum=INT32_MAX)
    batching = _dynamic_batching(doc.get("dynamic_batching", False), f"{where}.dynamic_batching")
    if batching is not None and max_batch == 0:
        raise SpecError(f"{where}.dynamic_batching: needs max_batch_size > 0 (Triton batches along dim 0)")
    if batching is not None:
        for i, size in enumerate(batching.preferred_batch_size):
            if size > max_batch:
                raise SpecError(
                    f"{where}.dynamic_batching.preferred_batch_size[{i}]: {size} is above max_batch_size {max_batch}"
                )
    groups_raw = doc.get("instance_group", [{}])
    groups = tuple(
        _instance_group(g, f"{where}.instance_group[{i}]")
        for i, g in enumerate(_list(groups_raw, f"{where}.instance_group", 1))
    )
    policy = _version_policy(doc.get("version_policy", {"latest": 1}), f"{where}.version_policy")
    warmup = _warmup(doc.get("warmup", True), f"{where}.warmup")
    return TritonSpec(max_batch, batching, groups, policy, warmup)


def _dynamic_batching(raw: Any, where: str) -> DynamicBatching | None:
    if raw is False or raw is None:
        return None
    if raw is True:
        return DynamicBatching()
    doc = _mapping(raw, where, allowed=("preferred_batch_size", "max_queue_delay_microseconds"))
    preferred = tuple(
        _int(v, f"{where}.preferred_batch_size[{i}]", minimum=1, maximum=INT32_MAX)
        for i, v in enumerate(_list(doc.get("preferred_batch_size", []), f"{where}.preferred_batch_size"))
    )
    delay = _int(doc.get("max_queue_delay_microseconds", DEFAULT_QUEUE_DELAY_US),
                 f"{where}.max_queue_delay_microseconds", minimum=0, maximum=INT64_MAX)
    return DynamicBatching(preferred, delay)


def _instance_group(raw: Any, where: str) -> InstanceGroup:
    doc = _mapping(raw, where, allowed=("kind", "count", "gpus"))
    kind = _choice(doc.get("kind", "auto"), f"{where}.kind", INSTANCE_KINDS)
    count = _int(doc.get("count", 1), f"{where}.count", minimum=1, maximum=INT32_MAX)
    gpus = tuple(_int(g, f"{where}.gpus[{i}]", minimum=0, maximum=INT32_MAX)
                 for i, g in enumerate(_list(doc.get("gpus", []), f"{where}.gpus")))
    if gpus and kind == "cpu":
        raise SpecError(f"{where}.gpus: only for kind gpu or auto, not cpu")
    return InstanceGroup(kind, count, gpus)


def _version_policy(raw: Any, where: str) -> VersionPolicy:
    if raw == "all":
        return VersionPolicy(kind="all")
    doc = _mapping(raw, where, allowed=("latest", "all", "specific"))
    if len(doc) != 1:
        raise SpecError(f"{where}: give exactly one of latest, all, specific")
    (kind, value), = doc.items()
    if kind == "latest":
        return VersionPolicy(kind="latest", latest=_int(value, f"{where}.latest", minimum=1, maximum=INT32_MAX))
    if kind == "all":
        if value is not True:
            raise SpecError(f"{where}.all: must be true")
        return VersionPolicy(kind="all")
    versions = tuple(_int(v, f"{where}.specific[{i}]", minimum=1, maximum=INT64_MAX)
                     for i, v in enumerate(_list(value, f"{where}.specific", 1)))
    return VersionPolicy(kind="specific", versions=versions)


def _warmup(raw: Any, where: str) -> Warmup:
    if isinstance(raw, bool):
        return Warmup(enabled=raw)
    doc = _mapping(raw, where, allowed=("data", "count"))
    return Warmup(
        enabled=True,
        data=_choice(doc.get("data", "sample"), f"{where}.data", WARMUP_DATA),
        count=_int(doc.get("count", DEFAULT_WARMUP_COUNT), f"{where}.count", minimum=1, maximum=INT32_MAX),
    )


def _parity(raw: Any, where: str) -> ParitySpec:
    doc = _mapping(raw, where, allowed=("atol", "rtol", "samples", "seed", "ragged_requests", "metric"))
    return ParitySpec(
        atol=_tolerance(doc["atol"], f"{where}.atol") if "atol" in doc else None,
        rtol=_tolerance(doc["rtol"], f"{where}.rtol") if "rtol" in doc else None,
        samples=_int(doc.get("samples", DEFAULT_PARITY_SAMPLES), f"{where}.samples", minimum=0, maximum=INT32_MAX),
        seed=_int(doc.get("seed", DEFAULT_PARITY_SEED), f"{where}.seed", minimum=0, maximum=INT64_MAX),
        ragged_requests=_int(doc.get("ragged_requests", DEFAULT_RAGGED_REQUESTS), f"{where}.ragged_requests",
                             minimum=0, maximum=INT32_MAX),
        metric=_metric(doc["metric"], f"{where}.metric") if "metric" in doc else None,
    )


def _torch_options(raw: Any, where: str) -> TorchOptions:
    doc = _mapping(raw, where, allowed=("program",))
    return TorchOptions(program=_choice(doc.get("program", DEFAULT_TORCH_PROGRAM), f"{where}.program",
                                        TORCH_PROGRAMS))


def _metric(raw: Any, where: str) -> Metric:
    """``elementwise``, or a one-key mapping ``{criterion: bound}`` (``{cosine: 0.999}``)."""
    if raw == "elementwise":
        return Metric()
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise SpecError(f"{where}: must be elementwise or one criterion with its bound (e.g. {{cosine: 0.999}}), got "
                        f"{_kind(raw)}", hint=f"criteria: {', '.join(METRICS)}")
    ((key, value),) = raw.items()
    criterion = _choice(str(key), where, METRICS)
    if criterion == "elementwise":
        raise SpecError(f"{where}.elementwise: takes no bound (write metric: elementwise; atol/rtol are its "
                        "tolerances)")
    bound = _tolerance(value, f"{where}.{criterion}")
    if criterion in ("cosine", "fraction_outside") and bound > 1:
        raise SpecError(f"{where}.{criterion}: must be from 0 to 1, got {bound:g}")
    return Metric(criterion=criterion, threshold=bound)


# ------------------------------------------------------------------------------------------ cross-field checks
def _check_unique(names: Sequence[str], where: str, key: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise SpecError(f"{where}[{i}].{key}: duplicate {key} {name!r} (also {where}[{seen[name]}])")
        seen[name] = i


def _check_io_names_disjoint(inputs: Sequence[TensorSpec], outputs: Sequence[OutputSpec], where: str) -> None:
    input_names = {t.name for t in inputs}
    for i, out in enumerate(outputs):
        if out.name in input_names:
            raise SpecError(f"{where}.outputs[{i}].name: {out.name!r} is already an input name")


def _check_rank(value: tuple[int, ...], shape: tuple[int, ...], where: str) -> None:
    if len(value) != len(shape):
        raise SpecError(f"{where}: rank {len(value)} does not match shape rank {len(shape)} {list(shape)}")


def _check_static_dims_agree(value: tuple[int, ...], shape: tuple[int, ...], where: str) -> None:
    for axis, (v, s) in enumerate(zip(value, shape, strict=True)):
        if s != -1 and v != s:
            raise SpecError(f"{where}: dim {axis} is {v} but shape fixes it to {s} {list(shape)}")


def _check_profile_order(lo: tuple[int, ...], opt: tuple[int, ...], hi: tuple[int, ...], where: str) -> None:
    if any(a > b for a, b in zip(lo, opt, strict=True)):
        raise SpecError(f"{where}.opt: must be >= min {list(lo)}")
    if any(a > b for a, b in zip(opt, hi, strict=True)):
        raise SpecError(f"{where}.max: must be >= opt {list(opt)}")


def _check_sample_size(shape: tuple[int, ...], dtype: str, where: str) -> None:
    """One sample at the max shape must fit in memory (warm-up data, parity samples and benchmarks make them)."""
    size = dtypes.get(dtype).itemsize
    for dim in shape:
        size *= dim
    if size > MAX_SAMPLE_BYTES:
        raise SpecError(f"{where}: one sample at {list(shape)} is {_bytes(size)} of {dtype}; the limit is "
                        f"{_bytes(MAX_SAMPLE_BYTES)} per input",
                        hint="a dim that large is a typo, or belongs to a dynamic dim (-1) with a smaller max")


def _bytes(size: int) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def _check_batching(inputs: Sequence[TensorSpec], triton: TritonSpec, where: str) -> None:
    """Triton batching needs a dynamic dim 0 on every input whose profile reaches max_batch_size."""
    if triton.max_batch_size == 0:
        return
    for i, tensor in enumerate(inputs):
        if not tensor.shape or tensor.shape[0] != -1:
            raise SpecError(
                f"{where}.inputs[{i}].shape: max_batch_size {triton.max_batch_size} needs dim 0 dynamic (-1) on "
                f"every input, got {list(tensor.shape)}",
                hint="set triton.max_batch_size: 0 to serve without batching",
            )
        if tensor.max[0] < triton.max_batch_size:
            raise SpecError(
                f"{where}.inputs[{i}].max: dim 0 is {tensor.max[0]}, below triton.max_batch_size "
                f"{triton.max_batch_size}"
            )


def _check_repository_location(repository: Path, root: Path, sources: Sequence[Path]) -> None:
    """The repository is replaced wholesale on every build: it must not contain the inputs of the build."""
    for protected in (root, *sources, settings.cache_dir()):
        if repository == protected or repository in protected.parents:
            raise SpecError(f"repository: {repository} would contain {protected}; the build replaces that folder")


def check_repository_folder(path: Path, where: str) -> None:
    """Refuse a well-known folder as the repository: the filesystem root, a system folder, home and its folders.

    Args:
        path: The repository folder, absolute and resolved.
        where: How the message names it (``repository`` or ``--out``).

    Raises:
        SpecError: ``path`` is such a folder (names it and what it is).
    """
    reason = well_known_folder(path)
    if reason is None:
        return
    example = "--out ./model_repository" if where == "--out" else "repository: model_repository"
    raise SpecError(f"{where}: {path} is {reason}; a build replaces the repository folder with what it writes",
                    hint=f"give the repository a folder of its own, e.g. {example}")


def well_known_folder(path: Path) -> str | None:
    """What makes ``path`` a folder no repository may replace ("your home folder", ...), or None."""
    if path == Path(path.anchor):
        return "the filesystem root"
    if str(path) in SYSTEM_FOLDERS:
        return "a system folder"
    home = Path.home().resolve()
    if path == home:
        return "your home folder"
    if path.parent == home and path.name in HOME_FOLDERS:
        return "a well-known folder of your home"
    if os.path.ismount(path):
        return "the root of a filesystem (a mount point)"
    return None


def _check_factory_module(factory: str, where: str, root: Path) -> None:
    """The factory's module must be importable from the model.yaml folder or the environment."""
    module = factory.split(":", 1)[0]
    candidate = root.joinpath(*module.split("."))
    if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
        return
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise SpecError(f"{where}: module {module!r} not found (looked in {root} and on sys.path)")


# --------------------------------------------------------------------------------------------- field parsers
def _mapping(raw: Any, where: str, allowed: Sequence[str] | None = None,
             required: Sequence[str] = ()) -> dict[str, Any]:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where}: must be a mapping, got {_kind(raw)}")
    doc = {str(k): v for k, v in raw.items()}
    if allowed is not None:
        for key in doc:
            if key not in allowed:
                raise SpecError(f"{_join(where, key)}: unknown key{_did_you_mean(key, allowed)}",
                                hint=f"allowed keys: {', '.join(allowed)}")
    for key in required:
        if key not in doc:
            raise SpecError(f"{_join(where, key)}: required key is missing")
    return doc


def _list(raw: Any, where: str, min_len: int = 0) -> list[Any]:
    if not isinstance(raw, list):
        raise SpecError(f"{where}: must be a list, got {_kind(raw)}")
    if len(raw) < min_len:
        raise SpecError(f"{where}: must have at least {min_len} item{'s' if min_len > 1 else ''}")
    return raw


def _str(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise SpecError(f"{where}: must be a non-empty string, got {_kind(raw)}")
    return raw


def _int(raw: Any, where: str, minimum: int, maximum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise SpecError(f"{where}: must be an integer, got {_kind(raw)}")
    if not minimum <= raw <= maximum:
        raise SpecError(f"{where}: must be an integer from {minimum} to {maximum}, got {raw}")
    return raw


def _tolerance(raw: Any, where: str) -> float:
    if isinstance(raw, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
        try:
            raw = float(raw)
        except ValueError:
            raise SpecError(f"{where}: must be a number, got {raw!r}") from None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise SpecError(f"{where}: must be a number, got {_kind(raw)}")
    if raw < 0:
        raise SpecError(f"{where}: must be >= 0, got {raw}")
    return float(raw)


def _choice(raw: Any, where: str, allowed: Sequence[str]) -> str:
    if not isinstance(raw, str) or raw not in allowed:
        shown = repr(raw) if isinstance(raw, str) else _kind(raw)
        suggestion = _did_you_mean(raw, allowed) if isinstance(raw, str) else ""
        raise SpecError(f"{where}: must be one of {', '.join(allowed)}, got {shown}{suggestion}")
    return raw


def _name(raw: Any, where: str) -> str:
    name = _str(raw, where)
    if not _NAME_RE.fullmatch(name):
        raise SpecError(
            f"{where}: {name!r} is not a valid name (letters, digits, '_' and '-', starting with a letter or '_'; "
            "it becomes a folder in the repository)"
        )
    return name


def _shape(raw: Any, where: str, allow_dynamic: bool) -> tuple[int, ...]:
    dims = _list(raw, where)
    out = []
    for i, d in enumerate(dims):
        if isinstance(d, bool) or not isinstance(d, int):
            raise SpecError(f"{where}[{i}]: dims must be integers, got {_kind(d)}")
        if d == -1 and allow_dynamic:
            out.append(d)
            continue
        if not 1 <= d <= INT32_MAX:
            allowed = f"from 1 to {INT32_MAX}"
            raise SpecError(f"{where}[{i}]: must be -1 (dynamic) or an integer {allowed}, got {d}" if allow_dynamic
                            else f"{where}[{i}]: must be an integer {allowed}, got {d}")
        out.append(d)
    return tuple(out)


def _existing_dir(root: Path, rel: str, where: str) -> Path:
    path = _resolve(root, rel, where)
    if not path.is_dir():
        raise SpecError(f"{where}: no such folder {rel!r} (looked in {root})")
    return path


def _resolve(root: Path, rel: str, where: str) -> Path:
    return resolve_path(rel, where, base=root)


def _join(where: str, key: str) -> str:
    return key if where == "<root>" else f"{where}.{key}"


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (dict, list)) else type(value).__name__


_TARGET_ALIASES = {"trt": "tensorrt", "pytorch": "torch"}


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    if _TARGET_ALIASES.get(word) in choices:
        return f" (did you mean {_TARGET_ALIASES[word]!r}?)"
    return dtypes.did_you_mean(word, list(choices))
