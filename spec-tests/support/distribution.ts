/** Median, p99 and max of a sample (the simulations' reports). */
export interface Distribution {
  readonly median: number
  readonly p99: number
  readonly max: number
}

/** The {@link Distribution} of `xs` (all 0 when empty). */
export const distribution = (xs: ReadonlyArray<number>): Distribution => {
  if (xs.length === 0) return { median: 0, p99: 0, max: 0 }
  const sorted = xs.toSorted((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1]! }
}
