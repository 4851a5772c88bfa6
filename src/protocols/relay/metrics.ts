/**
 * Circuit relay v2's metrics (Prometheus names `libp2p_relay_…`), after
 * go-libp2p's `circuitv2/relay/metrics.go` (reservations, circuits, refusals
 * by status, bytes relayed). Recorded by `RelayServer.ts` through a
 * `Recorder` captured when the server is built: one update per reservation,
 * refusal and circuit, never per chunk (bytes are added when a circuit ends).
 * Labels take values from fixed sets: `kind` (`reservation` | `connect` | `hop`,
 * the last for a message that is neither) and
 * the spec's status names; a circuit's `end` (`closed` | `data-limit` |
 * `duration-limit` | `reset`).
 *
 * @since 0.3.0
 */
import { Metric } from "effect"
import { labelled } from "../../internal/metrics.ts"

/** Reservations held now. */
export const reservationsActive = Metric.gauge("libp2p_relay_reservations_active", {
  description: "Circuit relay v2 reservations held by this relay"
})

/** Circuits being relayed now. */
export const circuitsActive = Metric.gauge("libp2p_relay_circuits_active", {
  description: "Circuits this relay is splicing now"
})

/** Requests refused, by kind (`reservation`, `connect`, `hop`) and the status answered. */
export const refused = labelled(
  Metric.counter("libp2p_relay_refused_total", {
    description: "Hop requests refused, by kind and status",
    incremental: true
  }),
  "kind",
  "reason"
)

/** Bytes relayed (both directions), added when each circuit ends. */
export const bytesRelayed = Metric.counter("libp2p_relay_bytes_total", {
  description: "Bytes relayed through circuits, both directions",
  incremental: true
})

/** Circuits that ended, by how (`closed`, `data-limit`, `duration-limit`, `reset`). */
export const circuitsEnded = labelled(
  Metric.counter("libp2p_relay_circuits_total", {
    description: "Relayed circuits that ended, by how they ended",
    incremental: true
  }),
  "end"
)
