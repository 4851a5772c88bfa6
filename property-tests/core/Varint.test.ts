import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Varint from "../../src/core/Varint.ts"

describe("unsigned-varint properties", () => {
  it("round-trip: decode(encode(n)) = n for every safe integer, using the minimal length", () => {
    fc.assert(fc.property(fc.maxSafeNat(), (n) => {
      const bytes = Varint.encode(n)
      expect(bytes.length).toBe(Varint.encodingLength(n))
      expect(Result.getOrThrow(Varint.decode(bytes))).toEqual({ value: n, bytes: bytes.length })
    }))
  })
  it("round-trip over the spec's full 63-bit range (bigint)", () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }), (n) => {
      const bytes = Varint.encodeBigInt(n)
      expect(bytes.length).toBeLessThanOrEqual(Varint.MAX_BYTES)
      expect(Result.getOrThrow(Varint.decodeBigInt(bytes)).value).toBe(n)
    }))
  })
  it("arbitrary bytes never crash the decoder, and a success re-encodes to the same bytes (canonical)", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
      const r = Varint.decodeBigInt(bytes)
      if (Result.isSuccess(r)) {
        expect(Varint.encodeBigInt(r.success.value)).toEqual(bytes.subarray(0, r.success.bytes))
      } else {
        expect(r.failure._tag).toBe("VarintError")
      }
    }))
  })
})
