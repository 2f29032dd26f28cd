import ArgumentParser
import FlashAttention
import FlashAttentionTools

// Shared option types of every subcommand (`--device`, `--dtype`), defined once here so that
// each command parses them the same way.

extension BackendChoice: ExpressibleByArgument {
  /// `cpu`, `cuda`, `cuda:N`, `auto`.
  public init?(argument: String) {
    self.init(parsing: argument)
  }

  public static var allValueStrings: [String] { ["cpu", "cuda", "cuda:N", "auto"] }
}

extension DType: ExpressibleByArgument {
  /// `float32`/`fp32`/`f32`, `float16`/`fp16`/`f16`/`half`, `bfloat16`/`bf16`,
  /// `fp8`/`e4m3`/`float8_e4m3fn`.
  public init?(argument: String) {
    switch argument.lowercased() {
    case "float32", "fp32", "f32": self = .float32
    case "float16", "fp16", "f16", "half": self = .float16
    case "bfloat16", "bf16": self = .bfloat16
    case "float8_e4m3fn", "float8e4m3", "fp8", "e4m3": self = .float8E4M3
    default: return nil
    }
  }
}
