/**
 * Properties of the Kad-DHT routing table (kad-dht spec §Distance, §Kademlia
 * routing table): XOR distance is a metric, no bucket ever holds more than k
 * peers, `closest` is the brute-force k closest of what the table holds, and a
 * refresh key falls in the bucket it was made for.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { ok } from "../../../spec-tests/support/result.ts"
import * as Multihash from "../../../src/core/Multihash.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as RoutingTable from "../../../src/protocols/kad/RoutingTable.ts"

const key = fc.uint8Array({ minLength: 32, maxLength: 32 })
/** Peer ids as sha2-256 multihashes of random digests (cheap, and every id is valid). */
const peerId = key.map((digest) => ok(PeerId.fromBytes(Multihash.make(0x12, digest).bytes)))
const zero = new Uint8Array(32)
const sum = (a: Uint8Array, b: Uint8Array): bigint => toBig(a) + toBig(b)
const toBig = (a: Uint8Array): bigint => a.reduce((acc, x) => (acc << 8n) | BigInt(x), 0n)

describe("kad §Distance: XOR is a metric", () => {
  it("d(a,a) = 0, d(a,b) > 0 for a ≠ b, symmetric, triangle inequality", () => {
    fc.assert(
      fc.property(key, key, key, (a, b, c) => {
        expect(RoutingTable.distance(a, a)).toEqual(zero)
        expect(RoutingTable.compare(RoutingTable.distance(a, b), zero) > 0).toBe(RoutingTable.compare(a, b) !== 0)
        expect(RoutingTable.distance(a, b)).toEqual(RoutingTable.distance(b, a))
        const ac = toBig(RoutingTable.distance(a, c))
        expect(ac <= sum(RoutingTable.distance(a, b), RoutingTable.distance(b, c))).toBe(true)
      })
    )
  })
  it("compareDistance agrees with comparing the XOR distances", () => {
    fc.assert(
      fc.property(key, key, key, (t, a, b) => {
        const want = Math.sign(RoutingTable.compare(RoutingTable.distance(t, a), RoutingTable.distance(t, b)))
        expect(Math.sign(RoutingTable.compareDistance(t, a, b))).toBe(want)
      })
    )
  })
})

describe("kad §Kademlia routing table", () => {
  it("never holds more than k peers per bucket, nor ourselves", () => {
    fc.assert(
      fc.property(peerId, fc.array(peerId, { maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (self, ps, k) => {
        const table = RoutingTable.make(self, k)
        RoutingTable.add(table, self, 0)
        for (const p of ps) RoutingTable.add(table, p, 0)
        for (const bucket of table.buckets) expect(bucket.length).toBeLessThanOrEqual(k)
        expect(RoutingTable.has(table, self)).toBe(false)
        expect(RoutingTable.size(table)).toBe(table.buckets.reduce((n, b) => n + b.length, 0))
      })
    )
  })
  it("closest(target, n) is the brute-force n closest peers in the table, closest first", () => {
    fc.assert(
      fc.property(
        peerId,
        fc.array(peerId, { maxLength: 200 }),
        key,
        fc.integer({ min: 1, max: 30 }),
        (self, ps, t, n) => {
          const table = RoutingTable.make(self)
          for (const p of ps) RoutingTable.add(table, p, 0)
          const all = [...RoutingTable.peers(table)].sort((a, b) => RoutingTable.compareDistance(t, a.key, b.key))
          expect(RoutingTable.closest(table, t, n).map((e) => e.peerId.toString())).toEqual(
            all.slice(0, n).map((e) => e.peerId.toString())
          )
        }
      )
    )
  })
  it("a full bucket reports its least recently seen peer; replace swaps it out", () => {
    fc.assert(
      fc.property(peerId, fc.array(peerId, { minLength: 50, maxLength: 120 }), (self, ps) => {
        const table = RoutingTable.make(self, 2)
        let t = 0
        for (const p of ps) {
          const r = RoutingTable.add(table, p, t++)
          if (r._tag === "Full") {
            const bucket = table.buckets[RoutingTable.commonPrefixLength(table.self, r.oldest.key)]!
            expect(bucket[0]).toBe(r.oldest)
            expect(RoutingTable.replace(table, r.oldest.peerId, p, t)._tag).toBe("Added")
            expect(RoutingTable.has(table, r.oldest.peerId)).toBe(false)
          }
        }
      })
    )
  })
  it("randomKeyInBucket(cpl) gives key bytes whose hash shares exactly cpl leading bits with our key", () => {
    fc.assert(
      fc.property(peerId, fc.integer({ min: 0, max: 8 }), fc.integer(), (self, cpl, seed) => {
        const table = RoutingTable.make(self)
        const bytes = RoutingTable.randomKeyInBucket(table, cpl, seed)
        expect(bytes).toBeDefined()
        expect(RoutingTable.commonPrefixLength(table.self, RoutingTable.keyOf(bytes!))).toBe(cpl)
      }),
      { numRuns: 50 }
    )
  })
})
