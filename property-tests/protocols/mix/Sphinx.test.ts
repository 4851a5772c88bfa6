/**
 * Properties of LIP-99 Sphinx packets (§8.5 construction, §8.6 processing) over
 * random paths (3 ≤ L ≤ r = 5), keys, delays, destinations and messages:
 * - processing at each hop of the path recovers m exactly at the exit, each hop
 *   learns exactly its next hop and delay, and only the exit learns Δ;
 * - every packet on the wire has 4608 bytes, at every hop;
 * - any bit flip in the header (α, β, γ) is detected at the next hop (§8.6.1
 *   step 3: the MAC, or α no longer a usable point);
 * - a bit flip in δ is NOT detected by the next hop: LIP-99 encrypts δ with
 *   AES-CTR (malleable), where the Sphinx paper uses a wide-block cipher. A flip
 *   in δ's first κ bytes is caught at the exit (§8.6.4 step 2); elsewhere it
 *   reaches m as the same bit flipped. We state what the spec gives;
 * - a replayed packet is dropped (§8.6.1 step 2), also after the first copy
 *   was forwarded, and the replay table stays within its bound.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Replay from "../../../src/protocols/mix/replay.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })

const scenario = fc.integer({ min: Sphinx.MIN_PATH, max: Sphinx.R }).chain((L) =>
  fc.record({
    keys: fc.uniqueArray(bytes(32), { minLength: L, maxLength: L, selector: (k) => Buffer.from(k).toString("hex") }),
    addresses: fc.array(bytes(Sphinx.ADDRESS_SIZE).filter((a) => a.some((b) => b !== 0)), {
      minLength: L,
      maxLength: L
    }),
    delays: fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: L - 1, maxLength: L - 1 }),
    destination: bytes(Sphinx.ADDRESS_SIZE).filter((a) => a.some((b) => b !== 0)),
    ephemeral: bytes(32),
    message: bytes(Sphinx.MESSAGE_SIZE)
  })
)
type Scenario = typeof scenario extends fc.Arbitrary<infer A> ? A : never

const build = (s: Scenario) => {
  const path = s.keys.map((k, i) => ({
    publicKey: Result.getOrThrow(Sphinx.publicKeyOf(k)),
    address: s.addresses[i]!
  }))
  return Result.getOrThrow(Sphinx.createPacket({
    path,
    delays: [...s.delays, 0],
    destination: s.destination,
    ephemeral: s.ephemeral,
    message: s.message
  })).packet
}

/** The packet each hop receives, in order. */
const packetsAlong = (s: Scenario): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  let p = build(s)
  for (const key of s.keys) {
    out.push(p)
    const r = Result.getOrThrow(Sphinx.processPacket(p, key))
    if (r._tag === "Forward") p = r.packet
  }
  return out
}

const RUNS = { numRuns: 25 }

describe("mix Sphinx properties", () => {
  it("LIP-99 §8.5/§8.6: each hop learns its next hop and delay, the exit recovers Δ and m exactly, all packets 4608 B", () => {
    fc.assert(
      fc.property(scenario, (s) => {
        let p = build(s)
        const L = s.keys.length
        for (let i = 0; i < L; i++) {
          expect(p.byteLength).toBe(Sphinx.PACKET_SIZE)
          const r = Result.getOrThrow(Sphinx.processPacket(p, s.keys[i]!))
          if (i < L - 1) {
            expect(r._tag).toBe("Forward")
            if (r._tag !== "Forward") return
            expect(r.next).toEqual(s.addresses[i + 1])
            expect(r.delay).toBe(s.delays[i])
            p = r.packet
          } else {
            expect(r._tag).toBe("Exit")
            if (r._tag !== "Exit") return
            expect(r.destination).toEqual(s.destination)
            expect(r.message).toEqual(s.message)
          }
        }
      }),
      RUNS
    )
  })

  it("LIP-99 §8.6.1 step 3: any bit flip in α, β or γ is detected at the next hop", () => {
    fc.assert(
      fc.property(
        scenario,
        fc.nat(),
        fc.oneof(fc.constant(255), fc.integer({ min: 0, max: Sphinx.HEADER_SIZE * 8 - 1 })),
        (s, hopSeed, bit) => {
          const packets = packetsAlong(s)
          const hop = hopSeed % packets.length
          const tampered = new Uint8Array(packets[hop]!)
          tampered[bit >> 3]! ^= 1 << (bit & 7)
          const r = Sphinx.processPacket(tampered, s.keys[hop]!)
          expect(Result.isFailure(r)).toBe(true)
          if (Result.isFailure(r)) expect(["BadMac", "BadPoint"]).toContain(r.failure.reason)
        }
      ),
      RUNS
    )
  })

  it("LIP-99 §8.5.2 3.d/§8.6.4 step 2: a flip in δ's first κ bytes fails at the exit; elsewhere AES-CTR carries it into m", () => {
    fc.assert(
      fc.property(scenario, fc.nat(), fc.integer({ min: 0, max: Sphinx.PAYLOAD_SIZE * 8 - 1 }), (s, hopSeed, bit) => {
        const packets = packetsAlong(s)
        const hop = hopSeed % packets.length
        const tampered = new Uint8Array(packets[hop]!)
        const at = Sphinx.HEADER_SIZE + (bit >> 3)
        tampered[at]! ^= 1 << (bit & 7)
        let p: Uint8Array = tampered
        for (let i = hop; i < s.keys.length; i++) {
          const r = Sphinx.processPacket(p, s.keys[i]!)
          if (i < s.keys.length - 1) {
            // The header is intact, so every hop before the exit forwards it (the flip is not seen).
            const fwd = Result.getOrThrow(r)
            if (fwd._tag !== "Forward") throw new Error("expected a forward")
            p = fwd.packet
            continue
          }
          if (bit >> 3 < Sphinx.K) {
            expect(Result.isFailure(r) && r.failure.reason === "BadPayload").toBe(true)
          } else {
            const exit = Result.getOrThrow(r)
            if (exit._tag !== "Exit") throw new Error("expected an exit")
            const expected = new Uint8Array(s.message)
            expected[(bit >> 3) - Sphinx.K]! ^= 1 << (bit & 7)
            expect(exit.message).toEqual(expected)
          }
        }
      }),
      RUNS
    )
  })

  it("LIP-99 §8.6.1 step 2: a replayed packet is dropped at every hop; the table stays bounded", () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 1, max: 4 }), (s, bound) => {
        const packets = packetsAlong(s)
        packets.forEach((p, i) => {
          const table = Replay.make({ maxEntries: bound, ttlMillis: 60_000 })
          const seen = (tag: Uint8Array) => table.seen(tag, 0)
          expect(Result.isSuccess(Sphinx.processPacket(p, s.keys[i]!, { seen }))).toBe(true)
          const again = Sphinx.processPacket(p, s.keys[i]!, { seen })
          expect(Result.isFailure(again) && again.failure.reason === "Replay").toBe(true)
          expect(table.size()).toBeLessThanOrEqual(bound)
        })
      }),
      { numRuns: 10 }
    )
  })

  it("replay table: a tag is remembered for its ttl and forgotten after; never more than maxEntries", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 50 })), { maxLength: 200 }),
        fc.integer({ min: 1, max: 30 }),
        (ops, max) => {
          const table = Replay.make({ maxEntries: max, ttlMillis: 100 })
          const model = new Map<number, number>()
          let now = 0
          for (const [tag, dt] of ops) {
            now += dt
            const seen = table.seen(Uint8Array.of(tag), now)
            const expiresAt = model.get(tag)
            // Without evictions the table is exact; evictions only ever forget (never invent) a tag.
            if (table.evicted() === 0) expect(seen).toBe(expiresAt !== undefined && expiresAt > now)
            else if (seen) expect(expiresAt !== undefined && expiresAt > now).toBe(true)
            if (!seen) model.set(tag, now + 100)
            expect(table.size()).toBeLessThanOrEqual(max)
          }
        }
      )
    )
  })
})
