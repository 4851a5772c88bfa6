/**
 * Pubsub interop with js-libp2p (`@libp2p/gossipsub`, `@libp2p/floodsub`) in separate
 * processes over loopback TCP (ARCHITECTURE.md §6): messages published on either side
 * reach subscribers on the other; js and our gossipsub nodes graft each other.
 *
 * Specs: pubsub/README.md (§The RPC, §Message Signing: js verifies our signatures and we
 * verify js's), gossipsub-v1.0/v1.1/v1.2 (§GRAFT, mesh maintenance; /meshsub/1.2.0 is
 * what the two negotiate), floodsub.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Result, Stream } from "effect"
import * as PeerId from "../../src/core/PeerId.ts"
import type { Host } from "../../src/host/Host.ts"
import * as Floodsub from "../../src/protocols/pubsub/floodsub/Floodsub.ts"
import * as Gossipsub from "../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as PeerScore from "../../src/protocols/pubsub/gossipsub/PeerScore.ts"
import type * as Pubsub from "../../src/protocols/pubsub/Pubsub.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpPubsubNode } from "../support/pubsub.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const TOPIC = "interop"
const peerOf = (js: JsPeer.JsPeer): PeerId.PeerId => Result.getOrThrow(PeerId.fromString(js.peerId))
const decode = (b: Uint8Array) => new TextDecoder().decode(b)

const ours = () =>
  Effect.map(
    tcpPubsubNode(Gossipsub.layer({ heartbeatInterval: "200 millis" })),
    (n) => ({ ...n, gossipsub: Context.get(n.context, Gossipsub.Gossipsub) })
  )

const jsGossip = () => JsPeer.start({ pubsub: { router: "gossipsub" } })

/** Poll `check` (an Effect) every 100 ms until it holds, for at most 20 s. */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.gen(function*() {
    while (!(yield* check)) yield* Effect.sleep("100 millis")
  }).pipe(Effect.timeout("20 seconds"))

/**
 * One js node (`router`) and one of ours (`node`), both subscribed to TOPIC and connected
 * (`jsDials`: js dials us, else we dial js); waits until each knows the other subscribes.
 */
const pair = <N extends { readonly pubsub: Pubsub.Pubsub["Service"]; readonly host: Host["Service"] }, E, R>(
  router: "gossipsub" | "floodsub",
  node: Effect.Effect<N, E, R>,
  jsDials: boolean
) =>
  Effect.gen(function*() {
    const js = yield* JsPeer.start({ pubsub: { router } })
    const jsPubsub = JsPeer.pubsubOf(js)
    const a = yield* node
    yield* jsPubsub.subscribe(TOPIC)
    const sub = yield* a.pubsub.subscribe(TOPIC)
    if (jsDials) yield* js.dial(a.host.addrs()[0]!.toString())
    else yield* a.host.dial(ma(js.addr))
    const ourId = a.host.peerId.toString()
    yield* eventually(Effect.map(jsPubsub.peers(TOPIC), (p) => p.includes(ourId)))
    yield* eventually(Effect.sync(() => a.pubsub.peers(TOPIC).length === 1))
    return { js, jsPubsub, a, sub, ourId }
  })

describe("pubsub interop with js-libp2p", () => {
  it.live(
    "gossipsub-v1.1 §GRAFT: one js + one ours graft each other; messages flow both ways",
    () =>
      Effect.gen(function*() {
        const { a, js, jsPubsub, ourId, sub } = yield* pair("gossipsub", ours(), false)
        yield* eventually(Effect.map(jsPubsub.mesh(TOPIC), (m) => m.includes(ourId)))
        yield* eventually(Effect.sync(() => a.gossipsub.mesh(TOPIC).some((p) => p.toString() === js.peerId)))
        expect(a.gossipsub.peerProtocol(peerOf(js))).toBe(Gossipsub.PROTOCOL_V12)

        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        const recipients = yield* jsPubsub.publish(TOPIC, "from js")
        expect(recipients).toContain(ourId)
        const msgs = yield* Fiber.join(got)
        expect(msgs.map((m) => decode(m.data))).toEqual(["from js"])
        expect(msgs[0]!.from?.toString()).toBe(js.peerId)

        const r = yield* a.pubsub.publish(TOPIC, new TextEncoder().encode("from ours"))
        expect(r.recipients).toBe(1)
        const seen = yield* jsPubsub.awaitMessage("from ours", { timeout: "10 seconds" })
        expect(seen.from).toBe(ourId)
      }),
    60_000
  )

  it.live("floodsub: js floodsub dials our floodsub; messages flow both ways", () =>
    Effect.gen(function*() {
      const { a, jsPubsub, ourId, sub } = yield* pair("floodsub", tcpPubsubNode(Floodsub.layer()), true)
      expect(a.pubsub.protocols).toEqual([Floodsub.PROTOCOL])

      const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 2)))
      yield* jsPubsub.publish(TOPIC, "flood 1")
      yield* jsPubsub.publish(TOPIC, "flood 2")
      expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["flood 1", "flood 2"])
      yield* a.pubsub.publish(TOPIC, new TextEncoder().encode("flood back"))
      expect((yield* jsPubsub.awaitMessage("flood back", { timeout: "10 seconds" })).from).toBe(ourId)
    }), 60_000)

  it.live(
    "gossipsub-v1.0 §Protocol: our gossipsub speaks /floodsub/1.0.0 with a js floodsub peer",
    () =>
      Effect.gen(function*() {
        const { a, js, jsPubsub, sub } = yield* pair("floodsub", ours(), false)
        expect(a.gossipsub.peerProtocol(peerOf(js))).toBe(Floodsub.PROTOCOL)
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
        yield* jsPubsub.publish(TOPIC, "to gossip")
        expect((yield* Fiber.join(got)).map((m) => decode(m.data))).toEqual(["to gossip"])
        yield* a.pubsub.publish(TOPIC, new TextEncoder().encode("to flood"))
        yield* jsPubsub.awaitMessage("to flood", { timeout: "10 seconds" })
      }),
    60_000
  )

  it.live(
    "gossipsub-v1.0 §Message Propagation: a mixed mesh of 10 js and 2 ours; every message reaches every subscriber",
    () =>
      Effect.gen(function*() {
        // ten js processes starting at once on a busy 2-core machine: a longer start deadline
        const jss = yield* Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i),
          () => JsPeer.start({ pubsub: { router: "gossipsub" }, startTimeout: "90 seconds" }),
          { concurrency: 5 }
        )
        const jsPs = jss.map(JsPeer.pubsubOf)
        const a = yield* ours()
        const b = yield* ours()
        yield* Effect.forEach(jsPs, (p) => p.subscribe(TOPIC), { discard: true })
        const subA = yield* a.pubsub.subscribe(TOPIC)
        const subB = yield* b.pubsub.subscribe(TOPIC)
        // js0 - js1 - … - js9 in a line; a and b each connect to two js nodes, js dials b
        for (let i = 0; i + 1 < jss.length; i++) yield* jss[i]!.dial(jss[i + 1]!.addr)
        yield* a.host.dial(ma(jss[0]!.addr))
        yield* a.host.dial(ma(jss[5]!.addr))
        yield* jss[3]!.dial(b.host.addrs()[0]!.toString())
        yield* jss[9]!.dial(b.host.addrs()[0]!.toString())
        const idA = a.host.peerId.toString()
        const idB = b.host.peerId.toString()
        // js and ours graft each other
        yield* eventually(
          Effect.sync(() => a.gossipsub.mesh(TOPIC).length === 2 && b.gossipsub.mesh(TOPIC).length === 2)
        )
        yield* eventually(Effect.map(jsPs[0]!.mesh(TOPIC), (m) => m.includes(idA)))
        yield* eventually(Effect.map(jsPs[9]!.mesh(TOPIC), (m) => m.includes(idB)))

        // our own messages are not delivered to our own subscribers (emitSelf: false, as js)
        const gotA = yield* Effect.forkChild(Stream.runCollect(Stream.take(subA, 2)))
        const gotB = yield* Effect.forkChild(Stream.runCollect(Stream.take(subB, 2)))
        yield* jsPs[0]!.publish(TOPIC, "js0")
        yield* a.pubsub.publish(TOPIC, new TextEncoder().encode("ours-a"))
        yield* b.pubsub.publish(TOPIC, new TextEncoder().encode("ours-b"))
        const textsA = (yield* Fiber.join(gotA)).map((m) => decode(m.data)).sort()
        const textsB = (yield* Fiber.join(gotB)).map((m) => decode(m.data)).sort()
        expect(textsA).toEqual(["js0", "ours-b"])
        expect(textsB).toEqual(["js0", "ours-a"])
        for (const [i, p] of jsPs.entries()) {
          for (const text of ["ours-a", "ours-b", ...(i === 0 ? [] : ["js0"])]) {
            yield* p.awaitMessage(text, { timeout: "10 seconds" })
          }
        }
      }),
    240_000
  )

  it.live(
    "gossipsub-v1.2 §IDONTWANT: js and ours send IDONTWANT for a large message in a triangle mesh [gossipsub-v1.2:basic-scenario:1] [gossipsub-v1.2:protocol-id:1]",
    () =>
      Effect.gen(function*() {
        const js = yield* jsGossip()
        const jsPubsub = JsPeer.pubsubOf(js)
        const a = yield* ours()
        const b = yield* ours()
        yield* jsPubsub.subscribe(TOPIC)
        yield* a.pubsub.subscribe(TOPIC)
        const subB = yield* b.pubsub.subscribe(TOPIC)
        yield* a.host.dial(ma(js.addr))
        yield* b.host.dial(ma(js.addr))
        yield* a.host.dial(b.host.addrs()[0]!)
        const idA = a.host.peerId.toString()
        const idB = b.host.peerId.toString()
        yield* eventually(Effect.map(jsPubsub.mesh(TOPIC), (m) => m.includes(idA) && m.includes(idB)))
        yield* eventually(
          Effect.sync(() => a.gossipsub.mesh(TOPIC).length === 2 && b.gossipsub.mesh(TOPIC).length === 2)
        )
        const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(subB, 1)))
        // 4 KiB: over js's 512-byte and our 1,024-byte IDONTWANT thresholds
        yield* a.pubsub.publish(TOPIC, new Uint8Array(4096).fill(0x61))
        expect((yield* Fiber.join(got))[0]!.data.byteLength).toBe(4096)
        yield* jsPubsub.awaitMessage("a".repeat(4096), { timeout: "10 seconds" })
        // js got it from a and told b (its other mesh peer) before forwarding; b told js
        yield* eventually(Effect.sync(() => b.gossipsub.idontwantStats().received >= 1))
        expect(b.gossipsub.idontwantStats().sent).toBeGreaterThanOrEqual(1)
      }),
    60_000
  )

  it.live(
    "gossipsub-v1.1 §P4: a js peer publishing invalid messages loses score on our side and leaves our mesh",
    () =>
      Effect.gen(function*() {
        const scoreLayer = PeerScore.layer({
          topics: { [TOPIC]: PeerScore.topicParams({ invalidMessageDeliveriesWeight: -100 }) }
        })
        const node = Effect.map(
          tcpPubsubNode(
            Gossipsub.layerWithScore({ heartbeatInterval: "200 millis" }).pipe(Layer.provideMerge(scoreLayer))
          ),
          (n) => ({ ...n, gossipsub: Context.get(n.context, Gossipsub.Gossipsub) })
        )
        const { a, js, jsPubsub } = yield* pair("gossipsub", node, false)
        const score = Context.get(a.context, PeerScore.PeerScore)
        yield* a.pubsub.addValidator(TOPIC, (m) => Effect.succeed(decode(m.data) === "invalid" ? "Reject" : "Accept"))
        yield* eventually(Effect.sync(() => a.gossipsub.mesh(TOPIC).some((p) => p.toString() === js.peerId)))
        expect(score.score(peerOf(js))).toBe(0)
        yield* jsPubsub.publish(TOPIC, "invalid")
        yield* eventually(Effect.sync(() => score.score(peerOf(js)) < 0))
        yield* eventually(Effect.sync(() => !a.gossipsub.mesh(TOPIC).some((p) => p.toString() === js.peerId)))
      }),
    60_000
  )
})
