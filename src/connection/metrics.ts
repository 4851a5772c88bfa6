/**
 * The connection layer's metrics (Prometheus names `libp2p_…`), after go's
 * per-package `metrics.go` files (`go:p2p/net/swarm/swarm_metrics.go`,
 * `go:p2p/host/resource-manager/stats.go`). Recorded in place through a
 * {@link Recorder} captured when the Upgrader and the ConnectionManager are
 * built; nothing is recorded per frame or per chunk.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"
import { labelled } from "../internal/metrics.ts"

/** Seconds from the first byte of the security negotiation to the multiplexed connection. */
export const handshakeDuration = labelled(
  Metric.histogram("libp2p_connection_handshake_seconds", {
    description: "Connection upgrade (security + muxer negotiation) duration",
    boundaries: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
  }),
  "direction",
  "security",
  "muxer"
)

/** Upgrades that failed, by the UpgradeError's reason. */
export const handshakeFailures = labelled(
  Metric.counter("libp2p_connection_handshake_failures_total", {
    description: "Connection upgrades that failed, by reason",
    incremental: true
  }),
  "direction",
  "reason"
)

/** Streams opened (negotiated), by protocol (registered ones, else "other") and direction. */
export const streamsOpened = labelled(
  Metric.counter("libp2p_streams_opened_total", { description: "Streams opened", incremental: true }),
  "protocol",
  "direction"
)

/** Connections the connection manager closed while trimming, by the trim's reason. */
export const trims = labelled(
  Metric.counter("libp2p_connmgr_trimmed_total", {
    description: "Connections closed by the connection manager's trimming",
    incremental: true
  }),
  "reason"
)

/** Connections refused by the connection manager's hard cap. */
export const refused = labelled(
  Metric.counter("libp2p_connmgr_refused_total", {
    description: "Connections refused at the connection manager's maxConnections",
    incremental: true
  }),
  "direction"
)

/** Reservations the resource manager refused, by scope and resource (filled from its stats at scrape time). */
export const resourceBlocks = labelled(
  Metric.counter("libp2p_rcmgr_blocked_total", {
    description: "Reservations the resource manager refused",
    incremental: true
  }),
  "scope",
  "resource"
)
