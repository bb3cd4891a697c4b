"""Conformance of the ``aot`` and ``plugin`` lowerings without TensorRT.

* :mod:`trtrepo.conformance.aot`: what the AOT plugin hands TensorRT (trtrepo's own ``register_aot_plugin`` driven
  through a ``tensorrt.plugin`` stand-in, :mod:`~trtrepo.conformance.qdp`), launched with the CUDA driver API as
  TensorRT launches it, compared with the eager op.
* :mod:`trtrepo.conformance.host`: the C++ plugin library driven through its IPluginV3 interface by a conformance
  host (C++, ``host/``) that provides the few TensorRT symbols a plugin library needs, compared with the eager op.

``python -m trtrepo.conformance run ...`` runs both (:mod:`trtrepo.conformance.run`); scripts/gpu_conformance.sh is
the GPU lane. Nothing here is imported by ``import trtrepo``; torch is imported only when a run needs it.
"""
