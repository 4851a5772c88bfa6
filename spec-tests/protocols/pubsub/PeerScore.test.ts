/**
 * The v1.1 peer score (gossipsub-v1.1.md §Peer Scoring, §The Score Function) under TestClock,
 * and its use by the router: a peer that publishes invalid messages loses score and leaves our
 * mesh; a custom score Layer replaces the function.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Gossipsub from "../../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as PeerScore from "../../../src/protocols/pubsub/gossipsub/PeerScore.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { decode, pubsubNode, text, waitFor } from "../../support/pubsub.ts"

const topic = (over: Partial<PeerScore.TopicScoreParams> = {}) =>
  PeerScore.topicParams({
    firstMessageDeliveriesDecay: 0.5,
    firstMessageDeliveriesCap: 100,
    meshMessageDeliveriesCap: 100,
    meshMessageDeliveriesActivation: "2 seconds",
    ...over
  })

const withScore = (params: PeerScore.PeerScoreParams) =>
  Effect.gen(function*() {
    const key = yield* Keys.generate("Ed25519")
    const score = yield* PeerScore.make(params)
    return { score, peer: PeerId.fromPrivateKey(key) }
  })

describe("gossipsub v1.1 peer score", () => {
  it.effect("§P1 time in mesh: quanta of mesh time, capped [gossipsub-v1.1:overview-of-new-parameters:2]", () =>
    Effect.gen(function*() {
      const { peer, score } = yield* withScore({ topics: { t: topic({ timeInMeshWeight: 2, timeInMeshCap: 5 }) } })
      score.graft(peer, "t")
      yield* TestClock.adjust("3 seconds")
      expect(score.score(peer)).toBe(6)
      yield* TestClock.adjust("10 seconds")
      expect(score.score(peer)).toBe(10) // cap 5 × weight 2
      score.prune(peer, "t")
      expect(score.score(peer)).toBe(0)
    }))

  it.effect("§P6 IP colocation: the surplus of connected peers per IP, squared and weighted; whitelisted CIDRs and departed peers do not count", () =>
    Effect.gen(function*() {
      const score = yield* PeerScore.make({
        topics: {},
        ipColocationFactorWeight: -10,
        ipColocationFactorThreshold: 1,
        ipColocationFactorWhitelist: ["10.1.0.0/16"]
      })
      const peers = yield* Effect.forEach(
        [1, 2, 3, 4],
        () => Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey)
      )
      const [a, b, c, d] = peers as [PeerId.PeerId, PeerId.PeerId, PeerId.PeerId, PeerId.PeerId]
      score.addPeer(a, ma("/ip4/198.51.100.7/tcp/4001"))
      expect(score.score(a)).toBe(0) // alone on its IP
      score.addPeer(b, ma("/ip4/198.51.100.7/tcp/4002"))
      score.addPeer(c, ma("/ip4/198.51.100.7/tcp/4003"))
      expect([a, b, c].map(score.score)).toEqual([-40, -40, -40]) // (3 - 1)^2 × -10
      score.addPeer(d, ma("/ip6/2001:db8::1/tcp/4001"))
      expect(score.score(d)).toBe(0)
      score.removePeer(c)
      expect([a, b].map(score.score)).toEqual([-10, -10]) // (2 - 1)^2 × -10
      // a peer reconnecting from another IP moves
      score.addPeer(b, ma("/ip6/2001:db8::1/tcp/5000"))
      expect([a, b, d].map(score.score)).toEqual([0, -10, -10])
      // whitelisted: never counted
      const w = yield* Effect.forEach([1, 2, 3], () => Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey))
      for (const [i, p] of w.entries()) score.addPeer(p, ma(`/ip4/10.1.2.3/tcp/${4000 + i}`))
      expect(w.map(score.score)).toEqual([0, 0, 0])
    }))

  it("§Score Thresholds: the default thresholds have the signs and order the spec asks for [gossipsub-v1.1:score-thresholds:1] [gossipsub-v1.1:score-thresholds:2] [gossipsub-v1.1:score-thresholds:3] [gossipsub-v1.1:score-thresholds:4] [gossipsub-v1.1:score-thresholds:5]", () => {
    const t = PeerScore.defaultThresholds
    expect(t.gossipThreshold).toBeLessThan(0)
    expect(t.publishThreshold).toBeLessThan(0)
    expect(t.publishThreshold).toBeLessThanOrEqual(t.gossipThreshold)
    expect(t.graylistThreshold).toBeLessThan(t.publishThreshold)
    expect(t.acceptPXThreshold).toBeGreaterThanOrEqual(0)
    expect(t.opportunisticGraftThreshold).toBeGreaterThan(0)
  })

  it.effect("§Topic Parameter Calculation: parameters per topic, keyed by topic; a topic without parameters does not count [gossipsub-v1.1:overview-of-new-parameters:1]", () =>
    Effect.gen(function*() {
      const { peer, score } = yield* withScore({
        topics: {
          a: topic({ firstMessageDeliveriesWeight: 1, topicWeight: 1 }),
          b: topic({ firstMessageDeliveriesWeight: 1, topicWeight: 10 })
        }
      })
      score.deliverMessage(peer, "a", "m1")
      expect(score.score(peer)).toBe(1)
      score.deliverMessage(peer, "b", "m2")
      expect(score.score(peer)).toBe(11)
      score.deliverMessage(peer, "c", "m3")
      expect(score.score(peer)).toBe(11)
    }))

  it.effect("§P2 first message deliveries: counted, capped, decayed every decayInterval", () =>
    Effect.gen(function*() {
      const { peer, score } = yield* withScore({
        topics: { t: topic({ firstMessageDeliveriesWeight: 1, firstMessageDeliveriesCap: 3 }) }
      })
      for (const id of ["a", "b", "c", "d"]) score.deliverMessage(peer, "t", id)
      expect(score.score(peer)).toBe(3)
      yield* TestClock.adjust("1 second")
      expect(score.score(peer)).toBe(1.5)
    }))

  it.effect("§P3/§P3b mesh delivery deficit after activation, and the failure penalty on prune [gossipsub-v1.1:p₃-and-p₃b-mesh-message-delivery:2] [gossipsub-v1.1:overview-of-new-parameters:3]", () =>
    Effect.gen(function*() {
      const { peer, score } = yield* withScore({
        topics: {
          t: topic({
            meshMessageDeliveriesWeight: -1,
            meshMessageDeliveriesThreshold: 4,
            meshFailurePenaltyWeight: -2
          })
        }
      })
      score.graft(peer, "t")
      yield* TestClock.adjust("1 second")
      expect(score.score(peer)).toBe(0) // not active yet
      score.deliverMessage(peer, "t", "m1")
      yield* TestClock.adjust("2 seconds")
      expect(score.score(peer)).toBe(-9) // (4 - 1)^2
      score.prune(peer, "t")
      expect(score.score(peer)).toBe(-18) // P3b: 9 × -2
    }))

  it.effect("§P4 invalid messages (squared) and §P7 behaviour penalty over the threshold (squared); topic weight", () =>
    Effect.gen(function*() {
      const { peer, score } = yield* withScore({
        topics: { t: topic({ topicWeight: 0.5, invalidMessageDeliveriesWeight: -10 }) },
        behaviourPenaltyWeight: -1,
        behaviourPenaltyThreshold: 1
      })
      score.rejectMessage(peer, "t")
      score.rejectMessage(peer, "t")
      expect(score.score(peer)).toBe(-20) // 2^2 × -10 × 0.5
      score.addPenalty(peer, 3)
      expect(score.score(peer)).toBe(-24) // + (3 - 1)^2 × -1
    }))

  it.live(
    "§P4 in the router: a peer publishing invalid messages loses score and leaves our mesh; honest peers stay",
    () =>
      Effect.gen(function*() {
        const scoreLayer = PeerScore.layer({ topics: { t: topic({ invalidMessageDeliveriesWeight: -100 }) } })
        const opts = { heartbeatInterval: "50 millis", heartbeatInitialDelay: "10 millis" } as const
        const victim = yield* pubsubNode(Gossipsub.layerWithScore(opts).pipe(Layer.provideMerge(scoreLayer)))
        const mesh = Context.get(victim.context, Gossipsub.Gossipsub)
        const score = Context.get(victim.context, PeerScore.PeerScore)
        const bad = yield* pubsubNode(Gossipsub.layer(opts))
        const good = yield* pubsubNode(Gossipsub.layer(opts))
        yield* victim.pubsub.addValidator("t", (m) => Effect.succeed(decode(m.data) === "bad" ? "Reject" : "Accept"))
        yield* victim.pubsub.subscribe("t")
        yield* bad.pubsub.subscribe("t")
        yield* good.pubsub.subscribe("t")
        yield* bad.host.dial(victim.addr)
        yield* good.host.dial(victim.addr)
        const inMesh = (id: PeerId.PeerId) => mesh.mesh("t").some((p) => PeerId.equals(p, id))
        yield* waitFor(() => inMesh(bad.host.peerId) && inMesh(good.host.peerId))
        yield* bad.pubsub.publish("t", text("bad"))
        yield* waitFor(() => score.score(bad.host.peerId) < 0)
        expect(score.score(good.host.peerId)).toBe(0)
        yield* waitFor(() => !inMesh(bad.host.peerId))
        expect(inMesh(good.host.peerId)).toBe(true)
        expect(mesh.inBackoff("t", bad.host.peerId)).toBe(true)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "pluggable scoring: a custom PeerScore Layer (a deny list) replaces the function; §Score Thresholds apply [gossipsub-v1.1:score-thresholds:3]",
    () =>
      Effect.gen(function*() {
        const denied = new Set<string>()
        const custom = Layer.succeed(PeerScore.PeerScore, {
          ...Context.get(yield* Layer.build(PeerScore.layerZero), PeerScore.PeerScore),
          score: (peer) => (denied.has(peer.toString()) ? -1000 : 0)
        })
        const opts = { heartbeatInterval: "50 millis", heartbeatInitialDelay: "10 millis" } as const
        const ours = yield* pubsubNode(Gossipsub.layerWithScore(opts).pipe(Layer.provide(custom)))
        const mesh = Context.get(ours.context, Gossipsub.Gossipsub)
        const a = yield* pubsubNode(Gossipsub.layer(opts))
        const b = yield* pubsubNode(Gossipsub.layer(opts))
        const sub = yield* ours.pubsub.subscribe("t")
        yield* a.pubsub.subscribe("t")
        yield* b.pubsub.subscribe("t")
        yield* a.host.dial(ours.addr)
        yield* b.host.dial(ours.addr)
        yield* waitFor(() => mesh.mesh("t").length === 2)
        // b falls below 0 (pruned from the mesh at the next heartbeat), the publish
        // threshold (no flood publish to it) and the graylist threshold (its RPCs are ignored)
        denied.add(b.host.peerId.toString())
        yield* waitFor(() => mesh.mesh("t").length === 1)
        expect(mesh.mesh("t").map(PeerId.toString)).toEqual([a.host.peerId.toString()])
        const r = yield* ours.pubsub.publish("t", text("x"))
        expect(r.recipients).toBe(1)
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        yield* b.pubsub.publish("t", text("from the denied peer"))
        yield* Effect.sleep("100 millis")
        yield* a.pubsub.publish("t", text("from a"))
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["from a"])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "§Opportunistic Grafting: a mesh with a low median score grafts a better-scored peer [gossipsub-v1.1:opportunistic-grafting:1]",
    () =>
      Effect.gen(function*() {
        const scores = new Map<string, number>()
        const custom = Layer.succeed(PeerScore.PeerScore, {
          ...Context.get(yield* Layer.build(PeerScore.layerZero), PeerScore.PeerScore),
          score: (peer) => scores.get(peer.toString()) ?? 0
        })
        const opts = { heartbeatInterval: "50 millis", heartbeatInitialDelay: "10 millis" } as const
        const ours = yield* pubsubNode(
          Gossipsub.layerWithScore({ ...opts, D: 2, Dlo: 2, Dhi: 10, opportunisticGraftTicks: 3 }).pipe(
            Layer.provide(custom)
          )
        )
        const mesh = Context.get(ours.context, Gossipsub.Gossipsub)
        const a = yield* pubsubNode(Gossipsub.layer(opts))
        const b = yield* pubsubNode(Gossipsub.layer(opts))
        // c never grafts by itself (D_lo 0), so only our opportunistic graft brings it in
        const c = yield* pubsubNode(Gossipsub.layer({ ...opts, D: 1, Dlo: 0 }))
        for (const n of [ours, a, b, c]) yield* n.pubsub.subscribe("t")
        yield* a.host.dial(ours.addr)
        yield* b.host.dial(ours.addr)
        yield* waitFor(() => mesh.mesh("t").length === 2)
        yield* c.host.dial(ours.addr)
        yield* waitFor(() => ours.pubsub.peers("t").length === 3)
        const inMesh = () => mesh.mesh("t").some((p) => PeerId.equals(p, c.host.peerId))
        yield* Effect.sleep("300 millis")
        expect(inMesh()).toBe(false) // everyone scores 0: nothing better than the median
        scores.set(c.host.peerId.toString(), 50)
        yield* waitFor(inMesh)
        expect(mesh.mesh("t")).toHaveLength(3)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )

  it.live(
    "gossipsub-v1.1 §Peer Exchange: a GRAFT into a full mesh is refused with PX, and the refused peer dials the peer named [gossipsub-v1.1:prune-backoff-and-peer-exchange:2]",
    () =>
      Effect.gen(function*() {
        // the refused side accepts PX only from a peer scored at least acceptPXThreshold (10)
        const trusting = Layer.succeed(PeerScore.PeerScore, {
          ...Context.get(yield* Layer.build(PeerScore.layerZero), PeerScore.PeerScore),
          score: () => 100
        })
        const opts = { heartbeatInterval: "50 millis", heartbeatInitialDelay: "10 millis" } as const
        const hub = yield* pubsubNode(Gossipsub.layer({ ...opts, D: 1, Dlo: 1, Dhi: 1, doPX: true }))
        const hubMesh = Context.get(hub.context, Gossipsub.Gossipsub)
        const b = yield* pubsubNode(Gossipsub.layerWithScore(opts).pipe(Layer.provide(trusting)))
        const c = yield* pubsubNode(Gossipsub.layerWithScore(opts).pipe(Layer.provide(trusting)))
        // b and c know each other's addresses (PX carries ids only) but are not connected
        yield* b.peerstore.merge(c.host.peerId, { addrs: [c.addr] })
        yield* c.peerstore.merge(b.host.peerId, { addrs: [b.addr] })
        for (const n of [hub, b, c]) yield* n.pubsub.subscribe("t")
        // not connected before (checked before the dials: the PX dial can follow within one heartbeat)
        expect(b.host.connections(c.host.peerId)).toHaveLength(0)
        expect(c.host.connections(b.host.peerId)).toHaveLength(0)
        yield* b.host.dial(hub.addr)
        yield* c.host.dial(hub.addr)
        yield* waitFor(() => hubMesh.mesh("t").length === 1)
        // the one left out grafts the hub, is refused (mesh full, inbound) with PX naming the other, dials it
        yield* waitFor(() => b.host.connections(c.host.peerId).length > 0)
        expect(hubMesh.mesh("t")).toHaveLength(1)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    20_000
  )
})
