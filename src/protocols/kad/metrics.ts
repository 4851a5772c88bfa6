/**
 * Kad-DHT's metrics (Prometheus names `libp2p_kad_…`), after
 * go-libp2p-kad-dht's `metrics/metrics.go` (received messages by type, sent
 * requests, routing table size). Recorded in `Kad.ts` through a `Recorder`
 * captured when Kad is built: one update per query and per inbound request,
 * never per byte. Labels take values from fixed sets: the query and message
 * types below (an unknown inbound type reads "other") and the outcome
 * (`ok` or the `KadError` reason's tag).
 *
 * @since 0.2.0
 */
import { Metric } from "effect"
import { labelled } from "../../internal/metrics.ts"
import { MessageType } from "./messages.ts"

/** The query kinds Kad runs (the public operations). */
export type QueryType = "find_node" | "get_value" | "put_value" | "add_provider" | "get_providers"

/** Peers in the routing table (set whenever the table changes). */
export const routingTableSize = Metric.gauge("libp2p_kad_routing_table_size", {
  description: "Peers in the Kad routing table"
})

/** Queries that ended, by type and outcome (`ok` or the KadError reason). */
export const queries = labelled(
  Metric.counter("libp2p_kad_queries_total", { description: "Kad queries, by type and outcome", incremental: true }),
  "type",
  "outcome"
)

/** Query duration, by type. */
export const queryDuration = labelled(
  Metric.histogram("libp2p_kad_query_seconds", {
    description: "Kad query duration",
    boundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
  }),
  "type"
)

/** Requests a lookup sent (one update per lookup, all operations). */
export const lookupRequests = Metric.histogram("libp2p_kad_lookup_requests", {
  description: "Requests sent per Kad lookup",
  boundaries: [3, 5, 10, 15, 20, 30, 40, 60, 80, 120, 200]
})

/** A lookup's depth in hops (the most hops to one of the k closest that answered). */
export const lookupHops = Metric.histogram("libp2p_kad_lookup_hops", {
  description: "Hops of a Kad lookup to the farthest of its k closest answers",
  boundaries: [1, 2, 3, 4, 5, 6, 8, 10, 15, 20]
})

/** Inbound requests, by message type. */
export const inboundRequests = labelled(
  Metric.counter("libp2p_kad_inbound_requests_total", {
    description: "Kad requests received, by message type",
    incremental: true
  }),
  "type"
)

const typeNames = new Map<number, string>(
  Object.entries(MessageType).map(([name, n]) => [n, name.toLowerCase()])
)

/** A message type as a bounded label. */
export const typeLabel = (type: number): string => typeNames.get(type) ?? "other"
