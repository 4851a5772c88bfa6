/**
 * The host's metrics (Prometheus names `libp2p_…`), after
 * `go:p2p/net/swarm/swarm_metrics.go`: connections opened and closed (counted
 * where the Host registers and releases a connection; closed ones by
 * `Connection.CloseReason`), dial attempts by outcome
 * (one per address the Dialer tries), and the gauges of open connections and
 * streams, which the status collector (`observability/Metrics.ts`) sets from
 * the Host's table at scrape time — exact, and nothing on the data path.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"
import type * as Connection from "../connection/Connection.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import { labelled } from "../internal/metrics.ts"

export const connectionsOpened = labelled(
  Metric.counter("libp2p_connections_opened_total", { description: "Connections opened", incremental: true }),
  "direction",
  "transport",
  "security",
  "muxer"
)

export const connectionsClosed = labelled(
  Metric.counter("libp2p_connections_closed_total", {
    description: "Connections closed, by why (local, remote, error, timeout, trimmed, limit)",
    incremental: true
  }),
  "direction",
  "transport",
  "security",
  "muxer",
  "reason"
)

/** One per address tried: `outcome` is `success` or the failure's kind (e.g. `Refused`, `Timeout`, `Security`). */
export const dialAttempts = labelled(
  Metric.counter("libp2p_dial_attempts_total", { description: "Dial attempts, by outcome", incremental: true }),
  "transport",
  "outcome"
)

export const connections = labelled(
  Metric.gauge("libp2p_connections", { description: "Open connections" }),
  "direction",
  "transport",
  "security",
  "muxer"
)

export const streams = labelled(
  Metric.gauge("libp2p_streams", { description: "Open streams" }),
  "protocol",
  "direction"
)

const transportNames = new Set(["tcp", "ws", "wss", "tls", "unix", "memory", "p2p-circuit", "quic-v1", "webrtc"])

/** The transport of an address as a bounded label: its last transport-ish component (`ws` over `tcp` is `ws`). */
export const transportOf = (addr: Multiaddr.Multiaddr): string => {
  let name = "other"
  for (const c of addr.components) {
    if (c.name === "p2p-circuit") return "p2p-circuit"
    if (transportNames.has(c.name)) name = c.name === "tls" ? name : c.name
  }
  return name
}

/** A connection's label values: direction, transport, security, muxer. */
export const labelsOf = (c: Connection.Connection): [string, string, string, string] => [
  c.direction,
  transportOf(c.remoteAddr),
  c.security,
  c.muxer
]
