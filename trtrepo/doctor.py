"""``trtrepo doctor``: what this machine has for each stage, and the command that installs what is missing.

Every probe is guarded: a broken or absent package becomes a "missing" row with its install command, never an
exception. Environment: TRTREPO_TRITONSERVER names the tritonserver binary to use (checked first).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trtrepo import deps

LOGGER = logging.getLogger(__name__)

TRITONSERVER_ENV = "TRTREPO_TRITONSERVER"


@dataclass
class Check:
    """One row of the report.

    Attributes:
        name: What was probed (``torch``, ``nvcc``, ...).
        ok: Whether it is usable here.
        detail: Version, path or what was found.
        needed_for: Which stages need it.
        fix: The command that installs it, when it is missing.
    """

    name: str
    ok: bool
    detail: str
    needed_for: str
    fix: str | None = None


def run_doctor() -> list[Check]:
    """Probe every piece trtrepo can use; never raises for a missing one."""
    checks = [Check("python", True, f"{platform.python_version()} ({platform.python_implementation()})", "all")]
    checks += _torch_checks()
    checks.append(_nvcc_check())
    checks.append(_module_check("tensorrt", "TensorRT", deps.has_tensorrt, "the tensorrt target"))
    checks.append(_module_check("torch_tensorrt", "Torch-TensorRT", deps.has_torch_tensorrt, "the tensorrt target"))
    checks.append(_tritonserver_check())
    checks.append(_module_check("tritonclient", "tritonclient", lambda: deps.is_installed("tritonclient"),
                                "build (config.pbtxt), check, bench"))
    return checks


def _version(dist: str) -> str | None:
    from trtrepo.repository.manifest import package_version

    return package_version(dist)


def _torch_checks() -> list[Check]:
    if not deps.has_torch():
        return [
            Check("torch", False, "not installed", "build, check", deps.INSTALL_HINTS["torch"]),
            Check("gpu", False, "unknown (needs torch)", "GPU builds, tensorrt target", deps.INSTALL_HINTS["torch"]),
        ]
    try:
        import torch

        version = str(torch.__version__)
        cuda = getattr(torch.version, "cuda", None)
        available = bool(torch.cuda.is_available())
    except Exception as exc:  # a broken torch install is a finding, not a crash
        return [Check("torch", False, f"import failed: {exc}", "build, check", deps.INSTALL_HINTS["torch"])]
    rows = [Check("torch", True, f"{version} (CUDA {cuda or 'none'}, CUDA available: {'yes' if available else 'no'})",
                  "build, check")]
    if available:
        major, minor = torch.cuda.get_device_capability(0)
        rows.append(Check("gpu", True, f"{torch.cuda.get_device_name(0)} (sm_{major}{minor}, "
                                       f"{torch.cuda.device_count()} visible)", "GPU builds, tensorrt target"))
    else:
        hint = deps.INSTALL_HINTS["cuda_torch"] if not cuda else "no CUDA device visible (check the driver)"
        rows.append(Check("gpu", False, "none visible to torch", "GPU builds, tensorrt target", hint))
    return rows


def _nvcc_check() -> Check:
    nvcc = deps.find_nvcc()
    if nvcc is None:
        return Check("nvcc", False, "not found", "CUDA op kernels, PTX for AOT plugins", deps.INSTALL_HINTS["nvcc"])
    try:
        out = subprocess.run([str(nvcc), "--version"], capture_output=True, text=True, timeout=30).stdout
        match = re.search(r"release ([\d.]+)", out)
        version = match.group(1) if match else "unknown version"
    except (OSError, subprocess.SubprocessError) as exc:
        return Check("nvcc", False, f"{nvcc} does not run: {exc}", "CUDA op kernels", deps.INSTALL_HINTS["nvcc"])
    return Check("nvcc", True, f"{version} ({nvcc})", "CUDA op kernels, PTX for AOT plugins")


def _module_check(module: str, label: str, probe: Any, needed_for: str) -> Check:
    version = _version(module)
    if probe():
        return Check(label, True, version or "installed", needed_for)
    if deps.is_installed(module):
        detail = f"{version or 'installed'} but does not import or is a stub"
    else:
        detail = "not installed"
    return Check(label, False, detail, needed_for, deps.INSTALL_HINTS[module])


def find_tritonserver() -> tuple[Path | None, str]:
    """The tritonserver binary and where it was found: TRTREPO_TRITONSERVER, PATH, then nvidia-pytriton's copy."""
    env = os.environ.get(TRITONSERVER_ENV)
    if env:
        return (Path(env), TRITONSERVER_ENV) if Path(env).is_file() else (None, f"{TRITONSERVER_ENV}={env} missing")
    on_path = shutil.which("tritonserver")
    if on_path:
        return Path(on_path), "PATH"
    if os.path.isfile("/opt/tritonserver/bin/tritonserver"):
        return Path("/opt/tritonserver/bin/tritonserver"), "/opt/tritonserver"
    try:
        spec = importlib.util.find_spec("pytriton")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "tritonserver" / "bin" / "tritonserver"
            if candidate.is_file():
                return candidate, f"nvidia-pytriton {_version('nvidia_pytriton') or ''}".strip()
    return None, "not found"


def _tritonserver_check() -> Check:
    path, where = find_tritonserver()
    if path is None:
        return Check("tritonserver", False, where, "serve, check, bench", deps.INSTALL_HINTS["tritonserver"])
    return Check("tritonserver", True, f"{path} (from {where})", "serve, check, bench")


def to_json(checks: list[Check]) -> str:
    """The report as JSON: {"checks": [...], "missing": [names]}."""
    return json.dumps({"checks": [asdict(c) for c in checks], "missing": [c.name for c in checks if not c.ok]},
                      indent=2)


def to_table(checks: list[Check]) -> str:
    """The report as an aligned table, with a "to fix" line under each missing piece."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{'ok' if c.ok else '--'}  {c.name:<{width}}  {c.detail}   [{c.needed_for}]")
        if not c.ok and c.fix:
            lines.append(f"    {'':<{width}}  to fix: {c.fix}")
    missing = [c.name for c in checks if not c.ok]
    lines.append("")
    lines.append("everything found" if not missing else f"missing: {', '.join(missing)} "
                 "(the torch target and CPU checks need only torch, tritonclient and tritonserver)")
    return "\n".join(lines)
