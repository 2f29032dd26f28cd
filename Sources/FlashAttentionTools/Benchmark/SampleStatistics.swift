/// Median and minimum of timing samples (milliseconds).
package struct SampleStatistics: Sendable, Equatable {
  package var median: Double
  package var minimum: Double

  /// nil for no samples. An even count takes the mean of the two middle samples.
  package init?(_ samples: [Double]) {
    if samples.isEmpty { return nil }
    let sorted = samples.sorted()
    let middle = sorted.count / 2
    median = sorted.count % 2 == 1 ? sorted[middle] : 0.5 * (sorted[middle - 1] + sorted[middle])
    minimum = sorted[0]
  }
}
