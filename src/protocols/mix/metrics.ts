/**
 * Mix's metrics (Prometheus names `libp2p_mix_…`), after nim-libp2p-mix's
 * `mix_metrics.nim` (messages received/forwarded by role, errors by kind).
 * Recorded in `Mix.ts` from each `MixEvent`; labels take values from fixed
 * sets: the event kind and the `MixError` reason.
 *
 * @since 0.2.0
 */
import { Metric } from "effect"
import { labelled } from "../../internal/metrics.ts"

/** Packets this node handled, by what it did (sent, forwarded, delivered, reply_sent, reply_received, cover_received). */
export const packets = labelled(
  Metric.counter("libp2p_mix_packets_total", { description: "Mix packets handled, by outcome", incremental: true }),
  "outcome"
)

/** Packets dropped, by the MixError reason. */
export const dropped = labelled(
  Metric.counter("libp2p_mix_dropped_total", { description: "Mix packets dropped, by reason", incremental: true }),
  "reason"
)

/** Packets waiting for their delay or their exit delivery. */
export const pending = Metric.gauge("libp2p_mix_pending", { description: "Mix packets waiting to be forwarded" })
