import { describe, expect, it } from "@effect/vitest"
import { secp256k1 } from "@noble/curves/secp256k1.js"
import { Equal, Hash, Option, Result } from "effect"
import fc from "fast-check"
import { ok } from "../../spec-tests/support/result.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multibase from "../../src/core/Multibase.ts"
import * as Multihash from "../../src/core/Multihash.ts"
import * as PeerId from "../../src/core/PeerId.ts"

const ed25519Id = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((seed) => PeerId.fromPrivateKey(ok(Keys.ed25519FromSeed(seed))))
const secp256k1Id = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .filter((b) => secp256k1.utils.isValidSecretKey(b))
  .map((raw) => PeerId.fromPrivateKey(ok(Keys.privateKeyFromRaw("Secp256k1", raw))))
/** A sha2-256 peer id (the hash of an RSA or ECDSA key, whose key is not inlined). */
const hashedId = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((digest) => ok(PeerId.fromBytes(Multihash.make(0x12, digest).bytes)))
const anyId = fc.oneof(ed25519Id, secp256k1Id, hashedId)

describe("peer-ids spec §Peer Ids properties", () => {
  it("§String representation: fromString(toString(id)) = id, and the legacy string starts with 1 or Qm", () => {
    fc.assert(
      fc.property(anyId, (id) => {
        const text = PeerId.toString(id)
        expect(text.startsWith("1") || text.startsWith("Qm")).toBe(true)
        expect(PeerId.equals(ok(PeerId.fromString(text)), id)).toBe(true)
      })
    )
  })

  it("§Decoding: a CIDv1 string in any multibase encoding decodes to the same id", () => {
    fc.assert(
      fc.property(anyId, fc.constantFrom(...Multibase.encodings), (id, encoding) => {
        const parsed = ok(PeerId.fromString(PeerId.toCidString(id, encoding)))
        expect(Equal.equals(parsed, id)).toBe(true)
        expect(Hash.hash(parsed)).toBe(Hash.hash(id))
        expect(PeerId.equals(ok(PeerId.fromCidBytes(PeerId.toCidBytes(id))), id)).toBe(true)
      })
    )
  })

  it("bytes round-trip: fromBytes(toBytes(id)) = id; the inlined key survives and derives the same id", () => {
    fc.assert(
      fc.property(anyId, (id) => {
        const parsed = ok(PeerId.fromBytes(PeerId.toBytes(id)))
        expect(PeerId.equals(parsed, id)).toBe(true)
        expect(PeerId.toString(parsed)).toBe(PeerId.toString(id))
        const key = PeerId.publicKey(parsed)
        const isIdentity = PeerId.toBytes(id)[0] === 0x00
        expect(Option.isSome(key)).toBe(isIdentity)
        if (Option.isSome(key)) expect(PeerId.equals(PeerId.fromPublicKey(key.value), id)).toBe(true)
      })
    )
  })

  it("distinct keys give distinct ids", () => {
    fc.assert(
      fc.property(ed25519Id, ed25519Id, (a, b) => {
        expect(PeerId.equals(a, b)).toBe(PeerId.toString(a) === PeerId.toString(b))
      })
    )
  })

  it("arbitrary strings and bytes never crash the decoders: each decodes or fails with a typed PeerIdError", () => {
    const check = (r: Result.Result<PeerId.PeerId, PeerId.PeerIdError>) => {
      if (Result.isFailure(r)) expect(r.failure._tag).toBe("PeerIdError")
      else expect(PeerId.equals(ok(PeerId.fromBytes(PeerId.toBytes(r.success))), r.success)).toBe(true)
    }
    const nearlyValid = anyId.chain((id) =>
      fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })).map(([at, delta]) => {
        const bytes = PeerId.toBytes(id)
        bytes[at % bytes.length] = (bytes[at % bytes.length]! + delta) & 0xff
        return bytes
      })
    )
    fc.assert(
      fc.property(fc.string(), (text) => check(PeerId.fromString(text))),
      { numRuns: 300 }
    )
    fc.assert(
      fc.property(fc.stringMatching(/^(1|Qm|b|z|k|f)[1-9A-Za-z]{0,60}$/), (text) => check(PeerId.fromString(text))),
      { numRuns: 300 }
    )
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), nearlyValid), (bytes) => {
        check(PeerId.fromBytes(bytes))
        check(PeerId.fromCidBytes(bytes))
      }),
      { numRuns: 300 }
    )
  })
})
