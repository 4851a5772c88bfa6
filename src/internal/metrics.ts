/**
 * Recording metrics into the node's registry: the registry of the context a
 * service was built in (captured once by {@link recorder}), not the caller's.
 * A node's layer graph provides its own `Metric.MetricRegistry`
 * (`layers/Node.ts`), so two nodes in one process keep separate series, and
 * code that runs in a caller's fiber (`host.dial`, `ping`) still records into
 * the node that did the work.
 *
 * Labelled series are made once per label set and kept ({@link Labelled}):
 * every label in this library takes values from a small fixed set (directions,
 * transports, registered protocols + "other", reason tags), never peer ids.
 *
 * @since 0.1.0
 */
import type { Context } from "effect"
import { Effect, Metric } from "effect"

/** Updates metrics in the registry captured when it was made. */
export interface Recorder {
  /** Counter: add `input`; gauge: set it; histogram: observe it. */
  readonly update: <I>(metric: Metric.Metric<I, unknown>, input: I) => void
  /** Counter and gauge: add `input`. */
  readonly modify: <I>(metric: Metric.Metric<I, unknown>, input: I) => void
}

export const recorderOf = (context: Context.Context<never>): Recorder => ({
  update: (metric, input) => metric.updateUnsafe(input, context),
  modify: (metric, input) => metric.modifyUnsafe(input, context)
})

/** A recorder into the current context's registry (call it while building a service). */
export const recorder: Effect.Effect<Recorder> = Effect.map(Effect.context<never>(), recorderOf)

/** A metric's series by label values, each made on first use and kept (bounded label sets only). */
export class Labelled<I, S> {
  readonly base: Metric.Metric<I, S>
  readonly names: ReadonlyArray<string>
  readonly series = new Map<string, Metric.Metric<I, S>>()
  constructor(base: Metric.Metric<I, S>, names: ReadonlyArray<string>) {
    this.base = base
    this.names = names
  }
  /** The series for `values` (in the order of `names`). */
  with(...values: ReadonlyArray<string>): Metric.Metric<I, S> {
    const key = values.join("\u0000")
    let m = this.series.get(key)
    if (m === undefined) {
      const attributes: Record<string, string> = {}
      for (let i = 0; i < this.names.length; i++) attributes[this.names[i]!] = values[i] ?? ""
      m = Metric.withAttributes(this.base, attributes)
      this.series.set(key, m)
    }
    return m
  }
}

export const labelled = <I, S>(base: Metric.Metric<I, S>, ...names: ReadonlyArray<string>) => new Labelled(base, names)

/** Gauges set from a count per label set; sets seen before and gone now read 0. */
export class GaugeSet {
  readonly metric: Labelled<number, unknown>
  seen = new Set<string>()
  constructor(metric: Labelled<number, unknown>) {
    this.metric = metric
  }
  set(counts: Map<string, number>, rec: Recorder): void {
    for (const key of this.seen) if (!counts.has(key)) rec.update(this.metric.with(...key.split("\u0000")), 0)
    for (const [key, n] of counts) rec.update(this.metric.with(...key.split("\u0000")), n)
    this.seen = new Set(counts.keys())
  }
}

/** A lower error's kind as a bounded label: its own `reason` when that is a string, else its tag. */
export const kindOf = (e: { readonly _tag: string; readonly reason?: unknown }): string =>
  typeof e.reason === "string" ? e.reason : e._tag
