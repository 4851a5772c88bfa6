/**
 * Ping's metrics: the round-trip times this node measured (go reports the
 * RTT per peer in its peerstore; a histogram keeps the label set bounded).
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

export const rtt = Metric.histogram("libp2p_ping_rtt_seconds", {
  description: "Ping round-trip time",
  boundaries: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]
})

export const failures = Metric.counter("libp2p_ping_failures_total", {
  description: "Pings that failed",
  incremental: true
})
