#!/usr/bin/env bash
# Proves that the library is a usable SwiftPM dependency (issue #13, item 1): SwiftPM refuses
# unsafe build flags in any package resolved by version, so this resolves the repository the way
# a user does. It clones the repository at HEAD into a temporary directory, tags the clone
# 0.1.0, makes a consumer package that depends on it by version
# (`.package(url: "file://...", from: "0.1.0")`), builds the consumer in release mode and runs a
# forward and a backward pass through the public API on the CPU (each instruction set the CPU
# has) against a float64 reference written inside the consumer. Exit status 0 only if all of
# that works.
#
#   scripts/check-consumer-package.sh          # about 3 minutes on 2 cores
#
# Uncommitted changes are not part of the check (it builds HEAD, as a user's resolution would).
set -euo pipefail
repository="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"
head="$(git -C "$repository" rev-parse HEAD)"
work="$(mktemp -d "${TMPDIR:-/tmp}/flash-attention-consumer.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== cloning $repository at $head"
git clone --quiet --no-checkout "$repository" "$work/flash-attention-swift"
git -C "$work/flash-attention-swift" checkout --quiet "$head"
git -C "$work/flash-attention-swift" tag -f 0.1.0 > /dev/null

mkdir -p "$work/consumer/Sources/consumer"
cat > "$work/consumer/Package.swift" <<EOF
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
  name: "consumer",
  platforms: [.macOS(.v15)],
  dependencies: [
    .package(url: "file://$work/flash-attention-swift", from: "0.1.0"),
  ],
  targets: [
    .executableTarget(
      name: "consumer",
      dependencies: [.product(name: "FlashAttention", package: "flash-attention-swift")]),
  ]
)
EOF

cat > "$work/consumer/Sources/consumer/main.swift" <<'EOF'
import FlashAttention

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// Standard attention in float64 on contiguous `[b, s, h, d]` arrays: O, LSE and the gradients
/// of sum(O · dO), straight from the definitions.
struct Reference {
  var out: [Double] = [], lse: [Double] = [], dQ: [Double] = [], dK: [Double] = [], dV: [Double] = []

  init(q: [Float], k: [Float], v: [Float], dOut: [Float], shape s: AttentionShape, causal: Bool) {
    let scale = 1 / Double(s.headDim).squareRoot()
    out = Array(repeating: 0, count: s.oShape.reduce(1, *))
    lse = Array(repeating: -.infinity, count: s.lseShape.reduce(1, *))
    dQ = Array(repeating: 0, count: q.count)
    dK = Array(repeating: 0, count: k.count)
    dV = Array(repeating: 0, count: v.count)
    let (d, dv) = (s.headDim, s.headDimV)
    for b in 0..<s.batch {
      for h in 0..<s.headsQ {
        let g = h / (s.headsQ / s.headsKV)
        for i in 0..<s.seqlenQ {
          let last = causal ? min(s.seqlenK, i + s.seqlenK - s.seqlenQ + 1) : s.seqlenK
          if last <= 0 { continue }
          let qi = ((b * s.seqlenQ + i) * s.headsQ + h) * d
          let oi = ((b * s.seqlenQ + i) * s.headsQ + h) * dv
          var scores = [Double](repeating: 0, count: last)
          for j in 0..<last {
            let kj = ((b * s.seqlenK + j) * s.headsKV + g) * d
            for c in 0..<d { scores[j] += Double(q[qi + c]) * Double(k[kj + c]) }
            scores[j] *= scale
          }
          let top = scores.max() ?? 0
          var p = scores.map { exp($0 - top) }
          let sum = p.reduce(0, +)
          p = p.map { $0 / sum }
          lse[(b * s.headsQ + h) * s.seqlenQ + i] = top + log(sum)
          var dP = [Double](repeating: 0, count: last)
          var rowD = 0.0
          for j in 0..<last {
            let vj = ((b * s.seqlenK + j) * s.headsKV + g) * dv
            for c in 0..<dv {
              out[oi + c] += p[j] * Double(v[vj + c])
              dP[j] += Double(dOut[oi + c]) * Double(v[vj + c])
              dV[vj + c] += p[j] * Double(dOut[oi + c])
            }
            rowD += p[j] * dP[j]
          }
          for j in 0..<last {
            let dS = p[j] * (dP[j] - rowD) * scale
            let kj = ((b * s.seqlenK + j) * s.headsKV + g) * d
            for c in 0..<d {
              dQ[qi + c] += dS * Double(k[kj + c])
              dK[kj + c] += dS * Double(q[qi + c])
            }
          }
        }
      }
    }
  }
}

func relativeError(_ actual: [Float], _ expected: [Double]) -> Double {
  var difference = 0.0, norm = 0.0
  for (a, e) in zip(actual, expected) {
    if e == -.infinity && a == -.infinity { continue }
    if !a.isFinite { return .infinity }
    difference += (Double(a) - e) * (Double(a) - e)
    norm += e * e
  }
  return (difference / max(norm, 1e-300)).squareRoot()
}

/// Uniform values in [-2, 2] from a 64-bit linear congruential generator (fixed seed).
struct Generator {
  var state: UInt64 = 0x9E37_79B9_7F4A_7C15
  mutating func next() -> Float {
    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
    return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 500_000
  }
}

var generator = Generator()

var failed = false
do {
  let engine = try AttentionEngine(backend: .cpu)
  for causal in [false, true] {
    let shape = AttentionShape(batch: 2, seqlenQ: 37, seqlenK: 53, headsQ: 4, headsKV: 2, headDim: 24)
    func values(_ count: Int) -> [Float] { (0..<count).map { _ in generator.next() } }
    let q = values(shape.qShape.reduce(1, *)), k = values(shape.kShape.reduce(1, *))
    let v = values(shape.vShape.reduce(1, *)), dOut = values(shape.oShape.reduce(1, *))
    let tensors = (
      q: HostTensor(q, shape: shape.qShape), k: HostTensor(k, shape: shape.kShape),
      v: HostTensor(v, shape: shape.vShape), dOut: HostTensor(dOut, shape: shape.oShape))
    let options = AttentionOptions(causal: causal)
    let (out, lse) = try engine.forward(q: tensors.q, k: tensors.k, v: tensors.v, options: options)
    let (dQ, dK, dV) = try engine.backward(
      q: tensors.q, k: tensors.k, v: tensors.v, out: out, lse: lse, dOut: tensors.dOut, options: options)
    let reference = Reference(q: q, k: k, v: v, dOut: dOut, shape: shape, causal: causal)
    for (name, actual, expected) in [
      ("out", out, reference.out), ("lse", lse, reference.lse), ("dq", dQ, reference.dQ),
      ("dk", dK, reference.dK), ("dv", dV, reference.dV),
    ] {
      let error = relativeError(actual.floats(), expected)
      let ok = error < 1e-4
      if !ok { failed = true }
      print("\(engine.backend.name) causal=\(causal) \(name): relative error \(error) \(ok ? "ok" : "FAIL")")
    }
  }
} catch {
  print("error: \(error)")
  failed = true
}
exit(failed ? 1 : 0)
EOF

cd "$work/consumer"
echo "== resolving the dependency by version and building the consumer (release)"
swift build -c release --jobs "$(getconf _NPROCESSORS_ONLN)" 2>&1 | tail -n 3
binary="$(swift build -c release --show-bin-path)/consumer"
isas=(avx2)
flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
if [[ " $flags " == *" avx512f "* && " $flags " == *" avx512bw "* && " $flags " == *" avx512cd "* &&
  " $flags " == *" avx512dq "* && " $flags " == *" avx512vl "* ]]; then
  isas+=(avx512)
fi
for isa in "${isas[@]}"; do
  echo "== forward + backward through the public API, FLASH_ATTENTION_CPU_ISA=$isa"
  FLASH_ATTENTION_CPU_ISA="$isa" "$binary"
done
echo "== the consumer package built against flash-attention-swift 0.1.0 ($head) and passed"
