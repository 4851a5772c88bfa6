import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import fc from "fast-check"
import * as crypto from "node:crypto"
import { ok } from "../../spec-tests/support/result.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Tls from "../../src/security/Tls.ts"
import * as Certificate from "../../src/security/tls/Certificate.ts"
import * as Der from "../../src/security/tls/Der.ts"

describe("DER properties (X.690 §8, §10: one encoding per value)", () => {
  it("INTEGER: decode(encodeUnsigned(n)) = n for non-negative n, minimal contents", () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 200n) - 1n }), (n) => {
      const hex = n.toString(16)
      const enc = Der.encodeUnsigned(Uint8Array.from(Buffer.from(hex.length % 2 ? "0" + hex : hex, "hex")))
      expect(ok(Der.integer(ok(Der.decode(enc)), "n"))).toBe(n)
    }))
  })
  it("OBJECT IDENTIFIER: decode(encode(arcs)) = arcs", () => {
    const oid = fc.tuple(
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 39 }),
      fc.array(fc.bigInt({ min: 0n, max: 1n << 70n }), { maxLength: 8 })
    ).map(([a, b, rest]) => [a, b, ...rest].join("."))
    fc.assert(fc.property(oid, (dotted) => {
      expect(ok(Der.oid(ok(Der.decode(Der.encodeOid(dotted))), "oid"))).toBe(dotted)
    }))
  })
  it("time: UTCTime for 1950-2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5); decode(encode(t)) = t in whole seconds", () => {
    fc.assert(fc.property(fc.integer({ min: -62_000_000_000, max: 253_402_300_799 }), (seconds) => {
      const ms = seconds * 1000
      const enc = Der.encodeTime(ms)
      const year = new Date(ms).getUTCFullYear()
      expect(enc[0]).toBe(year >= 1950 && year < 2050 ? Der.Tag.UTC_TIME : Der.Tag.GENERALIZED_TIME)
      expect(ok(Der.time(ok(Der.decode(enc)), "t"))).toBe(ms)
    }))
  })
  it("lengths: any content length round-trips; the same element with a longer length form is NonCanonical", () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 70_000 }), fc.integer({ min: 1, max: 3 }), (n, extra) => {
      const content = new Uint8Array(n).fill(0xab)
      const enc = Der.encodeOctetString(content)
      expect(ok(Der.octetString(ok(Der.decode(enc)), "x")).byteLength).toBe(n)
      // re-encode the length with `extra` more (zero) bytes than needed
      const headerLen = n < 0x80 ? 1 : 1 + (enc[1]! & 0x7f)
      const lenBytes: Array<number> = []
      for (let v = n; v > 0; v = Math.floor(v / 256)) lenBytes.unshift(v & 0xff)
      const padded = [...new Array<number>(extra).fill(0), ...lenBytes]
      const ber = Uint8Array.from([enc[0]!, 0x80 | padded.length, ...padded, ...enc.subarray(1 + headerLen)])
      if (padded.length <= 4) expect(failureReason(Der.decode(ber))).toBe("NonCanonical")
      else expect(Result.isFailure(Der.decode(ber))).toBe(true)
    }))
  })
  it("arbitrary bytes never crash the decoder; a decoded element re-encodes to the same bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const r = Der.decode(bytes)
      if (Result.isSuccess(r)) expect(Der.encode(r.success.tag, r.success.content)).toEqual(bytes)
      else expect(r.failure._tag).toBe("DerError")
    }))
  })
})

const failureReason = <A>(r: Result.Result<A, Der.DerError>) => (Result.isFailure(r) ? r.failure.reason : "ok")

describe("tls spec §Peer Authentication properties", () => {
  const identity = ok(Keys.ed25519FromSeed(new Uint8Array(32).fill(3)))
  const now = Date.UTC(2025, 0, 1)
  const cert = ok(Certificate.generate(identity, now)).der

  it("\"MUST abort … if the certificate's self-signature is not valid\": every single-byte change of a valid certificate is refused [tls:peer-authentication:8]", () => {
    expect(Result.isSuccess(Certificate.verify(cert, { now }))).toBe(true)
    // every position once (flipping all bits), then random changes
    for (let at = 0; at < cert.byteLength; at++) {
      const bad = Uint8Array.from(cert)
      bad[at]! ^= 0xff
      expect(Result.isFailure(Certificate.verify(bad, { now }))).toBe(true)
    }
    fc.assert(
      fc.property(fc.nat(cert.byteLength - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Uint8Array.from(cert)
        bad[at]! ^= xor
        const r = Certificate.verify(bad, { now })
        expect(Result.isFailure(r)).toBe(true)
      }),
      { numRuns: 500 }
    )
  })
  it("truncations and extensions of a valid certificate are refused as Malformed", () => {
    fc.assert(fc.property(fc.nat(cert.byteLength - 1), fc.uint8Array({ minLength: 1, maxLength: 8 }), (cut, tail) => {
      const reason = (d: Uint8Array) => {
        const r = Certificate.verify(d, { now })
        return Result.isFailure(r) ? r.failure.reason : "ok"
      }
      expect(reason(cert.subarray(0, cut))).toBe("Malformed")
      expect(reason(Uint8Array.from([...cert, ...tail]))).toBe("Malformed")
    }))
  })
  it("arbitrary bytes never make verify throw (a typed CertificateError)", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      const r = Certificate.verify(bytes, { now })
      expect(Result.isFailure(r) && r.failure._tag).toBe("CertificateError")
    }))
  })
  it("validity is the closed interval [notBefore, notAfter] at the given time", () => {
    const parsed = ok(Certificate.parse(cert))
    fc.assert(fc.property(fc.integer({ min: -10 * 365 * 24 * 3600, max: 120 * 365 * 24 * 3600 }), (offsetSeconds) => {
      const t = now + offsetSeconds * 1000
      const r = Certificate.verify(cert, { now: t })
      const inside = t >= parsed.notBefore && t <= parsed.notAfter
      if (inside) expect(Result.isSuccess(r)).toBe(true)
      else expect(Result.isFailure(r) && r.failure.reason).toBe(t < parsed.notBefore ? "NotYetValid" : "Expired")
    }))
  })
})

describe("inlined-muxer-negotiation §Multiplexer Negotiation over TLS properties", () => {
  const name = fc.constantFrom<string>("/yamux/1.0.0", "/mplex/6.7.0", "/a/1", "/b/1", "libp2p")
  it("the server's choice is the first of the client's protocols it supports, or none", () => {
    fc.assert(fc.property(fc.array(name, { maxLength: 5 }), fc.array(name, { maxLength: 4 }), (offered, muxers) => {
      const chosen = Tls.selectProtocol(offered, muxers)
      const supported = (p: string) => p === "libp2p" || muxers.includes(p)
      expect(chosen).toBe(offered.find(supported))
    }))
  })
})

/** A Duplex whose reads hand over the bytes in pieces of the given sizes (cycled). */
const rechunked = (raw: Duplex.Duplex, cuts: ReadonlyArray<number>): Duplex.Duplex => {
  let i = 0
  return {
    ...raw,
    read: Effect.map(raw.read, (chunks) => {
      if (chunks.length === 0) return chunks
      const out: Array<Uint8Array> = []
      for (const c of chunks) {
        let at = 0
        while (at < c.byteLength) {
          const n = Math.max(1, cuts[i++ % cuts.length]!)
          out.push(c.subarray(at, at + n))
          at += n
        }
      }
      return out
    })
  }
}

describe("tls spec §Handshake Protocol properties (TLS as an ordered, reliable byte stream over any Duplex)", () => {
  it.live(
    "bytes written in arbitrary batches arrive intact and in order both ways, then EOF, whatever the raw chunking",
    () =>
      Effect.gen(function*() {
        const tls = yield* Tls.make()
        const a = yield* Keys.generate("Ed25519")
        const b = yield* Keys.generate("Secp256k1")
        const batches = fc.array(fc.array(fc.integer({ min: 0, max: 40_000 }), { minLength: 1, maxLength: 4 }), {
          maxLength: 6
        })
        const cuts = fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 5 })
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(batches, batches, cuts, cuts, async (outB, inB, cutsA, cutsB) => {
              const toBatches = (spec: ReadonlyArray<ReadonlyArray<number>>) =>
                spec.map((sizes) => sizes.map((n) => Uint8Array.from(crypto.randomBytes(n))))
              const outData = toBatches(outB)
              const inData = toBatches(inB)
              const flat = (bs: ReadonlyArray<ReadonlyArray<Uint8Array>>) => Buffer.concat(bs.flat())
              await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
                const [x, y] = yield* Duplex.pair({ capacity: 8 })
                const [o, i] = yield* Effect.all([
                  tls.secureOutbound(rechunked(x, cutsA), { localKey: a }),
                  tls.secureInbound(rechunked(y, cutsB), { localKey: b })
                ], { concurrency: 2 })
                const send = (d: Duplex.Duplex, bs: ReadonlyArray<ReadonlyArray<Uint8Array>>) =>
                  Effect.andThen(Effect.forEach(bs, (batch) => d.write(batch), { discard: true }), d.closeWrite)
                const [, , gotIn, gotOut] = yield* Effect.all([
                  send(o.duplex, outData),
                  send(i.duplex, inData),
                  Duplex.readAll(i.duplex, 1 << 22),
                  Duplex.readAll(o.duplex, 1 << 22)
                ], { concurrency: 4 })
                expect(Buffer.compare(Buffer.from(gotIn), flat(outData))).toBe(0)
                expect(Buffer.compare(Buffer.from(gotOut), flat(inData))).toBe(0)
              })))
            }),
            { numRuns: 25 }
          )
        )
      }),
    60_000
  )
})
