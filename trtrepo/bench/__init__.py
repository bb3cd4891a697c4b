"""The bench stage: measurements that print ratios measured side by side in one run (never timed tests).

Entry points (one per ``trtrepo bench`` subcommand):

* :func:`trtrepo.bench.run.run_bench` — ``trtrepo bench MODEL_YAML``: served latency/throughput vs eager.
* :func:`trtrepo.bench.engines.run_engines` — ``trtrepo bench engines MODEL_YAML``: eager, torch.compile, TensorRT
  plans (per lowering and profile), the hybrid engine and the native-aten ceiling in one process.
* :func:`trtrepo.bench.soak.run_soak` — ``trtrepo bench soak MODEL_YAML``: many requests, and with ``--faults`` a
  server restart and malformed requests interleaved with good ones.

Modules: ``stats`` (percentiles, spread), ``timing`` (clocks, warm-up), ``inputs`` (batch sizes, seeded inputs),
``load`` (own load loop), ``perf_analyzer``, ``report`` (served sweep report), ``plots``, ``run``, ``engines``
(and its report, ``engine_report``),
``soak``. Importing this package imports neither torch nor tritonclient.
"""

from trtrepo.bench.run import run_bench

__all__ = ["run_bench"]
