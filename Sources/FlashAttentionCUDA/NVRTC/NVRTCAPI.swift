/// The NVRTC entry points, resolved once from the first library found on the search path.
struct NVRTCAPI: @unchecked Sendable {
  typealias Status = Int32
  typealias Program = OpaquePointer

  let library: DynamicLibrary
  let version: (major: Int, minor: Int)
  let nvrtcVersion: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Status
  let nvrtcGetErrorString: @convention(c) (Status) -> UnsafePointer<CChar>?
  let nvrtcCreateProgram: @convention(c) (
    UnsafeMutablePointer<Program?>, UnsafePointer<CChar>, UnsafePointer<CChar>?, Int32,
    UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?
  ) -> Status
  let nvrtcDestroyProgram: @convention(c) (UnsafeMutablePointer<Program?>) -> Status
  let nvrtcCompileProgram: @convention(c) (Program?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Status
  let nvrtcGetProgramLogSize: @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Status
  let nvrtcGetProgramLog: @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Status
  let nvrtcGetCUBINSize: @convention(c) (Program?, UnsafeMutablePointer<Int>) -> Status
  let nvrtcGetCUBIN: @convention(c) (Program?, UnsafeMutablePointer<CChar>) -> Status

  init(library: DynamicLibrary) throws(LoadFailure) {
    self.library = library
    nvrtcVersion = try library.function("nvrtcVersion")
    nvrtcGetErrorString = try library.function("nvrtcGetErrorString")
    nvrtcCreateProgram = try library.function("nvrtcCreateProgram")
    nvrtcDestroyProgram = try library.function("nvrtcDestroyProgram")
    nvrtcCompileProgram = try library.function("nvrtcCompileProgram")
    nvrtcGetProgramLogSize = try library.function("nvrtcGetProgramLogSize")
    nvrtcGetProgramLog = try library.function("nvrtcGetProgramLog")
    nvrtcGetCUBINSize = try library.function("nvrtcGetCUBINSize")
    nvrtcGetCUBIN = try library.function("nvrtcGetCUBIN")
    var major: Int32 = 0
    var minor: Int32 = 0
    if nvrtcVersion(&major, &minor) != 0 {
      throw LoadFailure(path: library.path, message: "nvrtcVersion failed")
    }
    version = (Int(major), Int(minor))
  }

  /// The candidates in search order (DESIGN.md): the `FLASH_ATTENTION_NVRTC` override, the
  /// loader's own path, `$CUDA_HOME`, `/usr/local/cuda`, then Python site-packages of the
  /// `nvidia-cuda-nvrtc` wheel (`nvidia/cu13/lib`, `nvidia/cuda_nvrtc/lib`).
  static func searchPaths() -> [String] {
    var paths: [String] = []
    if let override = ProcessEnvironment.value("FLASH_ATTENTION_NVRTC") { paths.append(override) }
    paths += ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]
    var roots: [String] = []
    if let cudaHome = ProcessEnvironment.value("CUDA_HOME") ?? ProcessEnvironment.value("CUDA_PATH") {
      roots.append(cudaHome + "/lib64")
    }
    roots.append("/usr/local/cuda/lib64")
    for site in PythonSitePackages.folders() {
      roots.append(site + "/nvidia/cu13/lib")
      roots.append(site + "/nvidia/cuda_nvrtc/lib")
    }
    for root in roots {
      paths += ProcessEnvironment.glob(root + "/libnvrtc.so*").filter { !$0.contains("builtins") && !$0.contains(".alt.") }
    }
    return paths
  }

  /// NVRTC, loaded once per process; the failure lists what was tried and how to install it.
  static let shared: Result<NVRTCAPI, LoadFailure> = {
    var tried: [String] = []
    for path in searchPaths() {
      // NVRTC dlopens its builtins library by soname; a wheel's lib directory is not on the
      // loader path, so load the builtins beside it first, globally, to satisfy that lookup.
      if let directory = DynamicLibrary.directory(of: path) {
        for builtins in ProcessEnvironment.glob(directory + "/libnvrtc-builtins.so*") where !builtins.contains(".alt.") {
          _ = DynamicLibrary.open(builtins, global: true)
        }
      }
      switch DynamicLibrary.open(path) {
      case let .success(library):
        do throws(LoadFailure) { return .success(try NVRTCAPI(library: library)) } catch { tried.append("\(path): \(error.message)") }
      case .failure:
        tried.append(path)
      }
    }
    return .failure(LoadFailure(
      path: "libnvrtc",
      message: "NVRTC (libnvrtc.so) was not found; install it with `pip install nvidia-cuda-nvrtc` "
        + "(or the CUDA toolkit), or point FLASH_ATTENTION_NVRTC at libnvrtc.so. Tried: "
        + tried.joined(separator: ", ")))
  }()

  func errorString(_ status: Status) -> String {
    nvrtcGetErrorString(status).map { String(cString: $0) } ?? "nvrtcResult \(status)"
  }
}
