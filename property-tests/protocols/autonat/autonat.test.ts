/**
 * Properties of AutoNAT v2's messages and its per-address verdicts
 * (autonat-v2.md §RPC Messages, §Implementation Suggestions): every message
 * survives an encode/decode round trip; arbitrary bytes decode to a typed
 * failure or a message, never a throw; the tracker keeps at most `window`
 * results per address, one per server, and its verdict follows the counts.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import * as AutoNat from "../../../src/protocols/autonat/AutoNat.ts"
import { overall, Tracker } from "../../../src/protocols/autonat/reachability.ts"

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
const u32 = fc.integer({ min: 0, max: 0xffff_ffff })
const bytes = fc.uint8Array({ maxLength: 64 })

const message: fc.Arbitrary<AutoNat.Message> = fc.oneof(
  fc.record({ dialRequest: fc.record({ addrs: fc.array(bytes, { maxLength: 8 }), nonce: u64 }) }),
  fc.record({
    dialResponse: fc.record({
      status: fc.constantFrom(0, 100, 101, 200),
      addrIdx: u32,
      dialStatus: fc.constantFrom(0, 100, 101, 200)
    })
  }),
  fc.record({ dialDataRequest: fc.record({ addrIdx: u32, numBytes: u64 }) }),
  fc.record({ dialDataResponse: fc.record({ data: fc.uint8Array({ maxLength: 4096 }) }) })
)

describe("autonat-v2 §RPC Messages", () => {
  it("Message, DialBack and DialBackResponse round-trip", () => {
    fc.assert(fc.property(message, (m) => {
      const decoded = AutoNat.Message.decode(AutoNat.Message.encode(m))
      expect(decoded._tag).toBe("Success")
      if (decoded._tag === "Success") expect(decoded.success).toMatchObject(m)
    }))
    fc.assert(fc.property(u64, (nonce) => {
      const d = AutoNat.DialBack.decode(AutoNat.DialBack.encode({ nonce }))
      expect(d._tag === "Success" && d.success.nonce === nonce).toBe(true)
    }))
  })

  it("arbitrary bytes decode to a Result, never a throw", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (b) => {
      expect(["Success", "Failure"]).toContain(AutoNat.Message.decode(b)._tag)
      expect(["Success", "Failure"]).toContain(AutoNat.DialBack.decode(b)._tag)
      expect(["Success", "Failure"]).toContain(AutoNat.V1Message.decode(b)._tag)
    }))
  })
})

describe("autonat-v2 §Implementation Suggestions: the verdict of an address", () => {
  it("at most `window` results, one per server; public/private iff successes and failures differ by minConfidence", () => {
    const result = fc.record({ server: fc.integer({ min: 0, max: 9 }), ok: fc.boolean() })
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(result, { maxLength: 40 }), (window, results) => {
        const minConfidence = Math.min(3, window)
        const t = new Tracker(window, minConfidence, 8)
        const last = new Map<number, boolean>()
        results.forEach((r, i) => {
          t.record("a", String(r.server), r.ok, i)
          last.delete(r.server)
          last.set(r.server, r.ok)
        })
        const kept = Array.from(last.values()).slice(-window)
        const v = t.verdict("a")
        expect(v.successes + v.failures).toBe(kept.length)
        expect(v.successes).toBe(kept.filter((x) => x).length)
        const expected = v.successes - v.failures >= minConfidence
          ? "public"
          : v.failures - v.successes >= minConfidence
          ? "private"
          : "unknown"
        expect(v.reachability).toBe(expected)
        expect(t.servers("a").size).toBe(kept.length)
      })
    )
  })

  it("the node is public if any address is, private if all are, else unknown", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom("public", "private", "unknown") as fc.Arbitrary<"public" | "private" | "unknown">),
        (vs) => {
          const o = overall(vs)
          if (vs.includes("public")) expect(o).toBe("public")
          else if (vs.length > 0 && vs.every((v) => v === "private")) expect(o).toBe("private")
          else expect(o).toBe("unknown")
        }
      )
    )
  })
})
