"""``trtrepo check``: prove that what Triton serves equals eager PyTorch, over HTTP and gRPC.

The stage's entry point is :func:`run_check` (:mod:`trtrepo.check.run`); the parts it is made of:
:mod:`~trtrepo.check.inputs` (seeded cases over the shape profile), :mod:`~trtrepo.runners.triton_client`
(HTTP/gRPC with a timeout on every call), :mod:`~trtrepo.check.compare` and :mod:`~trtrepo.check.tolerances`
(per-output atol/rtol, worst errors), :mod:`~trtrepo.check.report` (JSON and a table).
"""

from __future__ import annotations

from trtrepo.check.run import DEFAULT_READY_TIMEOUT, raise_for_failure, run_check, writable_report_path

__all__ = ["DEFAULT_READY_TIMEOUT", "raise_for_failure", "run_check", "writable_report_path"]
