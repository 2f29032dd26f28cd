import Foundation
import PackagePlugin

/// Embeds the CUDA kernel sources of a target into its binary: every `.cu`, `.cuh` and `.h` file
/// under the target's `Kernels` folder (and the public headers of the C targets it depends on,
/// such as the kernel ABI) becomes a raw-string constant in one generated Swift file.
///
/// The sources stay the one copy of each kernel (no committed mirror), and a copied static binary
/// carries them (no `Bundle.module`). Every embedded file is an input of the build command, so
/// editing a kernel regenerates the constants; adding or removing a file changes the command and
/// therefore reruns it too.
@main
struct EmbedKernelSources: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
    guard let target = target as? SourceModuleTarget else { return [] }
    var inputs: [(name: String, url: URL)] = []
    // The target's conventional folder (SwiftPM 6.0 plugins have no URL of a target's own
    // directory); were it elsewhere, nothing would be embedded and every kernel compile would fail
    // with "no embedded kernel file", which the compile tests report.
    inputs += try kernelFiles(under: context.package.directoryURL.appending(path: "Sources/\(target.name)/Kernels"))
    for case let .target(dependency) in target.dependencies {
      guard let headers = (dependency as? ClangSourceModuleTarget)?.publicHeadersDirectoryURL else { continue }
      inputs += try kernelFiles(under: headers)
    }
    inputs.sort { $0.name < $1.name }
    let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedKernelSources.swift")
    // Arguments: the output, then name=path for each embedded file.
    let arguments = [output.path(percentEncoded: false)] + inputs.map { "\($0.name)=\($0.url.path(percentEncoded: false))" }
    return [
      .buildCommand(
        displayName: "Embedding \(inputs.count) CUDA kernel sources into \(target.name)",
        executable: try context.tool(named: "embed-kernel-sources").url,
        arguments: arguments,
        inputFiles: inputs.map(\.url),
        outputFiles: [output])
    ]
  }

  /// The kernel files under `root`, named by their path relative to it (what `#include` uses).
  private func kernelFiles(under root: URL) throws -> [(name: String, url: URL)] {
    let manager = FileManager.default
    guard let walker = manager.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey]) else { return [] }
    let rootPath = root.standardizedFileURL.path(percentEncoded: false)
    var files: [(name: String, url: URL)] = []
    for case let url as URL in walker where ["cu", "cuh", "h"].contains(url.pathExtension) {
      let path = url.standardizedFileURL.path(percentEncoded: false)
      let name = path.hasPrefix(rootPath) ? String(path.dropFirst(rootPath.count).drop { $0 == "/" }) : url.lastPathComponent
      files.append((name, url))
    }
    return files
  }
}
