"""``torch: {program: aoti}`` served by a real tritonserver: parity over HTTP and gRPC on the AOTInductor package
(min/opt/max and the ragged burst Triton's batcher merges), and a package that cannot be loaded is a load error
naming the file.

Fixtures are this module's own (one AOTI build, one server): the compile is the slow part, and trtrepo's
content-keyed cache (``<cache>/aoti/``, the session cache) keeps a second build of the same program free.
"""

from __future__ import annotations

import json
import shutil
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import GELU_SPEC, REPO
from trtrepo.errors import ServeError

pytestmark = [pytest.mark.integration, pytest.mark.triton]

PACKAGE = "model.aoti-cpu.pt2"


@pytest.fixture(scope="module")
def aoti_project(tmp_path_factory: pytest.TempPathFactory, serve_cache: Path, example_build_tools: None,
                 tritonserver_available: None) -> Path:
    """gelu_block built with ``torch: {program: aoti}`` on CPU instances: returns the model.yaml path."""
    root = tmp_path_factory.mktemp("aoti_project")
    spec = root / "model.yaml"
    text = textwrap.dedent(GELU_SPEC.format(plugin_src=REPO / "plugin_src"))
    text = text.replace("    target: torch\n", "    target: torch\n    torch: {program: aoti}\n")
    text = text.replace("      dynamic_batching:", "      instance_group: [{kind: cpu}]\n      dynamic_batching:")
    spec.write_text(text)
    from trtrepo.build import build

    build(spec)
    return spec


@pytest.fixture(scope="module")
def aoti_server(aoti_project: Path) -> Iterator[Any]:
    from trtrepo.serve import TritonServer

    with TritonServer(aoti_project.parent / "repo", log_path=aoti_project.parent / "server.log") as server:
        yield server


def test_aoti_package_is_built_recorded_and_keyed(aoti_project: Path) -> None:
    """The version folder holds the package, config.pbtxt names it, the manifest records its hash and the cache
    entry; a second build is up to date, and one with the exported program is not (the option is in the key)."""
    from trtrepo._hashing import sha256_file
    from trtrepo.build import build

    repo = aoti_project.parent / "repo"
    package = repo / "gelu_block" / "1" / PACKAGE
    assert package.is_file()
    assert f'string_value: "cpu={PACKAGE}"' in (repo / "gelu_block" / "config.pbtxt").read_text()
    record = json.loads((repo / "trtrepo-manifest.json").read_text())["models"]["gelu_block"]
    facts = record["build"]["options"]
    assert facts["program"] == "aoti"
    assert facts["packages"]["cpu"]["sha256"] == sha256_file(package)
    assert record["files"]["gelu_block/1/" + PACKAGE] == sha256_file(package)
    assert build(aoti_project, progress=lambda _: None).up_to_date
    from trtrepo.build import override_torch_program
    from trtrepo.freshness import inputs_key
    from trtrepo.spec import load_spec

    spec = load_spec(aoti_project)
    exported = override_torch_program(spec, "exported")
    assert inputs_key(spec, spec.models[0], "torch", "cpu") != inputs_key(exported, exported.models[0], "torch", "cpu")


def test_aoti_served_parity_over_http_and_grpc(aoti_project: Path, aoti_server: Any) -> None:
    """trtrepo check passes against the AOTI-served model: min, opt, max, random batches and the ragged burst."""
    from trtrepo.check import run_check

    report = run_check(aoti_project, url_http=aoti_server.http_url, url_grpc=aoti_server.grpc_url,
                       protocols=("http", "grpc"), progress=lambda _: None)
    assert report.passed, [(c.case, c.error) for c in report.failures()]
    cases = {(c.protocol, c.case.split("-")[0]) for c in report.cases}
    for protocol in ("http", "grpc"):
        assert {(protocol, "min"), (protocol, "opt"), (protocol, "max"), (protocol, "ragged")} <= cases
    log = (aoti_project.parent / "server.log").read_text()
    assert f"loaded {PACKAGE}" in log  # the package served these requests, not the exported program


def test_broken_package_is_a_load_error_naming_the_file(aoti_project: Path, tmp_path: Path) -> None:
    """A package that is not one fails the model's load, with the file's name; no fall back to model.pt2."""
    from trtrepo.serve import TritonServer

    repo = tmp_path / "repo"
    shutil.copytree(aoti_project.parent / "repo", repo, symlinks=True)
    (repo / "trtrepo-manifest.json").unlink()  # a plain repository: what Triton itself does with the package
    (repo / "gelu_block" / "1" / PACKAGE).write_bytes(b"not a zip archive")
    start = time.monotonic()
    with pytest.raises(ServeError, match=rf"(?s)during startup.*cannot load AOTInductor package {PACKAGE}"):
        TritonServer(repo, startup_timeout=90).start()
    assert time.monotonic() - start < 90
