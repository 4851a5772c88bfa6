/**
 * Bad input for the `/ipns/` validator and its DAG-CBOR decoder (IPNS spec
 * §Record Verification): arbitrary bytes and mutated records give a typed
 * failure, never a throw; a mutated record never verifies unless it is the original.
 */
import { describe, expect, it } from "@effect/vitest"
import { Bytes, Result } from "effect"
import fc from "fast-check"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as DagCbor from "../../../src/protocols/kad/dagCbor.ts"
import { Ipns } from "../../../src/protocols/kad/Kad.ts"

const seed = new Uint8Array(32).fill(9)
const key = Result.getOrThrow(Keys.ed25519FromSeed(seed))
const name = Ipns.ipnsKey(PeerId.fromPrivateKey(key))
const NOW_MS = 1_765_000_000_000
const record = Result.getOrThrow(
  Ipns.create(key, new TextEncoder().encode("/ipfs/bafkqaddwgevxmmraojswg33smq"), {
    sequence: 3n,
    eolNanos: BigInt(NOW_MS + 3_600_000) * 1_000_000n,
    v1: true
  })
)

describe("IPNS bad input", () => {
  it("DAG-CBOR decode of arbitrary bytes returns a Result, never throws", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      const r = DagCbor.decode(bytes)
      expect(Result.isSuccess(r) || typeof r.failure === "string").toBe(true)
    }))
  })

  it("verify of arbitrary bytes fails with an IpnsError reason", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      const r = Ipns.verify(name, bytes, NOW_MS)
      expect(Result.isFailure(r) && Ipns.IpnsErrorReason.literals.includes(r.failure.reason)).toBe(true)
    }))
  })

  it("a record with one byte changed is either rejected or decodes to the same signed data", () => {
    fc.assert(
      fc.property(fc.nat(record.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const mutated = record.slice()
        mutated[at]! ^= xor
        const r = Ipns.verify(name, mutated, NOW_MS)
        if (Result.isSuccess(r)) {
          // only bytes outside the signed part (signatureV1, which is never trusted) may change
          const original = Result.getOrThrow(Ipns.verify(name, record, NOW_MS))
          expect(Bytes.Equivalence(r.success.value, original.value)).toBe(true)
          expect(r.success.sequence).toBe(original.sequence)
        }
      }),
      { numRuns: 500 }
    )
  })
})
