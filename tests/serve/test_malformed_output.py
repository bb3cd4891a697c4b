"""A response whose output data does not fill its declared shape fails that request, never the run.

Seen on the GPU machine: the Python-backend stub of tritonserver 2.51 running with numpy 2 answers ``y`` of shape
[1, 64] FP32 with 0 bytes, and tritonclient's ``as_numpy`` raises ``ValueError: cannot reshape array of size 0``.
The unit tests feed real tritonclient result objects parsed from such responses; the integration tests serve a
tiny Python-backend model under numpy 2 with the bundled tritonserver and run ``trtrepo check`` against it.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from trtrepo import deps

ENV_NUMPY2 = "TRTREPO_TEST_NUMPY2"
ZERO_BYTES = "server returned 0 bytes for output 'y' of shape [1, 64] (dtype FP32, 256 bytes expected)"


@pytest.fixture(scope="module")
def tritonclient_available() -> None:
    """Skip (with the reason) without tritonclient."""
    if not deps.is_installed("tritonclient"):
        pytest.skip("tritonclient is not installed")


def _http_result(shape: list[int], payload: bytes) -> object:
    """tritonclient.http.InferResult parsed from a binary-data response body as the server sends it."""
    from tritonclient.http import InferResult

    header = json.dumps({"model_name": "m", "model_version": "1", "outputs": [
        {"name": "y", "datatype": "FP32", "shape": shape, "parameters": {"binary_data_size": len(payload)}}]})
    body = header.encode() + payload
    return InferResult.from_response_body(body, header_length=len(header))


def _grpc_result(shape: list[int], payload: bytes) -> object:
    """tritonclient.grpc.InferResult around a ModelInferResponse as the server sends it."""
    from tritonclient.grpc import InferResult, service_pb2

    response = service_pb2.ModelInferResponse(model_name="m", model_version="1")
    out = response.outputs.add()
    out.name, out.datatype = "y", "FP32"
    out.shape.extend(shape)
    response.raw_output_contents.append(payload)
    return InferResult(response)


@pytest.mark.usefixtures("tritonclient_available")
@pytest.mark.parametrize("make", [_http_result, _grpc_result], ids=["http", "grpc"])
def test_zero_byte_output_is_a_request_failure(make) -> None:
    from trtrepo.runners.triton_client import RequestFailed, decode_output

    with pytest.raises(RequestFailed) as info:
        decode_output(make([1, 64], b""), "y", "m")
    assert str(info.value).startswith(ZERO_BYTES), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.usefixtures("tritonclient_available")
@pytest.mark.parametrize("make", [_http_result, _grpc_result], ids=["http", "grpc"])
def test_short_output_names_both_sizes(make) -> None:
    from trtrepo.runners.triton_client import RequestFailed, decode_output

    with pytest.raises(RequestFailed, match=r"server returned 128 bytes for output 'y' of shape \[1, 64\] "
                                            r"\(dtype FP32, 256 bytes expected\)"):
        decode_output(make([1, 64], np.zeros(32, np.float32).tobytes()), "y", "m")


@pytest.mark.usefixtures("tritonclient_available")
@pytest.mark.parametrize("make", [_http_result, _grpc_result], ids=["http", "grpc"])
def test_well_formed_output_decodes(make) -> None:
    from trtrepo.runners.triton_client import RequestFailed, decode_output

    data = np.arange(64, dtype=np.float32).reshape(1, 64)
    np.testing.assert_array_equal(decode_output(make([1, 64], data.tobytes()), "y", "m"), data)
    with pytest.raises(RequestFailed, match="has no output 'z'"):
        decode_output(make([1, 64], data.tobytes()), "z", "m")


# ------------------------------------------------------------------------------------------- real tritonserver
MODEL_PY = """\
import os
import sys
import sys

# The stub does not read PYTHONPATH: take numpy (2.x for this test) from the folders trtrepo's server passes.
sys.path[:0] = [p for p in os.environ.get("TRTREPO_PYTHONPATH", "").split(os.pathsep) if p]

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "x").as_numpy()
            # numpy arrays handed to the 2.51 stub under numpy 2 go out as 0 bytes with the right shape
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("y", (x * 2).astype(np.float32))]))
        return responses
"""

CONFIG = """\
name: "double"
backend: "python"
max_batch_size: 0
input [{ name: "x" data_type: TYPE_FP32 dims: [1, 64] }]
output [{ name: "y" data_type: TYPE_FP32 dims: [1, 64] }]
instance_group [{ kind: KIND_CPU count: 1 }]
"""

SPEC = """\
repository: repo
models:
  - name: double
    source: tiny_double:build
    target: torch
    inputs:
      - {name: x, shape: [1, 64]}
    outputs: [y]
    triton:
      max_batch_size: 0
"""

FACTORY = """\
import torch


class Double(torch.nn.Module):
    def forward(self, x):
        return x * 2


def build():
    return Double()
"""


def _numpy2_folder() -> str | None:
    """'' when this interpreter's numpy is 2.x, the folder of $TRTREPO_TEST_NUMPY2, or None (no numpy 2 here)."""
    if int(np.__version__.split(".")[0]) >= 2:
        return ""
    folder = os.environ.get(ENV_NUMPY2)
    if folder and (Path(folder) / "numpy").is_dir():
        return folder
    return None


@pytest.fixture
def numpy2_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tritonserver_available: None) -> Path:
    """A repository with the Python-backend model ``double``, whose stub will import numpy 2."""
    folder = _numpy2_folder()
    if folder is None:
        pytest.skip(f"numpy {np.__version__} here: the stub sends 0-byte outputs under numpy>=2 only; set "
                    f"{ENV_NUMPY2}=<folder holding numpy 2 for Python {sys.version_info[0]}."
                    f"{sys.version_info[1]}> (pip install --target <folder> 'numpy>=2') to run this test")
    if folder:
        monkeypatch.setenv("TRTREPO_PYTHONPATH", folder)
    repo = tmp_path / "repo"
    (repo / "double" / "1").mkdir(parents=True)
    (repo / "double" / "config.pbtxt").write_text(CONFIG)
    (repo / "double" / "1" / "model.py").write_text(MODEL_PY)
    return repo


@pytest.mark.triton
def test_client_reports_the_zero_byte_output(numpy2_repo: Path) -> None:
    import tritonclient.http as httpclient

    from trtrepo.runners.triton_client import RequestFailed, TritonClient
    from trtrepo.serve import TritonServer

    x = np.ones((1, 64), np.float32)
    with TritonServer(numpy2_repo, log_path=numpy2_repo.parent / "server.log") as server:
        # the precondition: this server really answers 0 bytes (tritonclient alone raises a bare ValueError)
        raw = httpclient.InferenceServerClient(server.http_url)
        item = httpclient.InferInput("x", [1, 64], "FP32")
        item.set_data_from_numpy(x)
        reply = raw.infer("double", [item], outputs=[httpclient.InferRequestedOutput("y")])
        assert reply.get_output("y")["parameters"]["binary_data_size"] == 0
        for protocol, url in (("http", server.http_url), ("grpc", server.grpc_url)):
            with TritonClient(protocol, url) as client, pytest.raises(RequestFailed) as info:
                client.infer("double", {"x": x}, ["y"])
            assert str(info.value).startswith(ZERO_BYTES), (protocol, str(info.value))
        server.check_alive()


@pytest.mark.triton
def test_check_fails_the_cases_and_exits_1(numpy2_repo: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    if not deps.has_torch():
        pytest.skip("torch is not installed (eager side of trtrepo check)")
    from trtrepo.cli import main

    spec = tmp_path / "model.yaml"
    spec.write_text(textwrap.dedent(SPEC))
    (tmp_path / "tiny_double.py").write_text(FACTORY)
    report_path = tmp_path / "report.json"
    code = main(["check", str(spec), "--repository", str(numpy2_repo), "--report", str(report_path)])
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    assert "bug in trtrepo" not in captured.err and "Traceback" not in captured.err, captured.err
    report = json.loads(report_path.read_text())
    cases = report["cases"]
    assert {c["protocol"] for c in cases} == {"http", "grpc"}
    for case in cases:
        assert case["passed"] is False, case
        assert case["error"].startswith(ZERO_BYTES), case
