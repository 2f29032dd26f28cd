import Testing
import FlashAttentionCore
@testable import FlashAttentionCUDA

@Suite("CUDA environment probe")
struct EnvironmentTests {
  @Test("the probe either finds a usable backend or says what is missing")
  func probeExplains() {
    let report = CUDAEnvironmentReport.probe()
    if report.isUsable {
      #expect(report.driverLibrary != nil && report.nvrtcLibrary != nil)
    } else {
      #expect(!report.problems.isEmpty)
      if report.driverLibrary == nil {
        #expect(report.problems.contains { $0.contains("libcuda") })
      }
      if report.nvrtcLibrary == nil {
        #expect(report.problems.contains { $0.contains("pip install nvidia-cuda-nvrtc") })
      }
    }
  }

  @Test("the backend refuses cleanly without a driver")
  func backendUnavailable() {
    guard case .failure = CUDADriverAPI.shared else { return }
    #expect(throws: FlashAttentionError.self) { try CUDABackend(device: 0) }
  }

  @Test("NVRTC search honours FLASH_ATTENTION_NVRTC first")
  func searchOrder() {
    let paths = NVRTCAPI.searchPaths()
    #expect(paths.contains("libnvrtc.so.13"))
    if let override = ProcessEnvironment.value("FLASH_ATTENTION_NVRTC") {
      #expect(paths.first == override)
    }
  }
}
