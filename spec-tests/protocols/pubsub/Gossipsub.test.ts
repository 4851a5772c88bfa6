/**
 * Gossipsub over the memory transport (libp2p specs pubsub/gossipsub v1.0–v1.2).
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Stream } from "effect"
import * as Floodsub from "../../../src/protocols/pubsub/floodsub/Floodsub.ts"
import * as Gossipsub from "../../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { decode, pubsubNode, text, waitFor } from "../../support/pubsub.ts"

const gossipNode = (options: Gossipsub.GossipsubOptions = {}) =>
  Effect.map(
    pubsubNode(Gossipsub.layer({ heartbeatInterval: "50 millis", heartbeatInitialDelay: "10 millis", ...options })),
    (n) => ({ ...n, gossipsub: Context.get(n.context, Gossipsub.Gossipsub) })
  )

describe("gossipsub", () => {
  it("gossipsub-v1.1 §Outbound Mesh Quotas: Dout is set below Dlo and at most D/2, whatever is configured [gossipsub-v1.1:outbound-mesh-quotas:1]", () => {
    const cases: Array<[Gossipsub.GossipsubParamsInput, number]> = [
      [{}, 2],
      [{ D: 6, Dlo: 2, Dout: 3 }, 1],
      [{ D: 8, Dlo: 6, Dout: 10 }, 4],
      [{ D: 1, Dlo: 1, Dout: 1 }, 0]
    ]
    for (const [input, dout] of cases) {
      const p = Gossipsub.resolveParams(input)
      expect(p.Dout).toBe(dout)
      expect(p.Dout === 0 || p.Dout < p.Dlo).toBe(true)
      expect(p.Dout).toBeLessThanOrEqual(p.D / 2)
    }
  })

  it.live(
    "gossipsub-v1.0 §GRAFT: two subscribed peers graft each other and exchange messages [gossipsub-v1.0:topic-membership:1] [gossipsub-v1.0:ambient-peer-discovery:1]",
    () =>
      Effect.gen(function*() {
        const a = yield* gossipNode()
        const b = yield* gossipNode()
        yield* a.pubsub.subscribe("t")
        const sub = yield* b.pubsub.subscribe("t")
        yield* a.host.dial(b.addr)
        yield* waitFor(() => a.gossipsub.mesh("t").length === 1 && b.gossipsub.mesh("t").length === 1)
        expect(a.gossipsub.peerProtocol(b.host.peerId)).toBe(Gossipsub.PROTOCOL_V12)
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        yield* a.pubsub.publish("t", text("hi"))
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["hi"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "gossipsub-v1.0 §Message Propagation: a line of 4 nodes without flood publish delivers through the mesh",
    () =>
      Effect.gen(function*() {
        const nodes = yield* Effect.forEach([0, 1, 2, 3], () => gossipNode({ floodPublish: false }))
        const subs = yield* Effect.forEach(nodes, (n) => n.pubsub.subscribe("t"))
        for (let i = 0; i + 1 < nodes.length; i++) yield* nodes[i]!.host.dial(nodes[i + 1]!.addr)
        yield* waitFor(() => nodes.every((n, i) => n.gossipsub.mesh("t").length === (i === 0 || i === 3 ? 1 : 2)))
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(subs[3]!, 2)))
        yield* nodes[0]!.pubsub.publish("t", text("1"))
        yield* nodes[0]!.pubsub.publish("t", text("2"))
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["1", "2"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live("gossipsub-v1.0 §Fanout: a publisher not subscribed sends to fanout peers", () =>
    Effect.gen(function*() {
      const a = yield* gossipNode({ floodPublish: false })
      const b = yield* gossipNode()
      const sub = yield* b.pubsub.subscribe("t")
      yield* a.host.dial(b.addr)
      yield* waitFor(() => a.pubsub.peers("t").length === 1)
      const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
      const r = yield* a.pubsub.publish("t", text("fan"))
      expect(r.recipients).toBe(1)
      expect(a.gossipsub.fanout("t")).toHaveLength(1)
      expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["fan"])
    }).pipe(Effect.provide(Memory.layerNetwork)), 20_000)

  it.live(
    "gossipsub-v1.0 §Protocol: a gossipsub node speaks /floodsub/1.0.0 to a floodsub peer, both ways",
    () =>
      Effect.gen(function*() {
        const g = yield* gossipNode()
        const f = yield* pubsubNode(Floodsub.layer())
        const subG = yield* g.pubsub.subscribe("t")
        const subF = yield* f.pubsub.subscribe("t")
        yield* f.host.dial(g.addr)
        yield* waitFor(() => g.pubsub.peers("t").length === 1 && f.pubsub.peers("t").length === 1)
        expect(g.gossipsub.peerProtocol(f.host.peerId)).toBe(Floodsub.PROTOCOL)
        const gotG = yield* Effect.forkChild(Stream.runCollect(Stream.take(subG, 1)))
        const gotF = yield* Effect.forkChild(Stream.runCollect(Stream.take(subF, 1)))
        yield* f.pubsub.publish("t", text("from flood"))
        yield* g.pubsub.publish("t", text("from gossip"))
        expect((yield* Fiber.join(gotG)).map((m) => decode(m.data))).toEqual(["from flood"])
        expect((yield* Fiber.join(gotF)).map((m) => decode(m.data))).toEqual(["from gossip"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "gossipsub-v1.1 §Explicit Peering Agreements: a direct peer is dialed, never in the mesh, and gets every message [gossipsub-v1.1:explicit-peering-agreements:1]",
    () =>
      Effect.gen(function*() {
        const b = yield* gossipNode()
        const a = yield* gossipNode({ directPeers: [b.addr], floodPublish: false })
        yield* a.pubsub.subscribe("t")
        const sub = yield* b.pubsub.subscribe("t")
        // a dials b by itself at its first heartbeat
        yield* waitFor(() => a.pubsub.peers("t").length === 1 && b.pubsub.peers("t").length === 1)
        yield* Effect.sleep("200 millis")
        // b grafts a, a refuses (PRUNE): no mesh on either side
        expect(a.gossipsub.mesh("t")).toEqual([])
        expect(b.gossipsub.mesh("t")).toEqual([])
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        const r = yield* a.pubsub.publish("t", text("direct"))
        expect(r.recipients).toBe(1)
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["direct"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )
})
