extension NPYFile {
  /// The parsed header of a `.npy` file: dtype, shape and where the data starts.
  struct Header: Equatable {
    var dtype: DType
    var shape: [Int]
    var dataOffset: Int

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Where the header dictionary lies, from the magic, the version and the length field (the
    /// first 10 or 12 bytes); `bytes` may stop there.
    static func extent(_ bytes: [UInt8], fail: (String) -> FlashAttentionError) throws(FlashAttentionError) -> Range<Int> {
      guard bytes.count >= 10, Array(bytes[0..<6]) == magic else {
        throw fail("not a .npy file (no \\x93NUMPY magic)")
      }
      let major = bytes[6]
      let minor = bytes[7]
      guard (1...3).contains(major), minor == 0 else {
        throw fail("unsupported .npy version \(major).\(minor)")
      }
      let lengthBytes = major == 1 ? 2 : 4
      guard bytes.count >= 8 + lengthBytes else { throw fail("truncated .npy header") }
      var headerLength = 0
      for index in 0..<lengthBytes { headerLength |= Int(bytes[8 + index]) << (8 * index) }
      let start = 8 + lengthBytes
      return start..<(start + headerLength)
    }

    /// Parses the magic, the version, the length and the Python-literal dictionary
    /// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` (keys in any order).
    /// `bytes` must hold at least the whole header.
    static func parse(_ bytes: [UInt8], argument: String, path: String) throws(FlashAttentionError) -> Header {
      func fail(_ reason: String) -> FlashAttentionError {
        .invalidArgument(name: argument, value: NPYFile.quoted(path), reason: reason)
      }
      let extent = try extent(bytes, fail: fail)
      guard extent.upperBound <= bytes.count else {
        throw fail("truncated .npy header: \(extent.count) bytes announced, \(bytes.count - extent.lowerBound) present")
      }
      let (start, headerLength) = (extent.lowerBound, extent.count)
      let text = bytes[start..<(start + headerLength)]
      guard text.allSatisfy({ $0 < 0x80 }) else { throw fail("the .npy header is not ASCII") }
      guard text.last == UInt8(ascii: "\n") else { throw fail("the .npy header does not end with a newline") }
      var parser = DictionaryParser(text: Array(text.dropLast()))
      let fields: (descr: String, fortranOrder: Bool, shape: [Int])
      do {
        fields = try parser.parse()
      } catch {
        throw fail("malformed .npy header: \(error.reason)")
      }
      if fields.fortranOrder {
        throw fail("Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)")
      }
      let dtype = try dtype(descr: fields.descr, fail: fail)
      return Header(dtype: dtype, shape: fields.shape, dataOffset: start + headerLength)
    }

    /// The byte count of the data the shape announces, checked against the `available` bytes
    /// after the header: fewer is a truncated file, more a corrupt one.
    func dataByteCount(available: Int, argument: String, path: String) throws(FlashAttentionError) -> Int {
      func fail(_ reason: String) -> FlashAttentionError {
        .invalidArgument(name: argument, value: NPYFile.quoted(path), reason: reason)
      }
      // The row-major strides of the tensor count empty axes as 1, so an empty shape must be
      // expressible too: (0, 2^40, 2^40, 8) holds no data but has no strides either.
      guard let span = CheckedSize.denseSpan(shape), CheckedSize.byteCount(elements: span, dtype: dtype) != nil,
        let elements = CheckedSize.elementCount(shape), let bytes = CheckedSize.byteCount(elements: elements, dtype: dtype)
      else {
        throw fail("shape \(shape) is too large: its sizes (empty ones counted as 1) multiply to more than 2^62 bytes")
      }
      if available < bytes {
        throw fail("truncated .npy: shape \(shape) needs \(bytes) data bytes, the file has \(available)")
      }
      if available > bytes {
        throw fail("corrupt .npy: \(available - bytes) bytes beyond the data of shape \(shape)")
      }
      return bytes
    }

    /// Maps a NumPy type string to a storage dtype, with a remedy for each refusal.
    static func dtype(descr: String, fail: (String) -> FlashAttentionError) throws(FlashAttentionError) -> DType {
      switch descr {
      case "<f4": return .float32
      case "<f2": return .float16
      default: break
      }
      let order = descr.first
      let kind = descr.dropFirst().first
      let size = descr.dropFirst(2)
      if order == ">" && kind == "f" {
        throw fail("big-endian dtype '\(descr)'; save with .astype('<f\(size)')")
      }
      if descr == "|u1" || descr == "|V1" {
        throw fail("8-bit dtype '\(descr)': .npy has no float8 type, so fp8 inputs are not read from .npy; save float32 (.astype(np.float32)) or call the library with float8_e4m3fn tensors")
      }
      if let kind, "iub".contains(kind) {
        throw fail("integer or boolean dtype '\(descr)'; attention needs float32 or float16 (.astype(np.float32))")
      }
      if kind == "f" && size == "8" {
        throw fail("float64 dtype '\(descr)' is not supported; save with .astype(np.float32)")
      }
      throw fail("unsupported dtype '\(descr)'; expected '<f4' (float32) or '<f2' (float16)")
    }

    /// A version 1.0 header for `dtype` and `shape`, padded so the data starts 64-byte aligned.
    static func encode(dtype: DType, shape: [Int], argument: String) throws(FlashAttentionError) -> [UInt8] {
      let descr: String
      switch dtype {
      case .float32: descr = "<f4"
      case .float16: descr = "<f2"
      case .bfloat16:
        throw .invalidArgument(
          name: argument, value: "bfloat16", reason: ".npy has no bfloat16 type; convert to float32 first")
      case .float8E4M3:
        throw .invalidArgument(
          name: argument, value: "float8_e4m3fn",
          reason: ".npy has no float8 type (ml_dtypes writes it as raw bytes); convert to float32 first")
      }
      let shapeText =
        shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
      var dictionary = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
      let unpadded = magic.count + 2 + 2 + dictionary.utf8.count + 1
      dictionary += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
      let length = dictionary.utf8.count
      return magic + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)] + Array(dictionary.utf8)
    }
  }

  /// A failure inside the header dictionary, turned into a `FlashAttentionError` by the caller.
  struct HeaderSyntaxError: Error {
    var reason: String
  }

  /// A strict parser for the one Python literal NumPy writes: a dict with exactly the keys
  /// `descr` (a string), `fortran_order` (a bool) and `shape` (a tuple of non-negative ints).
  struct DictionaryParser {
    var text: [UInt8]
    var position = 0

    init(text: [UInt8]) { self.text = text }

    mutating func parse() throws(HeaderSyntaxError) -> (descr: String, fortranOrder: Bool, shape: [Int]) {
      var descr: String?
      var fortranOrder: Bool?
      var shape: [Int]?
      try expect("{")
      while true {
        skipSpaces()
        if peek() == UInt8(ascii: "}") { break }
        let key = try string()
        try expect(":")
        switch key {
        case "descr" where descr == nil:
          skipSpaces()
          if peek() != UInt8(ascii: "'") && peek() != UInt8(ascii: "\"") {
            throw HeaderSyntaxError(reason: "structured dtypes are not supported")
          }
          descr = try string()
        case "fortran_order" where fortranOrder == nil:
          fortranOrder = try bool()
        case "shape" where shape == nil:
          shape = try tuple()
        default:
          throw HeaderSyntaxError(reason: "unexpected or repeated key '\(key)'")
        }
        skipSpaces()
        if peek() == UInt8(ascii: ",") {
          position += 1
        } else {
          skipSpaces()
          guard peek() == UInt8(ascii: "}") else { throw HeaderSyntaxError(reason: "expected ',' or '}'") }
        }
      }
      position += 1
      skipSpaces()
      guard position == text.count else { throw HeaderSyntaxError(reason: "text after the dictionary") }
      guard let descr, let fortranOrder, let shape else {
        throw HeaderSyntaxError(reason: "needs the keys 'descr', 'fortran_order' and 'shape'")
      }
      return (descr, fortranOrder, shape)
    }

    func peek() -> UInt8? { position < text.count ? text[position] : nil }

    mutating func skipSpaces() {
      while let byte = peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { position += 1 }
    }

    mutating func expect(_ character: Unicode.Scalar) throws(HeaderSyntaxError) {
      skipSpaces()
      guard peek() == UInt8(ascii: character) else {
        throw HeaderSyntaxError(reason: "expected '\(character)' at offset \(position)")
      }
      position += 1
    }

    mutating func string() throws(HeaderSyntaxError) -> String {
      skipSpaces()
      guard let quote = peek(), quote == UInt8(ascii: "'") || quote == UInt8(ascii: "\"") else {
        throw HeaderSyntaxError(reason: "expected a quoted string at offset \(position)")
      }
      position += 1
      let start = position
      while let byte = peek(), byte != quote {
        guard byte != UInt8(ascii: "\\") else { throw HeaderSyntaxError(reason: "escapes are not supported") }
        position += 1
      }
      guard peek() == quote else { throw HeaderSyntaxError(reason: "unterminated string") }
      let value = String(decoding: text[start..<position], as: UTF8.self)
      position += 1
      return value
    }

    mutating func bool() throws(HeaderSyntaxError) -> Bool {
      skipSpaces()
      for (word, value) in [("True", true), ("False", false)] {
        let bytes = Array(word.utf8)
        if position + bytes.count <= text.count, Array(text[position..<(position + bytes.count)]) == bytes {
          position += bytes.count
          return value
        }
      }
      throw HeaderSyntaxError(reason: "expected True or False at offset \(position)")
    }

    mutating func tuple() throws(HeaderSyntaxError) -> [Int] {
      try expect("(")
      var values: [Int] = []
      while true {
        skipSpaces()
        if peek() == UInt8(ascii: ")") { break }
        values.append(try integer())
        skipSpaces()
        if peek() == UInt8(ascii: ",") {
          position += 1
        } else {
          guard peek() == UInt8(ascii: ")") else { throw HeaderSyntaxError(reason: "expected ',' or ')' in shape") }
        }
      }
      position += 1
      return values
    }

    mutating func integer() throws(HeaderSyntaxError) -> Int {
      let start = position
      var value = 0
      while let byte = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
        let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
        let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
        guard !overflow1, !overflow2 else { throw HeaderSyntaxError(reason: "shape entry too large") }
        value = sum
        position += 1
      }
      guard position > start else {
        throw HeaderSyntaxError(reason: "expected a non-negative integer in shape at offset \(position)")
      }
      return value
    }
  }
}
