"""TensorRT lowering of custom ops (plugin / aot / decompose), plan build and plugin checks before serving.

Only the modules that talk to TensorRT or Torch-TensorRT import them, inside functions: ``import trtrepo.tensorrt``
and the pure modules (``opfacts``, ``launch``, ``engine_io``, ``checks``) work without either.
"""
