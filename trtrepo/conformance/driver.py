"""The CUDA driver API through ctypes: load PTX as a module and launch one of its entries, as TensorRT launches the
kernel of an AOT plugin (``cuModuleLoadDataEx`` of the embedded PTX, ``cuLaunchKernel`` with the argument pointers).

ctypes over ``libcuda.so.1`` rather than CuPy or cuda-python: nothing to install, and each argument's C type comes
from the PTX entry's parameter list, not from a binding's guess. The primary context (the one torch uses) is made
current when no context is.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from trtrepo.errors import MissingDependencyError, TrtrepoError

LOGGER = logging.getLogger(__name__)

_CU_JIT_INFO_LOG_BUFFER = 3
_CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4
_CU_JIT_ERROR_LOG_BUFFER = 5
_CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6
_LOG_BYTES = 16384


class DriverError(TrtrepoError):
    """A CUDA driver call failed; the message names the call and the driver's error."""


@dataclass(frozen=True)
class Arg:
    """One kernel argument with its PTX parameter type (``u64`` pointer, ``u32``/``s32`` 32-bit int)."""

    ptx_type: str
    value: int

    def as_ctype(self) -> ctypes.c_uint64 | ctypes.c_int32 | ctypes.c_uint32:
        """The C object cuLaunchKernel points at."""
        if self.ptx_type in ("u64", "b64", "s64"):
            return ctypes.c_uint64(self.value & 0xFFFF_FFFF_FFFF_FFFF)
        if self.ptx_type in ("s32", "b32"):
            if not -(2**31) <= self.value < 2**31:
                raise DriverError(f"argument {self.value} does not fit a .{self.ptx_type} parameter")
            return ctypes.c_int32(self.value)
        if self.ptx_type == "u32":
            if not -(2**31) <= self.value < 2**32:
                raise DriverError(f"argument {self.value} does not fit a .u32 parameter")
            return ctypes.c_uint32(self.value & 0xFFFF_FFFF)
        raise DriverError(f"unsupported PTX parameter type .{self.ptx_type}")


class Driver:
    """``libcuda`` with the few calls an AOT launch needs."""

    def __init__(self) -> None:
        try:
            self._lib = ctypes.CDLL("libcuda.so.1")
        except OSError as exc:
            raise MissingDependencyError(f"the CUDA driver (libcuda.so.1) does not load: {exc}",
                                         hint="run on a machine with an NVIDIA GPU and its driver") from None
        self._check(self._lib.cuInit(0), "cuInit")
        ctx = ctypes.c_void_p()
        self._check(self._lib.cuCtxGetCurrent(ctypes.byref(ctx)), "cuCtxGetCurrent")
        if not ctx.value:
            device = ctypes.c_int()
            self._check(self._lib.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
            self._check(self._lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), device), "cuDevicePrimaryCtxRetain")
            self._check(self._lib.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")

    def _error(self, rc: int) -> str:
        text = ctypes.c_char_p()
        self._lib.cuGetErrorString(rc, ctypes.byref(text))
        return text.value.decode() if text.value else f"CUresult {rc}"

    def _check(self, rc: int, what: str, log: str = "") -> None:
        if rc != 0:
            raise DriverError(f"{what} failed: {self._error(rc)}" + (f": {log.strip()}" if log.strip() else ""))

    def load_ptx(self, ptx: bytes) -> int:
        """``cuModuleLoadDataEx`` of PTX text (the driver JIT-compiles it); returns the module handle."""
        module = ctypes.c_void_p()
        error_log = ctypes.create_string_buffer(_LOG_BYTES)
        info_log = ctypes.create_string_buffer(_LOG_BYTES)
        options = (ctypes.c_int * 4)(_CU_JIT_ERROR_LOG_BUFFER, _CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
                                     _CU_JIT_INFO_LOG_BUFFER, _CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES)
        values = (ctypes.c_void_p * 4)(ctypes.cast(error_log, ctypes.c_void_p), ctypes.c_void_p(_LOG_BYTES),
                                       ctypes.cast(info_log, ctypes.c_void_p), ctypes.c_void_p(_LOG_BYTES))
        image = ctypes.c_char_p(ptx if ptx.endswith(b"\0") else ptx + b"\0")
        rc = self._lib.cuModuleLoadDataEx(ctypes.byref(module), image, 4, options, values)
        self._check(rc, "cuModuleLoadDataEx", error_log.value.decode(errors="replace"))
        assert module.value is not None
        return module.value

    def function(self, module: int, name: str) -> int:
        """``cuModuleGetFunction``."""
        fn = ctypes.c_void_p()
        self._check(self._lib.cuModuleGetFunction(ctypes.byref(fn), ctypes.c_void_p(module), name.encode()),
                    f"cuModuleGetFunction({name})")
        assert fn.value is not None
        return fn.value

    def launch(self, fn: int, grid: int, block: int, shared_memory: int, stream: int, args: Sequence[Arg]) -> None:
        """``cuLaunchKernel(fn, grid,1,1, block,1,1, shared_memory, stream, args)`` (1-D, as op.yaml states)."""
        values = [a.as_ctype() for a in args]
        params = (ctypes.c_void_p * max(1, len(values)))(*[ctypes.addressof(v) for v in values])
        rc = self._lib.cuLaunchKernel(ctypes.c_void_p(fn), ctypes.c_uint(grid), 1, 1, ctypes.c_uint(block), 1, 1,
                                      ctypes.c_uint(shared_memory), ctypes.c_void_p(stream), params, None)
        self._check(rc, "cuLaunchKernel")

    def unload(self, module: int) -> None:
        """``cuModuleUnload``."""
        self._check(self._lib.cuModuleUnload(ctypes.c_void_p(module)), "cuModuleUnload")
