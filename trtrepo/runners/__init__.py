"""One way to run a model, whatever runs it: eager PyTorch, a TensorRT plan, a Torch-TensorRT hybrid, Triton.

Every runner follows :class:`trtrepo.runners.base.Runner` (like Polygraphy's runners): ``activate()`` /
``deactivate()`` or ``with runner:``, then ``infer({name: array}) -> {name: array}``. The ones that run on a device
also ``prepare(inputs)`` a call that only enqueues work on the runner's own stream, which is what the benchmarks
time. :func:`trtrepo.runners.base.run_runners` runs several on the same inputs.

Modules: ``base`` (the protocol, input/output conversion), ``eager`` (a torch module: eager or compiled),
``plan`` (a TensorRT plan through the TensorRT Python API), ``hybrid`` (a Torch-TensorRT partitioned program run
leanly), ``triton`` (a served model over HTTP or gRPC). Nothing here imports torch, TensorRT or tritonclient until a
runner is activated.
"""
