/**
 * Protocol metrics and status sections (issue 16) for the DHT and pubsub:
 * `libp2p_kad_…` and `libp2p_pubsub_…` series move with what the node does,
 * and the status snapshot carries a `dht` and a `pubsub` section.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect } from "effect"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as Status from "../../src/observability/Status.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { connect, kadNode } from "../protocols/kad/support.ts"
import * as Prometheus from "../support/prometheus.ts"

const metricsOf = (ctx: Context.Context<any>) => Prometheus.parse(Metrics.formatOf(ctx))
const statusOf = (ctx: Context.Context<any>) => Effect.provideContext(Status.snapshot, ctx)

describe("protocol metrics and status sections", () => {
  it.live(
    "kad-dht: a lookup counts a find_node query on the asker and FIND_NODE requests on the server; `dht` section",
    () =>
      Effect.gen(function*() {
        const server = yield* kadNode({ mode: "server" })
        const client = yield* kadNode({ mode: "client" })
        yield* connect(client, server)
        expect(client.kad.peers().length).toBe(1)
        const before = metricsOf(server.context)
        expect(Prometheus.value(before, "libp2p_kad_inbound_requests_total", { type: "find_node" })).toBe(0)

        yield* client.kad.getClosestPeers(PeerId.toBytes(server.host.peerId))
        const c = metricsOf(client.context)
        expect(Prometheus.value(c, "libp2p_kad_queries_total", { type: "find_node", outcome: "ok" })).toBe(1)
        expect(Prometheus.value(c, "libp2p_kad_query_seconds_count", { type: "find_node" })).toBe(1)
        expect(Prometheus.value(c, "libp2p_kad_routing_table_size")).toBe(1)
        const s = metricsOf(server.context)
        expect(Prometheus.value(s, "libp2p_kad_inbound_requests_total", { type: "find_node" })).toBeGreaterThan(0)

        // a failed query is counted by its reason
        yield* Effect.flip(client.kad.get(new TextEncoder().encode("/v/missing")))
        const failed = metricsOf(client.context)
        const getValue = failed.samples.filter((x) =>
          x.name === "libp2p_kad_queries_total" && x.labels.type === "get_value"
        )
        expect(getValue.map((x) => [x.labels.outcome, x.value])).toEqual([["NotFound", 1]])

        const status = yield* statusOf(client.context)
        expect(status.sections.dht).toEqual({
          mode: "client",
          protocol: "/ipfs/kad/1.0.0",
          routingTableSize: 1,
          buckets: expect.any(Object)
        })
        const buckets = (status.sections.dht as { buckets: Record<string, number> }).buckets
        expect(Object.values(buckets)).toEqual([1])
        expect((yield* statusOf(server.context)).sections.dht).toMatchObject({ mode: "server" })
      }).pipe(Effect.provide(Memory.layerNetwork)),
    30_000
  )
})
