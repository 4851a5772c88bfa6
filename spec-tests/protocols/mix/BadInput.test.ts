/**
 * Bad input to a `/mix/1.0.0` node (LIP-99 §8.6.1, §8.6.3 step 6: discard, no
 * error response): truncated and oversized packets, a wrong protocol version,
 * packets that fail the MAC, replays, an unknown next hop, and a flood of
 * valid packets to one node. Each is dropped with a typed reason (`Dropped`
 * events carry the MixError reason), queues stay within their bounds, and the
 * node keeps forwarding good packets afterwards.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect, Result } from "effect"
import * as crypto from "node:crypto"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Metrics from "../../../src/observability/Metrics.ts"
import * as Address from "../../../src/protocols/mix/address.ts"
import * as Message from "../../../src/protocols/mix/message.ts"
import * as Mix from "../../../src/protocols/mix/Mix.ts"
import * as MixDiscovery from "../../../src/protocols/mix/MixDiscovery.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { memoryNode } from "../../support/node.ts"
import * as Prometheus from "../../support/prometheus.ts"
import { seededKey } from "../kad/support.ts"
import { advanceUntil, type MixNode, mixNode, sendRaw } from "./support.ts"

const hopOf = (n: MixNode) => ({
  publicKey: n.mix.info().publicKey,
  address: Result.getOrThrow(Address.encode(n.host.peerId, n.addr))
})

/** A valid packet whose path is `path` (first hop first), to a destination that nobody needs to reach. */
const packetFor = (
  path: ReadonlyArray<{ readonly publicKey: Uint8Array; readonly address: Uint8Array }>,
  delay = 10
) => {
  const destination = Result.getOrThrow(Address.encode(PeerId.fromPrivateKey(seededKey(crypto.randomInt(1_000_000)))))
  const message = Result.getOrThrow(Message.encodeForward("/test/none/1.0.0", [], new Uint8Array(8)))
  return Result.getOrThrow(Sphinx.createPacket({
    path,
    delays: path.map((_, i) => (i === path.length - 1 ? 0 : delay)),
    destination,
    ephemeral: new Uint8Array(crypto.randomBytes(32)),
    message
  })).packet
}

const setup = (options: Mix.MixOptions = {}) =>
  Effect.gen(function*() {
    const registry = yield* MixDiscovery.makeRegistry()
    const victim = yield* mixNode(registry, options)
    const b = yield* mixNode(registry)
    const c = yield* mixNode(registry)
    const attacker = yield* memoryNode()
    return { victim, b, c, attacker }
  })

const droppedFor = (n: MixNode, reason: Mix.MixErrorReason) =>
  n.events.filter((e) => e._tag === "Dropped" && e.reason === reason).length
const forwarded = (n: MixNode) => n.events.filter((e) => e._tag === "Forwarded").length

describe("mix bad input", () => {
  it.effect(
    "LIP-99 §8.6.1: a truncated, oversized or empty packet is discarded (WrongSize); the node still forwards a good one",
    () =>
      Effect.gen(function*() {
        const { attacker, b, c, victim } = yield* setup()
        const good = packetFor([hopOf(victim), hopOf(b), hopOf(c)])
        yield* sendRaw(attacker, victim, [good.subarray(0, Sphinx.PACKET_SIZE - 1)])
        yield* sendRaw(attacker, victim, [new Uint8Array(Sphinx.PACKET_SIZE + 1)])
        yield* sendRaw(attacker, victim, [new Uint8Array(0)])
        expect(yield* advanceUntil(() => droppedFor(victim, "WrongSize") === 3)).toBe(true)
        yield* sendRaw(attacker, victim, [good])
        expect(yield* advanceUntil(() => forwarded(victim) === 1)).toBe(true)
        expect(droppedFor(victim, "WrongSize")).toBe(3)
        // A length prefix that is not a varint ends the stream as a stream error.
        yield* sendRaw(attacker, victim, [new Uint8Array(12).fill(0xff)], true)
        expect(yield* advanceUntil(() => droppedFor(victim, "Stream") === 1)).toBe(true)
        expect(victim.mix.stats().pending).toBe(0)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §7.1: a stream for another Mix version is refused at negotiation",
    () =>
      Effect.gen(function*() {
        const { attacker, victim } = yield* setup()
        const refused = yield* Effect.scoped(attacker.host.newStream(victim.addr, ["/mix/2.0.0"], { lazy: false }))
          .pipe(Effect.flip)
        expect(refused._tag).toBe("ConnectionError")
        expect(victim.registrar.protocols()).toContain(Mix.PROTOCOL)
      }).pipe(Effect.provide(Memory.layerNetwork))
  )

  it.effect(
    "LIP-99 §8.6.1 step 3: random bytes and a packet for another node's key fail the MAC and are discarded",
    () =>
      Effect.gen(function*() {
        const { attacker, b, c, victim } = yield* setup()
        const random = new Uint8Array(crypto.randomBytes(Sphinx.PACKET_SIZE))
        random[31]! &= 0x7f
        const forB = packetFor([hopOf(b), hopOf(c), hopOf(victim)])
        yield* sendRaw(attacker, victim, [random, forB])
        expect(yield* advanceUntil(() => droppedFor(victim, "BadMac") + droppedFor(victim, "BadPoint") === 2)).toBe(
          true
        )
        expect(forwarded(victim)).toBe(0)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §8.6.1 step 2: a replayed packet is dropped (Replay) and forwarded once; the replay table is bounded",
    () =>
      Effect.gen(function*() {
        const { attacker, b, c, victim } = yield* setup({ replay: { maxEntries: 3 } })
        const p = packetFor([hopOf(victim), hopOf(b), hopOf(c)])
        yield* sendRaw(attacker, victim, [p, p])
        yield* sendRaw(attacker, victim, [p])
        expect(yield* advanceUntil(() => droppedFor(victim, "Replay") === 2 && forwarded(victim) === 1)).toBe(true)
        for (let i = 0; i < 6; i++) yield* sendRaw(attacker, victim, [packetFor([hopOf(victim), hopOf(b), hopOf(c)])])
        expect(yield* advanceUntil(() => forwarded(victim) === 7)).toBe(true)
        expect(victim.mix.stats().replayTags).toBeLessThanOrEqual(3)
        // The metrics say the same (libp2p_mix_…, by reason and outcome).
        const m = Prometheus.parse(Metrics.formatOf(victim.context as Context.Context<never>))
        expect(Prometheus.value(m, "libp2p_mix_dropped_total", { reason: "Replay" })).toBe(2)
        expect(Prometheus.value(m, "libp2p_mix_packets_total", { outcome: "forwarded" })).toBe(7)
        expect(Prometheus.value(m, "libp2p_mix_pending")).toBe(0)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §8.6.3 step 6: a next hop nobody can reach is discarded (UnknownNextHop)",
    () =>
      Effect.gen(function*() {
        const { attacker, c, victim } = yield* setup()
        const stranger = PeerId.fromPrivateKey(seededKey(crypto.randomInt(1_000_000)))
        const ghost = {
          publicKey: c.mix.info().publicKey,
          address: Result.getOrThrow(Address.encode(stranger))
        }
        yield* sendRaw(attacker, victim, [packetFor([hopOf(victim), ghost, hopOf(c)])])
        expect(yield* advanceUntil(() => droppedFor(victim, "UnknownNextHop") === 1)).toBe(true)
        // An address block that is not an address at all.
        const junk = { publicKey: c.mix.info().publicKey, address: new Uint8Array(Sphinx.ADDRESS_SIZE).fill(0xee) }
        yield* sendRaw(attacker, victim, [packetFor([hopOf(victim), junk, hopOf(c)])])
        expect(yield* advanceUntil(() => droppedFor(victim, "BadAddress") === 1)).toBe(true)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.effect(
    "LIP-99 §6.3/§10.4.4: a flood of valid packets to one node is bounded by maxPending; the rest is dropped (Overloaded)",
    () =>
      Effect.gen(function*() {
        const { attacker, b, c, victim } = yield* setup({ maxPending: 4 })
        const flood = Array.from({ length: 30 }, () => packetFor([hopOf(victim), hopOf(b), hopOf(c)], 60_000))
        yield* sendRaw(attacker, victim, flood)
        expect(yield* advanceUntil(() => droppedFor(victim, "Overloaded") === 26, "1 millis", 200)).toBe(true)
        expect(victim.mix.stats().pending).toBeLessThanOrEqual(4)
        // The four accepted packets leave once their (truncated exponential, mean 60 s) delays pass.
        expect(yield* advanceUntil(() => forwarded(victim) === 4, "10 seconds", 200)).toBe(true)
        expect(yield* advanceUntil(() => victim.mix.stats().pending === 0, "1 second", 100)).toBe(true)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})
