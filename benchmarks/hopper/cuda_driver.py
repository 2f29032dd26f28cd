"""The CUDA driver through ctypes for the device harnesses (Hopper forward, sm80 and Hopper
backward): the library, a status check with the error's name, loading one kernel of a cubin, and
TMA descriptors.

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


def tensor_map(t, box_rows):
    """A CUtensorMap (16 x u64) of a [b, s, h, d] fp16/bf16 torch view with unit last stride, read
    in boxes of 64 columns (the 128-byte swizzle span) by `box_rows` rows; what lies outside the
    tensor reads as zeros. Mirrors HopperTensorMaps.swift."""
    b, s, h, d = t.shape
    assert t.stride(3) == 1
    m = (ctypes.c_uint64 * 16)()
    dims = (ctypes.c_uint64 * 4)(d, s, h, b)
    es = t.element_size()
    strides = (ctypes.c_uint64 * 3)(t.stride(1) * es, t.stride(2) * es, t.stride(0) * es)
    box = (ctypes.c_uint32 * 4)(64, box_rows, 1, 1)
    estr = (ctypes.c_uint32 * 4)(1, 1, 1, 1)
    dt = 6 if str(t.dtype) == "torch.float16" else 9
    # CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6, BFLOAT16 = 9; interleave none, SWIZZLE_128B = 3,
    # L2 promotion 128B = 2, out-of-bounds elements read as zeros.
    ck(cu.cuTensorMapEncodeTiled(m, dt, 4, ctypes.c_void_p(t.data_ptr()), dims, strides, box, estr, 0, 3, 2, 0), "tensormap")
    return m
