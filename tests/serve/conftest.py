"""Session fixtures for the serving tests: one op build, one torch-target build of the gelu example, shared.

The op library is built once per session into TRTREPO_CACHE_DIR (reused when the ops tests already set it), the
repository once per session; each test module that needs a live server starts one (module scope).
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def serve_cache(session_cache: Path) -> Path:
    """The session's build cache (tests/conftest.py)."""
    return session_cache


GELU_SPEC = """\
repository: repo
plugin_sources: [{plugin_src}]
models:
  - name: gelu_block
    source: examples.gelu_block.model:build
    target: torch
    inputs:
      - {{name: x, shape: [-1, 64], min: [1, 64], opt: [8, 64], max: [32, 64]}}
    outputs: [y]
    triton:
      max_batch_size: 32
      dynamic_batching: {{max_queue_delay_microseconds: 20000}}
    parity:
      samples: 2
      ragged_requests: 6
"""


@pytest.fixture(scope="session")
def gelu_project(tmp_path_factory: pytest.TempPathFactory, serve_cache: Path,
                 example_build_tools: None) -> Path:
    """A model.yaml for the bundled gelu_block example (torch target), built once: returns the model.yaml path."""
    root = tmp_path_factory.mktemp("gelu_project")
    spec = root / "model.yaml"
    spec.write_text(textwrap.dedent(GELU_SPEC.format(plugin_src=REPO / "plugin_src")))
    from trtrepo.build import build

    build(spec)
    return spec


@pytest.fixture
def gelu_repo_copy(gelu_project: Path, tmp_path: Path) -> Path:
    """A private copy of the built repository, free to break."""
    target = tmp_path / "repo"
    shutil.copytree(gelu_project.parent / "repo", target, symlinks=True)
    return target


def _repository_copy(gelu_project: Path, target: Path) -> Path:
    shutil.copytree(gelu_project.parent / "repo", target, symlinks=True)
    return target


@pytest.fixture(scope="module")
def other_server(gelu_project: Path, tmp_path_factory: pytest.TempPathFactory,
                 tritonserver_available: None) -> Iterator[object]:
    """A real tritonserver serving another repository: the gelu model renamed ``other_block`` (no manifest)."""
    from trtrepo.serve import TritonServer

    repo = _repository_copy(gelu_project, tmp_path_factory.mktemp("other") / "repo")
    (repo / "trtrepo-manifest.json").unlink()
    (repo / "gelu_block").rename(repo / "other_block")
    config = repo / "other_block" / "config.pbtxt"
    config.write_text(config.read_text().replace('name: "gelu_block"', 'name: "other_block"'))
    with TritonServer(repo) as server:
        yield server


@pytest.fixture(scope="module")
def explicit_server(gelu_project: Path, tmp_path_factory: pytest.TempPathFactory,
                    tritonserver_available: None) -> Iterator[object]:
    """A real tritonserver on a copy of the gelu repository in explicit model control: gelu_block is not loaded."""
    from trtrepo.serve import TritonServer

    repo = _repository_copy(gelu_project, tmp_path_factory.mktemp("explicit") / "repo")
    with TritonServer(repo, extra_args=["--model-control-mode=explicit"]) as server:
        yield server


@pytest.fixture(scope="session")
def gelu_spec_text() -> str:
    """The model.yaml text of :func:`gelu_project` (``repository: repo``, beside the file), to vary per test."""
    return textwrap.dedent(GELU_SPEC.format(plugin_src=REPO / "plugin_src"))
