"""The TensorRT target end to end: both examples x (decompose, plugin, aot) built into a repository, the plan read
back and run across the profile against eager PyTorch, plugin shipping / AOT independence, creator clash checks, and
(where a tritonserver with the TensorRT backend exists) served == eager over HTTP and gRPC.

Marked ``tensorrt``; skips unless TensorRT, Torch-TensorRT and a CUDA GPU are all present (the NGC PyTorch image).

Every build runs in a subprocess of its own: Torch-TensorRT's converter registry and TensorRT's plugin registry are
process-global, so a ``plugin`` build and an ``aot`` build of the same op in one process would share converters.
Every plan runs in a fresh subprocess too, which loads exactly the libraries the repository lists for it (what
tritonserver's TensorRT backend does) and nothing else; the test process only compares numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from trtrepo import deps

REPO = Path(__file__).resolve().parents[2]
PLUGIN_SRC = REPO / "plugin_src"
EXAMPLES = REPO / "examples"
OPS = ("trtrepo::bias_gelu", "trtrepo::fused_add_rms_norm")
EXAMPLE_NAMES = ("gelu_block", "seq_block")
LOWERINGS = ("decompose", "plugin", "aot")
PLUGIN_LIBRARY = "libtrtrepo_trt_plugins.so"
BUILD_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 600

NGC_COMMAND = (f"docker run --gpus all -it -v $PWD:/w -w /w {deps.NGC_PYTORCH_IMAGE} bash -c "
               "\"pip install -e . pytest && python -m pytest -m 'tensorrt or gpu'\"")


def _missing() -> list[str]:
    missing = []
    if not deps.has_cuda_torch():
        missing.append("CUDA torch with a visible GPU")
    if not deps.has_tensorrt():
        missing.append("TensorRT (tensorrt does not import or is a stub)")
    if not deps.has_torch_tensorrt():
        missing.append("Torch-TensorRT (torch_tensorrt does not import)")
    if deps.find_nvcc() is None:
        missing.append("nvcc (the op build compiles PTX and the plugin library)")
    return missing


MISSING = _missing()

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(bool(MISSING), reason=f"needs TensorRT + Torch-TensorRT + a CUDA GPU; missing here: "
                       f"{'; '.join(MISSING)}. Run in the NGC PyTorch image: {NGC_COMMAND}"),
]


# ------------------------------------------------------------------------------------------ subprocess drivers
# Builds the repository (trtrepo.build.build) and computes the eager references on the given cases, on the GPU.
BUILD_DRIVER = textwrap.dedent("""\
    import json, sys
    import numpy as np
    import torch
    from trtrepo.build import build
    from trtrepo.check.inputs import to_numpy, to_torch
    from trtrepo.export import load_module
    from trtrepo.spec import load_spec

    spec_path, cases_path, refs_path = sys.argv[1:4]
    result = build(spec_path, progress=print)
    spec = load_spec(spec_path)
    model = spec.models[0]
    net = load_module(model, spec.root, "cuda")
    cases = np.load(cases_path)
    names = sorted({k.split("__")[0] for k in cases.files})
    refs = {}
    for case in names:
        args = [to_torch(cases[f"{case}__{t.name}"], t.dtype, "cuda") for t in model.inputs]
        with torch.inference_mode():
            out = net(*args)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for spec_out, tensor in zip(model.outputs, outs, strict=True):
            refs[f"{case}__{spec_out.name}"] = to_numpy(tensor)
    np.savez(refs_path, **refs)
    print("BUILD_RESULT " + json.dumps({"targets": result.targets, "repository": str(result.repository)}))
""")

# Runs the plan on every case through trtrepo's own PlanRunner (the runner trtrepo bench engines uses: the listed
# libraries dlopen'ed after libnvinfer, as tritonserver's TensorRT backend does), reads the plan's I/O back with
# trtrepo.tensorrt.engine_io.read_engine_tensors and reports which trtrepo libraries got mapped.
RUN_DRIVER = textwrap.dedent("""\
    import dataclasses, json, sys
    import numpy as np
    plan_path, cases_path, out_path, report_path, *libs = sys.argv[1:]
    from trtrepo.runners.plan import PlanRunner
    from trtrepo.tensorrt.engine_io import read_engine_tensors
    import tensorrt as trt

    plan = open(plan_path, "rb").read()
    tensors = read_engine_tensors(plan)
    cases = np.load(cases_path)
    names = sorted({k.split("__")[0] for k in cases.files})
    outputs = {}
    with PlanRunner(plan, name="e2e", plugin_libraries=libs) as runner:
        for case in names:
            got = runner.infer({t.name: cases[f"{case}__{t.name}"] for t in tensors if t.is_input})
            for name, y in got.items():
                outputs[f"{case}__{name}"] = np.asarray(y)  # numpy in, numpy out
    np.savez(out_path, **outputs)
    mapped = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if path.rsplit("/", 1)[-1].startswith("libtrtrepo"):
                mapped.add(path)
    json.dump({"tensors": [dataclasses.asdict(t) for t in tensors], "trtrepo_libraries_mapped": sorted(mapped),
               "tensorrt": trt.__version__}, open(report_path, "w"))
""")

# What dlopen-ing the real plugin library registers in TensorRT's registry (fresh process, nothing else loaded).
CREATORS_DRIVER = textwrap.dedent("""\
    import ctypes, json, sys
    import tensorrt as trt
    registry = trt.get_plugin_registry()
    def current():
        return {(str(c.name), str(c.plugin_version), str(c.plugin_namespace)) for c in registry.all_creators}
    before = current()
    ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL)
    added = sorted(current() - before)
    print("CREATORS " + json.dumps([{"name": n, "version": v, "namespace": ns} for n, v, ns in added]))
""")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _run(args: list[str], timeout: int, what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=_env(),
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


# ------------------------------------------------------------------------------------------------- builds
@dataclass
class Built:
    """One example built with one lowering for every custom op, plus its eager references."""

    example: str
    lowering: str
    root: Path
    spec_path: Path
    repository: Path
    model: Any  # trtrepo.spec.ModelSpec
    manifest: dict[str, Any]
    cases: Path
    refs: Path
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.repository / self.model.name

    @property
    def entry(self) -> dict[str, Any]:
        return dict(self.manifest["models"][self.model.name])

    @property
    def plan(self) -> Path:
        return self.model_dir / str(self.model.version) / "model.plan"

    def libraries(self) -> list[str]:
        """The plan's plugin libraries as the repository lists them, absolute."""
        return [str((self.model_dir / rel).resolve()) for rel in self.entry["plugin_libraries"]]

    def run_plan(self, libraries: list[str] | None = None) -> dict[str, Any]:
        """Run the plan on every case in a fresh process loading only ``libraries`` (default: the repository's)."""
        libs = self.libraries() if libraries is None else libraries
        key = ";".join(libs)
        if key not in self.runs:
            tag = f"run{len(self.runs)}"
            out, report = self.root / f"{tag}.npz", self.root / f"{tag}.json"
            driver = self.root / "run_driver.py"
            driver.write_text(RUN_DRIVER)
            _run([str(driver), str(self.plan), str(self.cases), str(out), str(report), *libs], RUN_TIMEOUT_S,
                 f"running {self.plan} ({self.lowering}) with libraries {libs}")
            import numpy as np

            data = np.load(out)
            self.runs[key] = {"report": json.loads(report.read_text()), "outputs": {k: data[k] for k in data.files}}
        return self.runs[key]


def _write_spec(example: str, lowering: str, root: Path) -> Path:
    """examples/<example>/model.yaml with target tensorrt, every custom op lowered as ``lowering``, into ``root``."""
    import yaml

    raw = yaml.safe_load((EXAMPLES / example / "model.yaml").read_text())
    raw["repository"] = str(root / "repo")
    raw["plugin_sources"] = [str(PLUGIN_SRC)]
    model = raw["models"][0]
    model["target"] = "tensorrt"
    model["ops"] = {op: lowering for op in OPS}
    shutil.copy2(EXAMPLES / example / "model.py", root / "model.py")  # the factory "model:build" beside model.yaml
    path = root / "model.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Builds:
    """Builds on first use, one per (example, lowering), shared by every test of the module."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.done: dict[tuple[str, str], Built] = {}

    def get(self, example: str, lowering: str) -> Built:
        key = (example, lowering)
        if key not in self.done:
            import numpy as np

            from trtrepo.check.inputs import profile_cases
            from trtrepo.spec import load_spec

            root = self.factory.mktemp(f"e2e_{example}_{lowering}")
            spec_path = _write_spec(example, lowering, root)
            model = load_spec(spec_path).models[0]
            cases = root / "cases.npz"
            np.savez(cases, **{f"{c.name}__{k}": v for c in profile_cases(model) for k, v in c.arrays.items()})
            refs = root / "refs.npz"
            driver = root / "build_driver.py"
            driver.write_text(BUILD_DRIVER)
            proc = _run([str(driver), str(spec_path), str(cases), str(refs)], BUILD_TIMEOUT_S,
                        f"trtrepo build of {example} with every op lowered as {lowering}")
            line = next(x for x in proc.stdout.splitlines() if x.startswith("BUILD_RESULT "))
            result = json.loads(line.removeprefix("BUILD_RESULT "))
            assert result["targets"] == {model.name: "tensorrt"}
            repository = Path(result["repository"])
            manifest = json.loads((repository / "trtrepo-manifest.json").read_text())
            self.done[key] = Built(example, lowering, root, spec_path, repository, model, manifest, cases, refs)
        return self.done[key]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    return Builds(tmp_path_factory)


CASES = [(e, lo) for e in EXAMPLE_NAMES for lo in LOWERINGS]
IDS = [f"{e}-{lo}" for e, lo in CASES]


# -------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize(("example", "lowering"), CASES, ids=IDS)
def test_repository_records_the_lowering(builds: Builds, example: str, lowering: str) -> None:
    built = builds.get(example, lowering)
    entry = built.entry
    assert entry["target"] == "tensorrt" and entry["platform"] == "tensorrt_plan"
    assert entry["lowerings"] == {op: lowering for op in OPS}
    assert built.plan.is_file() and built.plan.stat().st_size > 0


@pytest.mark.parametrize(("example", "lowering"), CASES, ids=IDS)
def test_config_names_and_dtypes_equal_the_engine(builds: Builds, example: str, lowering: str) -> None:
    """config.pbtxt must name and type every tensor as the ENGINE does (read back from the plan)."""
    from tritonclient.grpc import model_config_pb2

    from trtrepo.dtypes import from_tensorrt as dtype_from_trt
    from trtrepo.repository.config import parse_text, triton_dtype
    from trtrepo.tensorrt.engine_io import EngineTensor, order_outputs

    built = builds.get(example, lowering)
    tensors = [EngineTensor(t["name"], t["is_input"], t["dtype"], tuple(t["shape"]))
               for t in built.run_plan()["report"]["tensors"]]
    config = parse_text((built.model_dir / "config.pbtxt").read_text())
    batching = config.max_batch_size > 0

    def dims(t: EngineTensor) -> list[int]:
        return list(t.shape[1:] if batching else t.shape)

    engine_inputs = {t.name: t for t in tensors if t.is_input}
    assert sorted(i.name for i in config.input) == sorted(engine_inputs)
    for item in config.input:
        t = engine_inputs[item.name]
        assert model_config_pb2.DataType.Name(item.data_type) == triton_dtype(dtype_from_trt(t.dtype)), item.name
        assert list(item.dims) == dims(t), item.name
    engine_outputs = order_outputs([t for t in tensors if not t.is_input])
    assert [o.name for o in config.output] == [t.name for t in engine_outputs]
    for item, t in zip(config.output, engine_outputs, strict=True):
        assert model_config_pb2.DataType.Name(item.data_type) == triton_dtype(dtype_from_trt(t.dtype)), item.name
        assert list(item.dims) == dims(t), item.name
    mapping = built.entry["output_names"]
    assert [mapping[o.name] for o in built.model.outputs] == [t.name for t in engine_outputs]
    precision = built.model.precision
    assert {dtype_from_trt(t.dtype) for t in tensors} == {precision}


@pytest.mark.parametrize(("example", "lowering"), CASES, ids=IDS)
def test_plan_matches_eager_across_the_profile(builds: Builds, example: str, lowering: str) -> None:
    """min, opt, max and the random profile cases; the product's default tolerance for the model's precision."""
    import numpy as np

    from trtrepo.check.compare import compare
    from trtrepo.check.tolerances import output_tolerance

    built = builds.get(example, lowering)
    got = built.run_plan()["outputs"]
    refs = np.load(built.refs)
    mapping = built.entry["output_names"]
    cases = sorted({k.split("__")[0] for k in refs.files})
    assert {"min", "opt", "max"} <= set(cases)
    failures = []
    for case in cases:
        for out in built.model.outputs:
            atol, rtol = output_tolerance(built.model, out.name)
            result = compare(out.name, got[f"{case}__{mapping[out.name]}"], refs[f"{case}__{out.name}"], atol, rtol)
            if not result.passed:
                failures.append(f"{case} {out.name}: {result.message}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_plugin_repository_ships_the_library_and_launch_lists_it(builds: Builds, example: str,
                                                                 tmp_path: Path) -> None:
    built = builds.get(example, "plugin")
    rel = f"plugins/{PLUGIN_LIBRARY}"
    assert built.entry["plugin_libraries"] == [rel]
    assert (built.model_dir / rel).is_file()
    creators = built.entry["required_creators"]
    assert sorted(c["name"] for c in creators) == ["TrtrepoBiasGelu", "TrtrepoFusedAddRmsNorm"]
    launch = built.repository / "launch.sh"
    text = launch.read_text()
    assert f'"$HERE"/{built.model.name}/{rel}' in text and "--backend-config=tensorrt,plugins=" in text
    # launch.sh as a server would see it: TRITONSERVER replaced by a program that prints its arguments
    echo = tmp_path / "echo_args"
    echo.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    echo.chmod(0o755)
    proc = subprocess.run(["bash", str(launch)], capture_output=True, text=True, timeout=30, check=True,
                          env={**os.environ, "TRITONSERVER": str(echo)})
    args = proc.stdout.splitlines()
    assert f"--model-repository={built.repository}" in args
    assert f"--backend-config=tensorrt,plugins={(built.model_dir / rel).resolve()}" in args


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_plugin_plan_needs_its_library(builds: Builds, example: str) -> None:
    """Loaded with its library the plan runs (above); the run maps exactly that library and no other."""
    built = builds.get(example, "plugin")
    mapped = built.run_plan()["report"]["trtrepo_libraries_mapped"]
    assert [Path(p).name for p in mapped] == [PLUGIN_LIBRARY]


@pytest.mark.parametrize(("example", "lowering"), [(e, lo) for e in EXAMPLE_NAMES for lo in ("aot", "decompose")],
                         ids=[f"{e}-{lo}" for e in EXAMPLE_NAMES for lo in ("aot", "decompose")])
def test_aot_and_decompose_plans_run_without_any_library(builds: Builds, example: str, lowering: str) -> None:
    """No .so in the repository, no launch.sh, and the plan runs in a fresh process that loads no trtrepo library
    (no TensorRT plugin library, no torch op library) and still matches eager."""
    import numpy as np

    from trtrepo.check.compare import compare
    from trtrepo.check.tolerances import output_tolerance

    built = builds.get(example, lowering)
    assert built.entry["plugin_libraries"] == [] and built.libraries() == []
    assert built.entry["required_creators"] == [] and built.entry["library_creators"] == {}
    assert not (built.model_dir / "plugins").exists()
    assert not (built.repository / "launch.sh").exists()
    run = built.run_plan(libraries=[])
    assert run["report"]["trtrepo_libraries_mapped"] == []
    refs = np.load(built.refs)
    mapping = built.entry["output_names"]
    for out in built.model.outputs:
        atol, rtol = output_tolerance(built.model, out.name)
        result = compare(out.name, run["outputs"][f"opt__{mapping[out.name]}"], refs[f"opt__{out.name}"], atol, rtol)
        assert result.passed, result.message


def test_real_plugin_library_registers_the_recorded_creators(builds: Builds) -> None:
    """The creators the manifest says the library provides are what dlopen-ing the real library registers."""
    built = builds.get("gelu_block", "plugin")
    library = built.libraries()[0]
    driver = built.root / "creators_driver.py"
    driver.write_text(CREATORS_DRIVER)
    proc = _run([str(driver), library], RUN_TIMEOUT_S, f"listing the creators of {library}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("CREATORS "))
    registered = json.loads(line.removeprefix("CREATORS "))
    recorded = built.entry["library_creators"][PLUGIN_LIBRARY]
    key = lambda c: (c["namespace"], c["name"], c["version"])  # noqa: E731
    assert sorted(registered, key=key) == sorted(recorded, key=key)
    assert {c["namespace"] for c in registered} == {"trtrepo"}


def test_creator_clash_between_two_copies_of_the_real_library(builds: Builds, tmp_path: Path) -> None:
    """Two model folders with the real library: same bytes load once; different bytes (a copy with one byte
    appended: not loadable, but the check never dlopens) registering the same creators are refused."""
    from trtrepo.contracts import Creator
    from trtrepo.errors import ServeError
    from trtrepo.repository.plugins import find_plugin_problems
    from trtrepo.serve import repository_plugin_libraries

    built = builds.get("gelu_block", "plugin")
    repo = tmp_path / "repo"
    shutil.copytree(built.repository, repo, symlinks=True)
    name, twin = built.model.name, f"{built.model.name}_twin"
    shutil.copytree(repo / name, repo / twin, symlinks=True)
    config = repo / twin / "config.pbtxt"
    config.write_text(config.read_text().replace(f'name: "{name}"', f'name: "{twin}"', 1))
    manifest = json.loads((repo / "trtrepo-manifest.json").read_text())
    manifest["models"][twin] = manifest["models"][name]
    (repo / "trtrepo-manifest.json").write_text(json.dumps(manifest))

    first = (repo / name / "plugins" / PLUGIN_LIBRARY).resolve()
    assert repository_plugin_libraries(repo) == [first]  # identical copies: one library
    with open(repo / twin / "plugins" / PLUGIN_LIBRARY, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ServeError, match="registered by 2 different libraries"):
        repository_plugin_libraries(repo)

    # the same verdict from the data-level function, on the real library's recorded creators
    creators = [Creator.from_dict(c) for c in built.entry["library_creators"][PLUGIN_LIBRARY]]
    a, b = str(first), str((repo / twin / "plugins" / PLUGIN_LIBRARY).resolve())
    problems = find_plugin_problems({name: creators}, {a: creators, b: creators}, {a: "sha-a", b: "sha-b"})
    assert len(problems) == len(creators) and all("2 different libraries" in p.message for p in problems)
    assert find_plugin_problems({name: creators}, {a: creators, b: creators}, {a: "sha-a", b: "sha-a"}) == []


# ------------------------------------------------------------------------------------------------ serving
def _tensorrt_server_missing() -> str | None:
    """Why no tritonserver with the TensorRT backend can serve here (None when one can)."""
    from trtrepo.errors import ServeError
    from trtrepo.serve import find_tritonserver

    try:
        install = find_tritonserver()
    except ServeError as exc:
        return f"no tritonserver: {exc}"
    if install.backends is None or not (install.backends / "tensorrt").is_dir():
        return (f"{install.binary} has no TensorRT backend ({install.backends or '<no backends folder>'}/tensorrt "
                f"missing); serve from the NGC image {deps.NGC_TRITON_IMAGE} (same release as the build image)")
    if not deps.is_installed("tritonclient"):
        return "tritonclient is not installed"
    return None


@pytest.mark.parametrize(("example", "lowering"), CASES, ids=IDS)
def test_served_repository_passes_check_over_http_and_grpc(builds: Builds, example: str, lowering: str) -> None:
    """The plan's TensorRT must equal the server's (build in the NGC PyTorch image of the server's release)."""
    reason = _tensorrt_server_missing()
    if reason:
        pytest.skip(reason)
    from trtrepo.check import run_check
    from trtrepo.serve import TritonServer

    built = builds.get(example, lowering)
    with TritonServer(built.repository, log_path=built.root / f"tritonserver-{lowering}.log") as server:
        report = run_check(built.spec_path, url_http=server.http_url, url_grpc=server.grpc_url,
                           repository=built.repository, report_path=built.root / "parity-report.json")
    assert {c.protocol for c in report.cases} == {"http", "grpc"}
    failed = [f"{c.protocol} {c.case}: {c.error or [o.message for o in c.outputs if not o.passed]}"
              for c in report.failures()]
    assert report.passed, "\n".join(failed)
