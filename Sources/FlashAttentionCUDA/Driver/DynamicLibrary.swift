import Glibc

/// A shared library opened with `dlopen`, kept open for the life of the process.
///
/// The driver and NVRTC are loaded this way so that the package builds without CUDA headers or
/// libraries and a machine without them still runs the CPU backend.
struct DynamicLibrary: @unchecked Sendable {
  let handle: UnsafeMutableRawPointer
  /// The name or path that `dlopen` accepted.
  let path: String

  /// Opens `path` (a soname or an absolute path); nil and the loader's message when it fails.
  static func open(_ path: String, global: Bool = false) -> Result<DynamicLibrary, LoadFailure> {
    let flags = RTLD_NOW | (global ? RTLD_GLOBAL : RTLD_LOCAL)
    guard let handle = dlopen(path, flags) else {
      let message = dlerror().map { String(cString: $0) } ?? "dlopen failed"
      return .failure(LoadFailure(path: path, message: message))
    }
    return .success(DynamicLibrary(handle: handle, path: path))
  }

  /// Resolves a C function by name and casts it to the Swift function type `T`.
  func function<T>(_ name: String, as type: T.Type = T.self) throws(LoadFailure) -> T {
    guard let symbol = dlsym(handle, name) else {
      throw LoadFailure(path: path, message: "symbol \(name) not found")
    }
    return unsafeBitCast(symbol, to: T.self)
  }

  /// Like `function(_:as:)` but nil when the symbol is absent (optional features such as TMA).
  func optionalFunction<T>(_ name: String, as type: T.Type = T.self) -> T? {
    guard let symbol = dlsym(handle, name) else { return nil }
    return unsafeBitCast(symbol, to: T.self)
  }

  /// The directory part of an absolute path, or nil for a bare soname.
  static func directory(of path: String) -> String? {
    guard let slash = path.lastIndex(of: "/") else { return nil }
    return String(path[..<slash])
  }
}

/// Why a library or one of its symbols could not be loaded.
struct LoadFailure: Error, Sendable {
  var path: String
  var message: String
}

/// Process environment and file-system helpers without Foundation.
enum ProcessEnvironment {
  static func value(_ name: String) -> String? {
    guard let raw = getenv(name) else { return nil }
    let text = String(cString: raw)
    return text.isEmpty ? nil : text
  }

  /// Paths matching a shell pattern, sorted (empty when none match).
  static func glob(_ pattern: String) -> [String] {
    var result = glob_t()
    defer { globfree(&result) }
    guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
    var paths: [String] = []
    for index in 0..<Int(result.gl_pathc) {
      if let path = result.gl_pathv[index] { paths.append(String(cString: path)) }
    }
    return paths.sorted()
  }

  static func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
  }
}
