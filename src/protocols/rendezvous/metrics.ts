/**
 * Rendezvous's metrics (Prometheus names `libp2p_rendezvous_…`), after the
 * kad and pubsub rooms: on the rendezvous point, live registrations by
 * namespace, discovers served and refusals by status; on the client, requests
 * by type and outcome. Labels take values from bounded sets: a namespace label
 * is one of the {@link MAX_NAMESPACE_LABELS} namespaces with the most
 * registrations, the rest add up under `"(other)"`; statuses are the spec's
 * names; outcomes `ok` or the `RendezvousError` reason's tag.
 *
 * @since 0.2.0
 */
import { Metric } from "effect"
import { GaugeSet, labelled } from "../../internal/metrics.ts"

/** Namespaces given a label of their own (the ones with the most registrations). */
export const MAX_NAMESPACE_LABELS = 32

/** Live registrations, by namespace (set after each change and each expiry sweep). */
export const registrations = new GaugeSet(labelled(
  Metric.gauge("libp2p_rendezvous_registrations", { description: "Live rendezvous registrations, by namespace" }),
  "namespace"
))

/** Registrations in every namespace. */
export const registrationsTotal = Metric.gauge("libp2p_rendezvous_registrations_all", {
  description: "Live rendezvous registrations in all namespaces"
})

/** `DISCOVER` requests answered with `OK`. */
export const discoversServed = Metric.counter("libp2p_rendezvous_discovers_served_total", {
  description: "Rendezvous DISCOVER requests answered",
  incremental: true
})

/** Requests refused, by status (`E_INVALID_TTL`, `E_NOT_AUTHORIZED`, …; `MALFORMED` for a reset stream). */
export const refusals = labelled(
  Metric.counter("libp2p_rendezvous_refusals_total", {
    description: "Rendezvous requests refused, by status",
    incremental: true
  }),
  "status"
)

/** Requests received, by type. */
export const inboundRequests = labelled(
  Metric.counter("libp2p_rendezvous_inbound_requests_total", {
    description: "Rendezvous requests received, by type",
    incremental: true
  }),
  "type"
)

/** Requests sent by the client, by type and outcome. */
export const clientRequests = labelled(
  Metric.counter("libp2p_rendezvous_client_requests_total", {
    description: "Rendezvous requests sent, by type and outcome",
    incremental: true
  }),
  "type",
  "outcome"
)

/** The counts per namespace folded to the bounded label set. */
export const namespaceLabels = (counts: ReadonlyMap<string, number>): Map<string, number> => {
  const sorted = [...counts].sort((a, b) => b[1] - a[1])
  const out = new Map<string, number>(
    sorted.slice(0, MAX_NAMESPACE_LABELS).map(([ns, n]) => [ns.replaceAll("\u0000", "\ufffd"), n])
  )
  const rest = sorted.slice(MAX_NAMESPACE_LABELS).reduce((n, [, c]) => n + c, 0)
  if (rest > 0) out.set("(other)", rest)
  return out
}
