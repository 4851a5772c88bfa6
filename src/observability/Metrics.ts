/**
 * The node's metrics in the Prometheus text exposition format 0.0.4
 * (`GET /metrics`), through effect's `PrometheusMetrics.formatUnsafe` over the
 * node's own `Metric.MetricRegistry` (`layers/Node.ts` gives each node one).
 *
 * Most series are recorded in place, in each room's `metrics.ts`
 * (`connection/metrics.ts`, `host/metrics.ts`, `protocols/ping/metrics.ts`).
 * What is state rather than an event is read here, at scrape time, so the
 * data path carries no metric updates: the gauges of open connections and
 * streams (from the Host's table), the resource manager's refusals (from its
 * stats), the bytes on the wire (the sockets' own counters) and the stream
 * data bytes per protocol (the muxed streams' own counters, `Host.streamBytes`). A series whose
 * label set is gone (no connection of that kind is left) reads 0.
 *
 * Anchors: `effect:observability/PrometheusMetrics.ts` (`formatUnsafe`,
 * `layerHttp`), go's `p2p/net/swarm/swarm_metrics.go` and
 * `p2p/host/resource-manager/obs/stats.go`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import * as ConnectionMetrics from "../connection/metrics.ts"
import { Registrar } from "../connection/Registrar.ts"
import { ResourceManager } from "../connection/ResourceManager.ts"
import { Host } from "../host/Host.ts"
import * as HostMetrics from "../host/metrics.ts"
import * as Metrics from "../internal/metrics.ts"

export const transportBytes = Metrics.labelled(
  Metric.counter("libp2p_transport_bytes_total", {
    description: "Bytes on the wire (transports that count them: TCP, Unix)",
    incremental: true
  }),
  "direction"
)

/**
 * Data bytes of streams by protocol (registered ones, else "other") and
 * direction, as the muxers count them (payload, not frame headers or
 * encryption); read at scrape time from the Host, nothing on the data path.
 */
export const streamBytes = Metrics.labelled(
  Metric.counter("libp2p_stream_bytes_total", {
    description: "Stream data bytes, by protocol (registered ones, else other) and direction",
    incremental: true
  }),
  "protocol",
  "direction"
)

/** Reads the node's state into its metrics and formats them; one per node (it remembers what it last set). */
export interface Collector {
  /** The metrics text (Prometheus 0.0.4). */
  readonly scrape: Effect.Effect<string>
}

/**
 * Counters mirrored from totals kept elsewhere: each scrape adds what grew
 * since the highest total seen (a total that dips for a moment — a stream
 * between its connection's end and its own — is not counted twice).
 */
class CounterMirror {
  readonly metric: Metrics.Labelled<number, unknown>
  readonly separator: string
  readonly last = new Map<string, number>()
  constructor(metric: Metrics.Labelled<number, unknown>, separator = "/") {
    this.metric = metric
    this.separator = separator
  }
  set(totals: ReadonlyMap<string, number>, rec: Metrics.Recorder): void {
    for (const [key, n] of totals) {
      const delta = n - (this.last.get(key) ?? 0)
      if (delta <= 0) continue
      rec.update(this.metric.with(...key.split(this.separator)), delta)
      this.last.set(key, n)
    }
  }
}

const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1)

export const makeCollector: Effect.Effect<Collector, never, Host | Registrar | ResourceManager> = Effect.gen(
  function*() {
    const host = yield* Host
    const registrar = yield* Registrar
    const resourceManager = yield* ResourceManager
    const context = yield* Effect.context<never>()
    const rec = Metrics.recorderOf(context)
    const connections = new Metrics.GaugeSet(HostMetrics.connections)
    const streams = new Metrics.GaugeSet(HostMetrics.streams)
    const blocks = new CounterMirror(ConnectionMetrics.resourceBlocks)
    const bytes = new CounterMirror(transportBytes)
    // protocol ids contain "/"
    const protocolBytes = new CounterMirror(streamBytes, "\u0000")
    const collect = () => {
      const conns = new Map<string, number>()
      const strs = new Map<string, number>()
      for (const c of host.connections()) {
        bump(conns, HostMetrics.labelsOf(c).join("\u0000"))
        for (const s of c.streams()) {
          const protocol = registrar.lookup(s.protocol) !== undefined ? s.protocol : "other"
          bump(strs, `${protocol}\u0000${s.direction}`)
        }
      }
      connections.set(conns, rec)
      streams.set(strs, rec)
      blocks.set(resourceManager.stats().blocked, rec)
      const b = host.bytes()
      bytes.set(new Map([["in", b.read], ["out", b.written]]), rec)
      const byProtocol = new Map<string, number>()
      for (const [protocol, t] of host.streamBytes()) {
        byProtocol.set(`${protocol}\u0000in`, t.read)
        byProtocol.set(`${protocol}\u0000out`, t.written)
      }
      protocolBytes.set(byProtocol, rec)
    }
    return {
      scrape: Effect.sync(() => {
        collect()
        return PrometheusMetrics.formatUnsafe(context)
      })
    }
  }
)

/** Read a context's metrics without collecting (tests, and nodes built without a Host). */
export const formatOf = (context: Context.Context<never>): string => PrometheusMetrics.formatUnsafe(context)
