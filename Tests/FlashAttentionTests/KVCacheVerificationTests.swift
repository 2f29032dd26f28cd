import FlashAttention
import FlashAttentionTestSupport
import Testing

/// The KV-cache cases of `verify` on the CPU: the harness itself (NaN-filled caches, shuffled
/// pages, garbage table entries, the appended tokens read back) against a backend that passes,
/// so a GPU failure of the same case points at the kernels. The long d = 128 cases run on the GPU.
@Suite("KV-cache verification cases (CPU)")
struct KVCacheVerificationTests {
  static let smallCases = KVCacheMatrix.standard.filter { $0.capacity <= 200 }.map(\.name)

  @Test("the small cases pass in float32 and bfloat16", arguments: smallCases, [DType.float32, .bfloat16])
  func smallCasesPass(name: String, dtype: DType) throws {
    let testCase = try #require(KVCacheMatrix.standard.first { $0.name == name })
    let result = Verification(engine: try TestEngines.cpu()).run(testCase, dtype: dtype)
    #expect(result.passed, "\(result.summary)")
    #expect(result.checks.contains { $0.name == "out" } && result.checks.contains { $0.name == "lse" })
    #expect(result.checks.contains { $0.name == "cache" } == (testCase.newTokens > 0))
  }

  @Test("every case has a unique kv- name, and the matrix covers the layouts and split counts")
  func matrixCoverage() {
    let cases = KVCacheMatrix.standard
    #expect(Set(cases.map(\.name)).count == cases.count)
    #expect(cases.allSatisfy { $0.name.hasPrefix("kv-") })
    let pageSizes = Set(cases.compactMap(\.pageSize))
    #expect(pageSizes.isSuperset(of: [1, 3, 16, 256]))
    #expect(cases.contains { $0.pageSize == nil && !$0.batchIndex } && cases.contains { $0.batchIndex })
    #expect(cases.contains { $0.numSplits == 1 } && cases.contains { $0.numSplits == 0 } && cases.contains { $0.numSplits > 100 })
    #expect(cases.contains { $0.newTokens > 0 } && cases.contains { $0.queries * $0.headsQ / $0.headsKV > 16 })
  }
}
