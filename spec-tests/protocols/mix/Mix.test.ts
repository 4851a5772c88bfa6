/**
 * LIP-99 `/mix/1.0.0` on a network of 12 of our nodes on the memory transport
 * under TestClock (every delay is virtual), and of 5 on TCP: messages through 3 mix hops reach
 * their destination protocol (ping and a user protocol), no mix node learns
 * both sender and receiver (each node's record of what it saw), SURB replies
 * come back, cover traffic loops back, spam proofs are checked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import type * as Connection from "../../../src/connection/Connection.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Mix from "../../../src/protocols/mix/Mix.ts"
import * as MixDiscovery from "../../../src/protocols/mix/MixDiscovery.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"
import * as Ping from "../../../src/protocols/ping/Ping.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { memoryNode, tcpNode, type TestNode } from "../../support/node.ts"
import { advanceUntil, isOk, type MixNode, mixNode, sendRaw, tcpMixNode, withClock } from "./support.ts"

const MIX_NODES = 12

/** The network: MIX_NODES mix nodes and one plain destination node every node has in its peerstore. */
const network = (options: Mix.MixOptions = {}) =>
  Effect.gen(function*() {
    const registry = yield* MixDiscovery.makeRegistry()
    const nodes: Array<MixNode> = []
    for (let i = 0; i < MIX_NODES; i++) nodes.push(yield* mixNode(registry, options, 500 + i))
    const dest = yield* memoryNode()
    for (const n of nodes) yield* n.peerstore.merge(dest.host.peerId, { addrs: dest.host.addrs() })
    return { registry, nodes, dest }
  })

/** A user protocol on `dest` that records each message and who opened the stream. */
const recordingProtocol = (dest: TestNode, protocol: string) =>
  Effect.gen(function*() {
    const got: Array<{ readonly from: PeerId.PeerId; readonly bytes: Uint8Array }> = []
    yield* dest.registrar.handle(
      protocol,
      (stream: Connection.Stream, conn: Connection.Connection) =>
        Effect.gen(function*() {
          const parts: Array<Uint8Array> = []
          while (true) {
            const chunks = yield* stream.read
            if (chunks.length === 0) break
            parts.push(...chunks)
          }
          got.push({ from: conn.remotePeer, bytes: new Uint8Array(Buffer.concat(parts)) })
          yield* stream.closeWrite
        })
    )
    return got
  })

const eventsOf = (n: MixNode) => n.events
const same = (a: PeerId.PeerId | undefined, b: PeerId.PeerId) => a !== undefined && PeerId.equals(a, b)

describe("mix network", () => {
  it.effect(
    "LIP-99 §5.4/§8.5/§8.6: a message to a user protocol crosses 3 mix hops and reaches the destination; no mix node sees both ends",
    () =>
      Effect.gen(function*() {
        const { dest, nodes } = yield* network()
        const got = yield* recordingProtocol(dest, "/test/mix-sink/1.0.0")
        const sender = nodes[0]!
        const payload = new Uint8Array(crypto.randomBytes(1000))
        const sent = yield* withClock(
          sender.mix.send({ peerId: dest.host.peerId }, "/test/mix-sink/1.0.0", payload)
        )
        expect(isOk(sent)).toBe(true)
        expect(yield* advanceUntil(() => got.length === 1)).toBe(true)
        expect(got[0]!.bytes).toEqual(payload)
        // The destination's stream came from the exit, not from the sender (§5.1: a client-only connection).
        expect(same(got[0]!.from, sender.host.peerId)).toBe(false)

        const S = sender.host.peerId
        const D = dest.host.peerId
        const sentTo = eventsOf(sender).filter((e) => e._tag === "Sent")
        expect(sentTo).toHaveLength(1)
        const involved = nodes.filter((n) => eventsOf(n).some((e) => e._tag === "Forwarded" || e._tag === "Delivered"))
        // §8.5.1: L = 3 distinct mix nodes, none of them the sender.
        expect(involved).toHaveLength(3)
        expect(involved.some((n) => PeerId.equals(n.host.peerId, S))).toBe(false)
        for (const n of nodes) {
          if (PeerId.equals(n.host.peerId, S)) continue
          const froms = eventsOf(n).flatMap((e) => ("from" in e && e.from !== undefined ? [e.from] : []))
          const tos = eventsOf(n).flatMap((e) =>
            e._tag === "Forwarded" ? [e.to] : e._tag === "Delivered" ? [e.destination] : []
          )
          // §10.1: no node other than the sender links the sender with the receiver.
          expect(froms.some((p) => same(p, S)) && tos.some((p) => same(p, D))).toBe(false)
        }
        // The first hop saw the sender and the second hop; the exit saw the second hop and the destination.
        const first = involved.find((n) => eventsOf(n).some((e) => e._tag === "Forwarded" && same(e.from, S)))!
        const exit = involved.find((n) => eventsOf(n).some((e) => e._tag === "Delivered"))!
        expect(first).toBeDefined()
        expect(exit).toBeDefined()
        expect(first).not.toBe(exit)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §4.2 SURBs (nim format): /ipfs/ping/1.0.0 through 3 mix hops, the pong comes back through a SURB",
    () =>
      Effect.gen(function*() {
        const { dest, nodes } = yield* network()
        const sender = nodes[3]!
        const ping = new Uint8Array(crypto.randomBytes(Ping.PAYLOAD_SIZE))
        const answer = yield* withClock(
          sender.mix.request({ peerId: dest.host.peerId }, Ping.PROTOCOL, ping, { surbs: 2 })
        )
        expect(isOk(answer)).toBe(true)
        if (isOk(answer)) expect(answer.success).toEqual(ping)
        expect(eventsOf(sender).some((e) => e._tag === "ReplyReceived")).toBe(true)
        const exit = nodes.find((n) => eventsOf(n).some((e) => e._tag === "Delivered"))!
        expect(eventsOf(exit).filter((e) => e._tag === "ReplySent")).toHaveLength(2)
        // The exit replied to SURB first hops, never to the sender directly.
        for (const e of eventsOf(exit)) if (e._tag === "ReplySent") expect(same(e.to, sender.host.peerId)).toBe(false)
        expect(sender.mix.stats().pendingReplies).toBe(0)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §10.3: destination as final hop — the destination's own Mix instance hands the message to its local handler and answers by SURB",
    () =>
      Effect.gen(function*() {
        const { nodes } = yield* network()
        const sender = nodes[0]!
        const dest = nodes[7]!
        const got: Array<Uint8Array> = []
        yield* dest.mix.handle("/test/local/1.0.0", (message) =>
          Effect.sync(() => {
            got.push(message)
            return new Uint8Array(message).reverse()
          }))
        const question = new Uint8Array(crypto.randomBytes(100))
        const answer = yield* withClock(
          sender.mix.request({ peerId: dest.host.peerId }, "/test/local/1.0.0", question, { exitIsDestination: true })
        )
        expect(isOk(answer)).toBe(true)
        if (isOk(answer)) expect(answer.success).toEqual(new Uint8Array(question).reverse())
        expect(got).toEqual([question])
        expect(eventsOf(dest).filter((e) => e._tag === "Delivered")).toHaveLength(1)
        // L - 1 = 2 intermediaries forwarded it; none of them is the sender or the destination.
        const forwarders = nodes.filter((n) =>
          eventsOf(n).some((e) => e._tag === "Forwarded" && !same(e.to, sender.host.peerId))
        )
        expect(forwarders.length).toBeGreaterThanOrEqual(2)
        // A codec nobody handles locally is dropped with NoHandler.
        expect(
          isOk(
            yield* withClock(
              sender.mix.send({ peerId: dest.host.peerId }, "/test/nobody/1.0.0", question, { exitIsDestination: true })
            )
          )
        ).toBe(true)
        expect(yield* advanceUntil(() => eventsOf(dest).some((e) => e._tag === "Dropped" && e.reason === "NoHandler")))
          .toBe(true)
        // A destination that is not a mix node cannot be its own exit.
        const plain = yield* memoryNode()
        const e = yield* Effect.flip(
          sender.mix.send({ peerId: plain.host.peerId }, "/test/local/1.0.0", question, { exitIsDestination: true })
        )
        expect(e.reason).toBe("UnknownNextHop")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §8.5.1: L = 5 hops work; a message larger than one packet fails MessageTooLarge (§8.3.3)",
    () =>
      Effect.gen(function*() {
        const { dest, nodes } = yield* network({ pathLength: 5 })
        const got = yield* recordingProtocol(dest, "/test/mix-sink/1.0.0")
        const sender = nodes[1]!
        const max = sender.mix.maxMessageSize("/test/mix-sink/1.0.0")
        const payload = new Uint8Array(crypto.randomBytes(max))
        expect(isOk(yield* withClock(sender.mix.send({ peerId: dest.host.peerId }, "/test/mix-sink/1.0.0", payload))))
          .toBe(true)
        expect(yield* advanceUntil(() => got.length === 1)).toBe(true)
        expect(got[0]!.bytes).toEqual(payload)
        const involved = nodes.filter((n) => eventsOf(n).some((e) => e._tag === "Forwarded" || e._tag === "Delivered"))
        expect(involved).toHaveLength(5)
        const tooLarge = yield* Effect.flip(
          sender.mix.send({ peerId: dest.host.peerId }, "/test/mix-sink/1.0.0", new Uint8Array(max + 1))
        )
        expect(tooLarge.reason).toBe("MessageTooLarge")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §8.5.2 step 2: too few mix nodes fail NotEnoughNodes",
    () =>
      Effect.gen(function*() {
        const registry = yield* MixDiscovery.makeRegistry()
        const a = yield* mixNode(registry)
        yield* mixNode(registry)
        const dest = yield* memoryNode()
        const e = yield* Effect.flip(a.mix.send({ peerId: dest.host.peerId }, Ping.PROTOCOL, new Uint8Array(32)))
        expect(e.reason).toBe("NotEnoughNodes")
      }).pipe(Effect.provide(Memory.layerNetwork))
  )

  it.effect(
    "LIP-99 §6.4: loop cover traffic (off by default) comes back to its sender",
    () =>
      Effect.gen(function*() {
        const registry = yield* MixDiscovery.makeRegistry()
        const nodes: Array<MixNode> = []
        for (let i = 0; i < 5; i++) {
          nodes.push(yield* mixNode(registry, i === 0 ? { coverTraffic: { interval: "1 second" } } : {}))
        }
        expect(yield* advanceUntil(() => eventsOf(nodes[0]!).some((e) => e._tag === "CoverReceived"), "100 millis"))
          .toBe(true)
        for (const n of nodes.slice(1)) expect(eventsOf(n).some((e) => e._tag === "CoverReceived")).toBe(false)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §9.2.2: with per-hop proof-of-work spam protection, messages arrive; a packet without a valid proof is dropped",
    () =>
      Effect.gen(function*() {
        const spamProtection = Mix.proofOfWork(8)
        const { dest, nodes } = yield* network({ spamProtection })
        const got = yield* recordingProtocol(dest, "/test/mix-sink/1.0.0")
        const payload = new Uint8Array(crypto.randomBytes(64))
        expect(
          isOk(yield* withClock(nodes[2]!.mix.send({ peerId: dest.host.peerId }, "/test/mix-sink/1.0.0", payload)))
        )
          .toBe(true)
        expect(yield* advanceUntil(() => got.length === 1)).toBe(true)
        expect(got[0]!.bytes).toEqual(payload)
        // A packet whose proof does not verify is dropped before any Sphinx processing (§9.3.2).
        const packet = new Uint8Array(crypto.randomBytes(Sphinx.PACKET_SIZE))
        let proof = new Uint8Array(8)
        for (let i = 0; yield* spamProtection.verifyProof(proof, packet); i++) {
          proof = Uint8Array.of(0, 0, 0, 0, 0, 0, i >> 8, i)
        }
        const victim = nodes[5]!
        yield* Effect.forkChild(sendRaw(nodes[6]!, victim, [Buffer.concat([packet, proof])]))
        expect(
          yield* advanceUntil(() => eventsOf(victim).some((e) => e._tag === "Dropped" && e.reason === "SpamProof"))
        )
          .toBe(true)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.live(
    "LIP-99 §8.4: on TCP the header carries ip4/tcp address blocks; a message and a ping with SURB reply cross 3 hops",
    () =>
      Effect.gen(function*() {
        const registry = yield* MixDiscovery.makeRegistry()
        const nodes: Array<MixNode> = []
        for (let i = 0; i < 5; i++) nodes.push(yield* tcpMixNode(registry, { meanDelay: 0, entryMeanDelay: 0 }))
        const dest = yield* tcpNode()
        const got = yield* recordingProtocol(dest, "/test/mix-sink/1.0.0")
        // The destination is in no peerstore: the exit dials the address the header carries.
        const target = { peerId: dest.host.peerId, addr: dest.host.addrs()[0] }
        const payload = new Uint8Array(crypto.randomBytes(300))
        yield* nodes[0]!.mix.send(target, "/test/mix-sink/1.0.0", payload)
        for (let i = 0; i < 1500 && got.length === 0; i++) yield* Effect.sleep("20 millis")
        expect(got).toHaveLength(1)
        expect(got[0]!.bytes).toEqual(payload)
        const ping = new Uint8Array(crypto.randomBytes(Ping.PAYLOAD_SIZE))
        const pong = yield* nodes[1]!.mix.request(target, Ping.PROTOCOL, ping, { timeout: "20 seconds" })
        expect(pong).toEqual(ping)
      }),
    60_000
  )
})
