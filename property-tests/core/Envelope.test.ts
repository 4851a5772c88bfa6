import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import fc from "fast-check"
import { ok } from "../../spec-tests/support/result.ts"
import * as Envelope from "../../src/core/Envelope.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as PeerRecord from "../../src/core/PeerRecord.ts"

const slowKeys = {
  Secp256k1: Effect.runSync(Keys.generate("Secp256k1")),
  ECDSA: Effect.runSync(Keys.generate("ECDSA")),
  RSA: await Effect.runPromise(Keys.generate("RSA"))
}
const ed25519Key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((seed) => ok(Keys.ed25519FromSeed(seed)))
const anyKey: fc.Arbitrary<Keys.PrivateKey> = fc.oneof(
  { weight: 4, arbitrary: ed25519Key },
  fc.constantFrom(slowKeys.Secp256k1, slowKeys.ECDSA, slowKeys.RSA)
)

const envelopeInput = fc.record({
  key: anyKey,
  domain: fc.string({ maxLength: 40 }),
  payloadType: fc.uint8Array({ maxLength: 8 }),
  payload: fc.uint8Array({ maxLength: 200 })
})

describe("RFC 0002 signed envelope properties", () => {
  it("§Signature Production/Verification: open(encode(seal(...)), domain) gives back the key, payload type and payload", () => {
    fc.assert(
      fc.property(envelopeInput, ({ domain, key, payload, payloadType }) => {
        const bytes = Envelope.encode(ok(Envelope.seal(key, domain, payloadType, payload)))
        const opened = ok(Envelope.open(bytes, domain, payloadType))
        expect(Keys.equals(opened.publicKey, key.publicKey)).toBe(true)
        expect(opened.payloadType).toEqual(payloadType)
        expect(opened.payload).toEqual(payload)
        expect(PeerId.equals(Envelope.peerId(opened), PeerId.fromPrivateKey(key))).toBe(true)
      }),
      { numRuns: 100 }
    )
  })

  it("§Domain Separation: an envelope never opens under another domain", () => {
    fc.assert(
      fc.property(envelopeInput, fc.string({ maxLength: 40 }), ({ domain, key, payload, payloadType }, other) => {
        fc.pre(other !== domain)
        const bytes = Envelope.encode(ok(Envelope.seal(key, domain, payloadType, payload)))
        const r = Envelope.open(bytes, other)
        expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidSignature")
      }),
      { numRuns: 100 }
    )
  })

  it("any single-byte change to an envelope makes open fail (every position, every key type)", () => {
    fc.assert(
      fc.property(envelopeInput, fc.integer({ min: 1, max: 255 }), ({ domain, key, payload, payloadType }, delta) => {
        const bytes = Envelope.encode(ok(Envelope.seal(key, domain, payloadType, payload)))
        for (let i = 0; i < bytes.length; i++) {
          const changed = Uint8Array.from(bytes)
          changed[i] = (changed[i]! + delta) & 0xff
          expect(Result.isSuccess(Envelope.open(changed, domain)), `byte ${i}`).toBe(false)
        }
      }),
      { numRuns: 20 }
    )
  })

  it("arbitrary bytes never crash decode/open: each fails with a typed EnvelopeError or decodes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.string({ maxLength: 20 }), (bytes, domain) => {
        for (const r of [Envelope.decode(bytes), Envelope.open(bytes, domain)]) {
          if (Result.isFailure(r)) expect(r.failure._tag).toBe("EnvelopeError")
        }
      }),
      { numRuns: 500 }
    )
  })
})

describe("RFC 0003 peer record properties", () => {
  const record = fc.record({
    key: ed25519Key,
    seq: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    addrs: fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 8 })
  })

  it("§Address Record Format: decode(encode(record)) = record for any uint64 seq and address bytes", () => {
    fc.assert(
      fc.property(record, ({ addrs, key, seq }) => {
        const r: PeerRecord.PeerRecord = { peerId: PeerId.fromPrivateKey(key), seq, addrs }
        const decoded = ok(PeerRecord.decode(PeerRecord.encode(r)))
        expect(PeerId.equals(decoded.peerId, r.peerId)).toBe(true)
        expect(decoded.seq).toBe(seq)
        expect(decoded.addrs).toEqual(addrs)
      })
    )
  })

  it("§Certification: openSigned(seal(key, record)) = record, and any single-byte change is rejected", () => {
    fc.assert(
      fc.property(record, fc.integer({ min: 1, max: 255 }), ({ addrs, key, seq }, delta) => {
        const r: PeerRecord.PeerRecord = { peerId: PeerId.fromPrivateKey(key), seq, addrs }
        const sealed = ok(PeerRecord.seal(key, r))
        const opened = ok(PeerRecord.openSigned(sealed))
        expect(opened.seq).toBe(seq)
        expect(opened.addrs).toEqual(addrs)
        for (let i = 0; i < sealed.length; i++) {
          const changed = Uint8Array.from(sealed)
          changed[i] = (changed[i]! + delta) & 0xff
          expect(Result.isSuccess(PeerRecord.openSigned(changed)), `byte ${i}`).toBe(false)
        }
      }),
      { numRuns: 15 }
    )
  })

  it("arbitrary bytes never crash decode/openSigned", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const r of [PeerRecord.decode(bytes), PeerRecord.openSigned(bytes)]) {
          if (Result.isFailure(r)) expect(r.failure._tag).toBe("PeerRecordError")
        }
      }),
      { numRuns: 500 }
    )
  })
})
