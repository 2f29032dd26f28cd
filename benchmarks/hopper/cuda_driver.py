"""The CUDA driver through ctypes for the device harnesses (Hopper forward, sm80 backward): the
library, a status check with the error's name, and loading one kernel of a cubin.

Import after torch has made the primary context current (torch.zeros(1, device="cuda")).
"""
import ctypes

cu = ctypes.CDLL("libcuda.so.1")

# CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
MAX_DYNAMIC_SHARED = 8


def ck(r, what):
    """Raises with cuGetErrorName's text when a driver call did not return CUDA_SUCCESS."""
    if r != 0:
        name = ctypes.c_char_p()
        cu.cuGetErrorName(r, ctypes.byref(name))
        raise RuntimeError(f"{what}: {r} {name.value}")


def load_function(cubin, entry, smem=0):
    """(module, function) for `entry` of `cubin`, opted in to `smem` bytes of dynamic shared
    memory when that is above the default 48 KiB."""
    module, function = ctypes.c_void_p(), ctypes.c_void_p()
    ck(cu.cuModuleLoadData(ctypes.byref(module), cubin), "cuModuleLoadData")
    ck(cu.cuModuleGetFunction(ctypes.byref(function), module, entry.encode()), f"cuModuleGetFunction({entry})")
    if smem > 48 * 1024:
        ck(cu.cuFuncSetAttribute(function, MAX_DYNAMIC_SHARED, smem), "smem attr")
    return module, function
