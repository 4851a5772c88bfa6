/**
 * Protocol metrics and status sections (issue 16) for the DHT and pubsub:
 * `libp2p_kad_…` and `libp2p_pubsub_…` series move with what the node does,
 * and the status snapshot carries a `dht` and a `pubsub` section.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Stream } from "effect"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Metrics from "../../src/observability/Metrics.ts"
import * as Status from "../../src/observability/Status.ts"
import * as Gossipsub from "../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { connect, kadNode } from "../protocols/kad/support.ts"
import * as Prometheus from "../support/prometheus.ts"
import { decode, pubsubNode, text, waitFor } from "../support/pubsub.ts"

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

  it.live(
    "gossipsub: publish and delivery counters, topics and mesh gauges, peer scores; `pubsub` section",
    () =>
      Effect.gen(function*() {
        const gossipNode = Effect.map(
          pubsubNode(Gossipsub.layer({ heartbeatInterval: "50 millis", heartbeatInitialDelay: "10 millis" })),
          (n) => ({ ...n, gossipsub: Context.get(n.context, Gossipsub.Gossipsub) })
        )
        const a = yield* gossipNode
        const b = yield* gossipNode
        yield* a.pubsub.subscribe("t")
        const sub = yield* b.pubsub.subscribe("t")
        yield* a.host.dial(b.addr)
        yield* waitFor(() => a.gossipsub.mesh("t").length === 1 && b.gossipsub.mesh("t").length === 1)
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        yield* a.pubsub.publish("t", text("hi"))
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["hi"])

        const ma = metricsOf(a.context)
        expect(Prometheus.value(ma, "libp2p_pubsub_messages_total", { outcome: "published" })).toBe(1)
        const mb = metricsOf(b.context)
        expect(Prometheus.value(mb, "libp2p_pubsub_messages_total", { outcome: "delivered" })).toBe(1)
        expect(Prometheus.value(mb, "libp2p_pubsub_messages_total", { outcome: "published" })).toBe(0)
        expect(Prometheus.value(mb, "libp2p_pubsub_topics")).toBe(1)
        // gauges and the score histogram are set at the heartbeat (every 50 ms here)
        yield* waitFor(() => Prometheus.value(metricsOf(b.context), "libp2p_pubsub_mesh_peers", { topic: "t" }) === 1)
        expect(Prometheus.value(metricsOf(b.context), "libp2p_pubsub_peer_score_count")).toBeGreaterThan(0)

        const status = yield* statusOf(b.context)
        expect(status.sections.pubsub).toEqual({
          router: "gossipsub",
          topics: ["t"],
          mesh: { t: { count: 1, peers: [PeerId.toString(a.host.peerId)] } }
        })
      }).pipe(Effect.provide(Memory.layerNetwork)),
    30_000
  )
})
