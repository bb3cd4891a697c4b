"""``trtrepo doctor``: what this machine has for each stage, and the command that installs what is missing.

Every probe is guarded: a broken or absent package becomes a "missing" row with its install command, never an
exception. tritonserver is found by :func:`trtrepo.serve.install.find_tritonserver`, the discovery serve, check and
bench use (TRTREPO_TRITONSERVER first), so doctor says "ok" exactly where serve finds a server.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import subprocess
from dataclasses import asdict, dataclass
from typing import Any

from trtrepo import deps

LOGGER = logging.getLogger(__name__)

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


def _tritonserver_check() -> Check:
    """The tritonserver serve, check and bench would start: found by the one discovery they use."""
    from trtrepo.errors import ServeError
    from trtrepo.serve.install import INSTALL_HINT, find_tritonserver

    needed = "serve, check, bench"
    try:
        install = find_tritonserver()
    except ServeError as exc:
        return Check("tritonserver", False, exc.message, needed, exc.hint or INSTALL_HINT)
    origin = install.origin_text
    if install.origin == "pytriton":
        origin = f"nvidia-pytriton {_version('nvidia_pytriton') or ''}".strip()
    detail = f"{install.binary} (from {origin})"
    if install.stub_problem:  # the torch target serves through the Python backend: without its stub serve fails
        return Check("tritonserver", False, f"{detail}; {install.stub_problem}", needed,
                     "install the nvidia-pytriton wheel built for this Python, or use the NGC image")
    return Check("tritonserver", True, detail, needed)


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
