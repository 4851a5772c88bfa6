import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Multibase from "../../src/core/Multibase.ts"
import * as Multihash from "../../src/core/Multihash.ts"

describe("multibase properties (multibase spec §Format)", () => {
  it("decode(encode(e, bytes)) = (e, bytes) for every supported encoding, leading zeros included", () => {
    fc.assert(
      fc.property(fc.constantFrom(...Multibase.encodings), fc.uint8Array({ maxLength: 64 }), (encoding, bytes) => {
        const decoded = Result.getOrThrow(Multibase.decode(Multibase.encode(encoding, bytes)))
        expect(decoded.encoding).toBe(encoding)
        expect(decoded.bytes).toEqual(bytes)
      }),
      { numRuns: 500 }
    )
  })

  it("arbitrary strings never crash decode: they decode or fail with a typed MultibaseError", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: "grapheme" })), (text) => {
        const r = Multibase.decode(text)
        if (Result.isFailure(r)) expect(r.failure._tag).toBe("MultibaseError")
      }),
      { numRuns: 1000 }
    )
  })
})

describe("multihash properties (multihash spec §Format)", () => {
  it("decode(make(code, digest)) gives back the code and digest", () => {
    fc.assert(
      fc.property(fc.nat({ max: 0x7fffffff }), fc.uint8Array({ maxLength: 200 }), (code, digest) => {
        const mh = Multihash.make(code, digest)
        const decoded = Result.getOrThrow(Multihash.decode(mh.bytes))
        expect(decoded.code).toBe(code)
        expect(decoded.digest).toEqual(digest)
      })
    )
  })

  it("a computed digest has the function's code and the requested length", () => {
    const sizes: Record<Multihash.HashName, number> = {
      identity: -1,
      sha1: 20,
      "sha2-256": 32,
      "sha2-512": 64,
      "sha3-512": 64
    }
    fc.assert(
      fc.property(
        fc.constantFrom<Multihash.HashName>("sha1", "sha2-256", "sha2-512", "sha3-512"),
        fc.uint8Array({ maxLength: 100 }),
        fc.nat({ max: 64 }),
        (name, data, length) => {
          const r = Multihash.digest(name, data, length)
          if (length > sizes[name]) {
            expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidLength")
            return
          }
          const mh = Result.getOrThrow(r)
          expect(mh.code).toBe(Multihash.codes[name])
          expect(mh.digest.length).toBe(length)
          expect(mh.digest).toEqual(Result.getOrThrow(Multihash.digest(name, data)).digest.subarray(0, length))
        }
      )
    )
  })

  it("arbitrary bytes never crash decode, and a success re-encodes to the same bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const r = Multihash.decode(bytes)
        if (Result.isSuccess(r)) expect(Multihash.make(r.success.code, r.success.digest).bytes).toEqual(bytes)
        else expect(r.failure._tag).toBe("MultihashError")
      }),
      { numRuns: 1000 }
    )
  })
})
