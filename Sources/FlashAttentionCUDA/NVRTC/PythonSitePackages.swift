/// The Python package folders where NVIDIA's PyPI wheels (`nvidia-cuda-nvrtc`,
/// `nvidia-cuda-cuobjdump`) put their files, found without running Python: `PYTHONPATH`, the
/// active virtualenv or conda prefix, the user's and pyenv's site-packages, then the system's.
package enum PythonSitePackages {
  package static func folders() -> [String] {
    var folders: [String] = []
    if let pythonPath = ProcessEnvironment.value("PYTHONPATH") {
      folders += pythonPath.split(separator: ":").map(String.init)
    }
    for prefix in [ProcessEnvironment.value("VIRTUAL_ENV"), ProcessEnvironment.value("CONDA_PREFIX")] {
      if let prefix { folders += ProcessEnvironment.glob(prefix + "/lib/python3*/site-packages") }
    }
    if let home = ProcessEnvironment.value("HOME") {
      folders += ProcessEnvironment.glob(home + "/.local/lib/python3*/site-packages")
      folders += ProcessEnvironment.glob(home + "/.pyenv/versions/*/lib/python3*/site-packages")
    }
    folders += ProcessEnvironment.glob("/usr/local/lib/python3*/site-packages")
    folders += ProcessEnvironment.glob("/usr/local/lib/python3*/dist-packages")
    folders += ProcessEnvironment.glob("/usr/lib/python3*/site-packages")
    folders += ProcessEnvironment.glob("/usr/lib/python3/dist-packages")
    return folders
  }
}
