"""trtrepo: a PyTorch model with custom C++/CUDA layers → a verified Triton Inference Server deployment.

Importing this package imports nothing heavy: torch, tensorrt, torch_tensorrt and tritonclient are imported by
the stages that need them.
"""

__version__ = "0.1.0"
