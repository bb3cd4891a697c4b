"""Importing the bench stage and the runners, and ``trtrepo bench --help``, load no torch/TensorRT/tritonclient."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "tensorrt", "torch_tensorrt", "tritonclient", "numpy")
MODULES = ("trtrepo.bench", "trtrepo.bench.engines", "trtrepo.bench.engine_report", "trtrepo.bench.soak",
           "trtrepo.bench.run", "trtrepo.bench.timing", "trtrepo.bench.plots", "trtrepo.runners.base",
           "trtrepo.runners.eager", "trtrepo.runners.plan", "trtrepo.runners.hybrid", "trtrepo.runners.triton",
           "trtrepo.cli.bench_cmd")


def test_bench_and_runner_modules_import_nothing_heavy(repo_root: Path) -> None:
    code = (f"import sys, importlib\nfor m in {MODULES!r}: importlib.import_module(m)\n"
            "from trtrepo.cli import main\nmain(['bench', 'engines', '--help'])\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    proc = subprocess.run([sys.executable, "-c", "import json\n" + code], cwd=repo_root, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
