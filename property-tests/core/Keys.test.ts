import { describe, expect, it } from "@effect/vitest"
import { secp256k1 } from "@noble/curves/secp256k1.js"
import { Effect, Result } from "effect"
import fc from "fast-check"
import { ok } from "../../spec-tests/support/result.ts"
import * as Keys from "../../src/core/Keys.ts"

/** Keys of every type: Ed25519 and secp256k1 drawn by fast-check, ECDSA and RSA generated once (slow). */
const fixed = Effect.runSync(
  Effect.all({
    ecdsa: Keys.generate("ECDSA"),
    secp: Keys.generate("Secp256k1")
  })
)
const rsa = await Effect.runPromise(Keys.generate("RSA"))

const ed25519Key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((seed) => ok(Keys.ed25519FromSeed(seed)))
const secp256k1Key = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .filter((b) => secp256k1.utils.isValidSecretKey(b))
  .map((raw) => ok(Keys.privateKeyFromRaw("Secp256k1", raw)))
const anyKey: fc.Arbitrary<Keys.PrivateKey> = fc.oneof(
  ed25519Key,
  secp256k1Key,
  fc.constant(fixed.ecdsa),
  fc.constant(fixed.secp),
  fc.constant(rsa)
)

describe("peer-ids spec §Keys properties", () => {
  it("marshal/unmarshal round-trip: PrivateKey and PublicKey messages decode to equal keys and re-encode to the same bytes", () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        const privateBytes = Keys.privateKeyToProtobuf(key)
        const again = ok(Keys.privateKeyFromProtobuf(privateBytes))
        expect(Keys.equals(again, key)).toBe(true)
        expect(Keys.privateKeyToProtobuf(again)).toEqual(privateBytes)
        const publicBytes = Keys.publicKeyToProtobuf(key.publicKey)
        const publicKey = ok(Keys.publicKeyFromProtobuf(publicBytes))
        expect(Keys.equals(publicKey, key.publicKey)).toBe(true)
        expect(Keys.publicKeyToProtobuf(publicKey)).toEqual(publicBytes)
        expect(Keys.equals(ok(Keys.publicKeyFromRaw(key.type, key.publicKey.raw)), key.publicKey)).toBe(true)
      }),
      { numRuns: 60 }
    )
  })

  it("§Key Types signing: a signature verifies for its message and key, and fails after any change to signature or message", () => {
    fc.assert(
      fc.property(
        anyKey,
        fc.uint8Array({ maxLength: 256 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (key, message, at, delta) => {
          const signature = ok(key.sign(message))
          expect(key.publicKey.verify(message, signature)).toBe(true)
          const badSignature = Uint8Array.from(signature)
          const i = at % badSignature.length
          badSignature[i] = (badSignature[i]! + delta) & 0xff
          expect(key.publicKey.verify(message, badSignature)).toBe(false)
          // the message changed in one byte, or (when empty) extended by one
          const badMessage = message.length === 0 ? Uint8Array.of(delta) : Uint8Array.from(message)
          if (message.length > 0) badMessage[at % message.length] = (message[at % message.length]! + delta) & 0xff
          expect(key.publicKey.verify(badMessage, signature)).toBe(false)
          expect(key.publicKey.verify(message, signature.subarray(0, signature.length - 1))).toBe(false)
        }
      ),
      { numRuns: 80 }
    )
  })

  it("a signature by one key does not verify under another key", () => {
    fc.assert(
      fc.property(ed25519Key, ed25519Key, fc.uint8Array(), (a, b, message) => {
        fc.pre(!Keys.equals(a, b))
        expect(b.publicKey.verify(message, ok(a.sign(message)))).toBe(false)
      })
    )
  })

  it("arbitrary bytes never crash the decoders: each decodes or fails with a typed KeyError", () => {
    const framed = fc
      .tuple(fc.integer({ min: 0, max: 5 }), fc.uint8Array({ maxLength: 200 }))
      .map(([type, data]) => Uint8Array.of(0x08, type, 0x12, ...encodeLength(data.length), ...data))
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), framed), (bytes) => {
        const decoded: Array<Result.Result<unknown, Keys.KeyError>> = [
          Keys.publicKeyFromProtobuf(bytes),
          Keys.privateKeyFromProtobuf(bytes)
        ]
        for (const r of decoded) {
          if (Result.isFailure(r)) expect(r.failure._tag).toBe("KeyError")
        }
        for (const type of Keys.keyTypes) {
          const raw: Array<Result.Result<unknown, Keys.KeyError>> = [
            Keys.publicKeyFromRaw(type, bytes),
            Keys.privateKeyFromRaw(type, bytes)
          ]
          for (const r of raw) {
            if (Result.isFailure(r)) expect(r.failure._tag).toBe("KeyError")
          }
        }
      }),
      { numRuns: 300 }
    )
  })

  it("a successful decode of arbitrary bytes is canonical: re-encoding gives the input back", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 50 }), (bytes) => {
        const r = Keys.publicKeyFromProtobuf(bytes)
        if (Result.isSuccess(r) && r.success.type === "Ed25519") {
          expect(Keys.publicKeyToProtobuf(r.success)).toEqual(bytes)
        }
      })
    )
  })
})

const encodeLength = (n: number): Array<number> => (n < 0x80 ? [n] : [(n & 0x7f) | 0x80, n >> 7])
