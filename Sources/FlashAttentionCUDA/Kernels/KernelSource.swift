/// The attention kernels' CUDA C++ sources, embedded in the binary as string literals (never
/// `Bundle.module`, which a copied binary would lose). The `.cuh`-style text lives in the
/// `KernelSource+*.swift` files; `AttentionKernelKey.program` prefixes the `#define`s.
enum KernelSource {}
