"""A replica polling the store (``--model-control-mode=poll --repository-poll-secs=1``) while a second model is
published slowly (a pause after every object, longer than the poll interval) never loads that model before its
last object is up, and loads it complete at the end; the model it already served stays READY throughout.

The replica is started the way ``trtrepo serve URL`` starts one (verified, ``--disable-auto-complete-config``).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from trtrepo._hashing import sha256_file

pytestmark = [pytest.mark.triton, pytest.mark.integration]

POLL_SECS = 1
PAUSE_S = 1.3  # after each object: every partial state lasts more than one poll
NEW = "gelu_copy"
READY_BOUND_S = 90.0


def test_a_polling_replica_never_loads_a_half_uploaded_model(
        gelu_repository: Path, s3_endpoint: str, bucket: str, tmp_path: Path, tritonserver_available: None) -> None:
    from trtrepo.publish import Upload, publish
    from trtrepo.serve import TritonServer

    publish(gelu_repository, f"s3://{bucket}/prod", endpoint_url=s3_endpoint)
    two_models = _with_copy(gelu_repository, tmp_path / "repo")
    url = f"s3://{s3_endpoint}/{bucket}/prod"
    seen: list[tuple[float, dict[str, str]]] = []
    done = threading.Event()
    new_up: list[float] = []  # when each object of the new model was up

    with TritonServer(url, extra_args=["--model-control-mode=poll", f"--repository-poll-secs={POLL_SECS}"]) as server:
        assert "--disable-auto-complete-config" in server.command

        def watch() -> None:
            while not done.is_set():
                seen.append((time.monotonic(), _states(server.http_url)))
                time.sleep(0.2)

        def slowly(item: Upload) -> None:
            if item.rel.startswith(NEW + "/"):
                new_up.append(time.monotonic())
            time.sleep(PAUSE_S)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            report = publish(two_models, f"s3://{bucket}/prod", endpoint_url=s3_endpoint, after_upload=slowly)
            deadline = time.monotonic() + READY_BOUND_S
            while _states(server.http_url).get(NEW) != "READY" and time.monotonic() < deadline:
                time.sleep(0.5)
            seen.append((time.monotonic(), _states(server.http_url)))
        finally:
            done.set()
            watcher.join(5)
        log = server.log_tail(40)

    assert len(report.uploaded) == 9 and len(new_up) == 8  # the new model's 8 objects, then the manifest
    before = [states for t, states in seen if t < new_up[-1]]  # while the new model was incomplete
    assert len(before) > 10, "the watcher did not sample the upload"
    assert any(NEW in states for states in before), "the replica never saw the half-uploaded folder: no test"
    loaded_early = [states for states in before if states.get(NEW, "") not in ("", "none")]
    assert not loaded_early, f"the replica loaded {NEW} before its last object was up: {loaded_early[:3]}\n{log}"
    assert seen[-1][1].get(NEW) == "READY", f"{NEW} not READY after the upload: {seen[-1][1]}\n{log}"
    assert all(states.get("gelu_block") == "READY" for _, states in seen), "the served model left READY"
    assert report.uploaded[-2].rel == f"{NEW}/config.pbtxt"


def _states(http_url: str) -> dict[str, str]:
    """Model → state from the repository index ('none' for a folder the server lists but never tried to load)."""
    req = urllib.request.Request(f"http://{http_url}/v2/repository/index", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            index: list[dict[str, Any]] = json.loads(resp.read())
    except OSError:
        return {}
    return {str(m["name"]): str(m.get("state") or "none") for m in index}


def _with_copy(source: Path, repo: Path) -> Path:
    """The gelu repository plus the same model under another name (a second model to publish)."""
    from trtrepo.repository.manifest import load_manifest, write_manifest

    shutil.copytree(source, repo, symlinks=True)
    shutil.copytree(repo / "gelu_block", repo / NEW, ignore=shutil.ignore_patterns("logs"))
    config = repo / NEW / "config.pbtxt"
    config.write_text(config.read_text().replace('name: "gelu_block"', f'name: "{NEW}"'))
    manifest = load_manifest(repo / "trtrepo-manifest.json")
    record = manifest.models["gelu_block"]
    files = {f"{NEW}/{rel.partition('/')[2]}": sha256_file(repo / NEW / rel.partition("/")[2]) for rel in record.files}
    plugins = {**manifest.plugins, **{f"{NEW}/{rel.partition('/')[2]}": digest
                                      for rel, digest in manifest.plugins.items() if rel.startswith("gelu_block/")}}
    write_manifest(repo / "trtrepo-manifest.json", dataclasses.replace(
        manifest, models={**manifest.models, NEW: dataclasses.replace(record, files=files)}, plugins=plugins))
    return repo
