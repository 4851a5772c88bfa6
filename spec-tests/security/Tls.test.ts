import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as crypto from "node:crypto"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { SecurityError } from "../../src/security/SecureChannel.ts"
import * as Tls from "../../src/security/Tls.ts"
import * as Certificate from "../../src/security/tls/Certificate.ts"
import * as Der from "../../src/security/tls/Der.ts"
import * as Transcript from "../../src/security/tls/Transcript.ts"
import { ok } from "../support/result.ts"
import { identity } from "../support/security.ts"
import {
  alpnNames,
  clientHelloExtensions,
  craft,
  HOUR,
  libp2pExt,
  nodePeer,
  type NodePeerOptions,
  p256,
  watch
} from "../support/tls.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

const failure = <A, E>(r: Result.Result<A, E>): E => {
  if (Result.isSuccess(r)) throw new Error("expected a failure")
  return r.failure
}

interface SpecVectors {
  readonly constants: {
    readonly extension_oid: string
    readonly signature_prefix: string
    readonly alpn: string
    readonly multistream_protocol_id: string
  }
  readonly vectors: ReadonlyArray<{
    readonly name: string
    readonly certificate_der_hex: string
    readonly expected_peer_id: string | null
    readonly valid: boolean
  }>
}
const spec = readJson<SpecVectors>("libp2p-specs/tls-certificates.json")

interface RustVectors {
  readonly fixed_extension_from_openssl_cfg: {
    readonly oid: string
    readonly critical: boolean
    readonly publicKey_protobuf_hex: string
    readonly signature_hex: string
  }
  readonly certificates: ReadonlyArray<{
    readonly file: string
    readonly der_hex: string
    readonly expected_signature_scheme: string | null
    readonly expected: string
  }>
}
const rust = readJson<RustVectors>("interop/tls-rust-libp2p-test-certs.json")

/** rustls' SignatureScheme names → RFC 8446 §4.2.3 names (rustls' RSA_PSS_* are the rsa_pss_rsae_* code points). */
const RUST_SCHEMES: Record<string, Certificate.SignatureScheme> = {
  ED25519: "ed25519",
  ED448: "ed448",
  RSA_PKCS1_SHA256: "rsa_pkcs1_sha256",
  RSA_PKCS1_SHA384: "rsa_pkcs1_sha384",
  RSA_PKCS1_SHA512: "rsa_pkcs1_sha512",
  RSA_PSS_SHA256: "rsa_pss_rsae_sha256",
  RSA_PSS_SHA384: "rsa_pss_rsae_sha384",
  RSA_PSS_SHA512: "rsa_pss_rsae_sha512",
  ECDSA_NISTP256_SHA256: "ecdsa_secp256r1_sha256",
  ECDSA_NISTP384_SHA384: "ecdsa_secp384r1_sha384",
  ECDSA_NISTP521_SHA512: "ecdsa_secp521r1_sha512"
}

/** A fixed time at which every vector certificate is in its validity period, except where noted. */
const IN_2022_01 = Date.UTC(2022, 0, 1)
const IN_2030 = Date.UTC(2030, 0, 1)

const YAMUX = "/yamux/1.0.0"
const MPLEX = "/mplex/6.7.0"

// ---------------------------------------------------------------------------
// vectors

describe("tls spec §Test vectors (libp2p/specs tls/tls.md) [tls:test-vectors:1]", () => {
  it("the constants: extension OID, signature prefix, ALPN and protocol id [tls:handshake-protocol:4]", () => {
    expect(Certificate.EXTENSION_OID).toBe(spec.constants.extension_oid)
    expect(Certificate.SIGNATURE_PREFIX).toBe(spec.constants.signature_prefix)
    expect(Tls.ALPN).toBe(spec.constants.alpn)
    expect(Tls.PROTOCOL).toBe(spec.constants.multistream_protocol_id)
  })

  for (const v of spec.vectors) {
    it(`§Test vectors ${v.name}`, () => {
      const der = fromHex(v.certificate_der_hex)
      const r = Certificate.verify(der, { now: IN_2030 })
      if (v.valid) {
        const verified = ok(r)
        expect(verified.peerId.toString()).toBe(v.expected_peer_id)
        // the expected peer passes, any other fails with PeerIdMismatch
        expect(Result.isSuccess(Certificate.verify(der, { now: IN_2030, remotePeer: verified.peerId }))).toBe(true)
        const other = PeerId.fromPublicKey(verified.publicKey.type === "Ed25519" ? otherKey.publicKey : edKey.publicKey)
        expect(failure(Certificate.verify(der, { now: IN_2030, remotePeer: other })).reason).toBe("PeerIdMismatch")
      } else {
        // "a mismatch between the Peer ID that it claims to authenticate vs the key that was used to sign it"
        expect(failure(r).reason).toBe("InvalidSignature")
      }
    })
  }
})

const edKey = ok(Keys.ed25519FromSeed(new Uint8Array(32).fill(7)))
const otherKey = ok(Keys.ed25519FromSeed(new Uint8Array(32).fill(9)))

describe("tls spec §Peer Authentication: rust-libp2p's certificate test assets (transports/tls/src/test_assets)", () => {
  const fixed = rust.fixed_extension_from_openssl_cfg
  for (const v of rust.certificates) {
    it(`${v.file}: ${v.expected}`, () => {
      const der = fromHex(v.der_hex)
      const cert = ok(Certificate.parse(der))
      const scheme = Certificate.signatureScheme(cert)
      if (v.expected_signature_scheme === null) {
        // P-384 with SHA-256 is not a TLS 1.3 signature scheme
        expect(failure(scheme).reason).toBe("UnsupportedSignatureScheme")
        expect(failure(Certificate.verify(der, { now: cert.notBefore })).reason).toBe("UnsupportedSignatureScheme")
        return
      }
      expect(ok(scheme)).toBe(RUST_SCHEMES[v.expected_signature_scheme])
      const ext = cert.extensions.find((e) => e.oid === Certificate.EXTENSION_OID)!
      expect(ext).toBeDefined()
      const signed = ok(Certificate.decodeSignedKey(ext.value))
      if (v.expected.startsWith("full parse")) {
        // rsa_pss_sha384.der: valid until 2121, its libp2p extension non-critical (the spec: "MAY be marked critical")
        expect(ext.critical).toBe(false)
        const verified = ok(Certificate.verify(der, { now: IN_2030 }))
        expect(verified.scheme).toBe("rsa_pss_rsae_sha384")
        const expectedPeer = PeerId.fromPublicKey(ok(Keys.publicKeyFromProtobuf(signed.publicKey)))
        expect(verified.peerId.toString()).toBe(expectedPeer.toString())
        return
      }
      // the openssl.cfg extension: the right key, a signature made for another certificate key
      expect(ext.critical).toBe(fixed.critical)
      expect(toHex(signed.publicKey)).toBe(fixed.publicKey_protobuf_hex)
      expect(toHex(signed.signature)).toBe(fixed.signature_hex)
      // within the validity period everything else verifies (self-signature, scheme, extensions) …
      expect(failure(Certificate.verify(der, { now: cert.notBefore + 1000 })).reason).toBe("InvalidSignature")
      // … and at a time after 2022-01-14 the validity check refuses it first
      expect(cert.notAfter).toBe(Date.UTC(2022, 0, 14, 1, 10, 45))
      expect(failure(Certificate.verify(der, { now: IN_2022_01 + 30 * 24 * HOUR })).reason).toBe("Expired")
      expect(failure(Certificate.verify(der, { now: cert.notBefore - 1000 })).reason).toBe("NotYetValid")
    })
  }
})

// ---------------------------------------------------------------------------
// our certificates

describe("tls spec §Peer Authentication / §libp2p Public Key Extension: the certificates we generate", () => {
  for (const type of Keys.keyTypes) {
    it(`a ${type} identity: verifies, authenticates the identity's peer id, as the spec lays out [tls:handshake-protocol:2] [tls:peer-authentication:3] [tls:peer-authentication:6] [tls:peer-authentication:9] [tls:peer-authentication:1] [tls:peer-authentication:4]`, () =>
      Effect.gen(function*() {
        const key = yield* identity(type)
        const now = Date.UTC(2025, 5, 1, 12, 0, 0)
        const local = ok(Certificate.generate(key, now))
        const verified = ok(Certificate.verify(local.der, { now, remotePeer: PeerId.fromPrivateKey(key) }))
        expect(verified.peerId.toString()).toBe(PeerId.fromPrivateKey(key).toString())
        expect(Keys.equals(verified.publicKey, key.publicKey)).toBe(true)
        expect(verified.scheme).toBe("ecdsa_secp256r1_sha256")
        const cert = verified.certificate
        // valid from an hour before `now` for 100 years (go-libp2p's window), whole seconds
        expect(cert.notBefore).toBe(now - HOUR)
        expect(cert.notAfter).toBe(now + Certificate.LIFETIME_MS)
        expect(cert.serialNumber > 0n).toBe(true)
        // the libp2p extension is the only one, critical, and its signature covers prefix ‖ SPKI
        expect(cert.extensions.map((e) => [e.oid, e.critical])).toEqual([[Certificate.EXTENSION_OID, true]])
        const signed = ok(Certificate.decodeSignedKey(cert.extensions[0]!.value))
        expect(toHex(signed.publicKey)).toBe(toHex(Keys.publicKeyToProtobuf(key.publicKey)))
        const data = Certificate.signedData(cert.subjectPublicKeyInfo)
        expect(Buffer.from(data.subarray(0, 21)).toString()).toBe("libp2p-tls-handshake:")
        expect(key.publicKey.verify(data, signed.signature)).toBe(true)
        // OpenSSL reads it as a self-signed certificate for a P-256 key
        const x509 = new crypto.X509Certificate(local.der)
        expect(x509.verify(x509.publicKey)).toBe(true)
        expect(x509.checkIssued(x509)).toBe(true)
        expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1")
        expect(x509.validFromDate.getTime()).toBe(now - HOUR)
        // a fresh certificate key each time, a different serial
        const again = ok(Certificate.generate(key, now))
        expect(toHex(ok(Certificate.parse(again.der)).subjectPublicKeyInfo)).not.toBe(toHex(cert.subjectPublicKeyInfo))
        expect(ok(Certificate.parse(again.der)).serialNumber).not.toBe(cert.serialNumber)
      }))
  }
})

describe("tls spec §Peer Authentication: refusing certificates", () => {
  const now = Date.UTC(2025, 0, 1)
  const base = { notBefore: now - HOUR, notAfter: now + HOUR }
  const good = (spki: Uint8Array) => [libp2pExt(edKey, spki)]
  const reason = (der: Uint8Array, remotePeer?: PeerId.PeerId) => {
    const r = Certificate.verify(der, { now, remotePeer })
    return Result.isSuccess(r) ? "ok" : r.failure.reason
  }

  it("a well-formed certificate passes (baseline for the cases below)", () => {
    expect(reason(craft({ ...base, extensions: good }).der)).toBe("ok")
  })
  it("\"If this extension is missing, endpoints MUST abort\": MissingExtension [tls:peer-authentication:10]", () => {
    expect(reason(craft({ ...base, extensions: () => [] }).der)).toBe("MissingExtension")
    expect(
      reason(
        craft({ ...base, extensions: () => [{ oid: "1.2.3.4", critical: false, value: Uint8Array.of(5, 0) }] }).der
      )
    )
      .toBe("MissingExtension")
  })
  it("\"Peers MUST verify the signature\": a signature over another certificate key is InvalidSignature [tls:libp2p-public-key-extension:2]", () => {
    const other = Certificate.spkiOf(p256().publicKey)
    expect(reason(craft({ ...base, extensions: () => [libp2pExt(edKey, other)] }).der)).toBe("InvalidSignature")
  })
  it("a signature without the \"libp2p-tls-handshake:\" prefix is InvalidSignature", () => {
    const der = craft({
      ...base,
      extensions: (spki) => [{
        oid: Certificate.EXTENSION_OID,
        critical: true,
        value: Certificate.encodeSignedKey({
          publicKey: Keys.publicKeyToProtobuf(edKey.publicKey),
          signature: ok(edKey.sign(spki))
        })
      }]
    }).der
    expect(reason(der)).toBe("InvalidSignature")
  })
  it("\"Clients MUST verify that the peer ID derived from the certificate matches\": PeerIdMismatch [tls:libp2p-public-key-extension:1]", () => {
    const der = craft({ ...base, extensions: good }).der
    expect(reason(der, PeerId.fromPrivateKey(edKey))).toBe("ok")
    expect(reason(der, PeerId.fromPrivateKey(otherKey))).toBe("PeerIdMismatch")
  })
  it("\"MAY be marked critical\": a non-critical libp2p extension is accepted [tls:peer-authentication:11]", () => {
    expect(reason(craft({ ...base, extensions: (spki) => [libp2pExt(edKey, spki, false)] }).der)).toBe("ok")
  })
  it("\"MUST ignore non-critical extensions with unknown OIDs\", \"MUST abort … critical extensions that the endpoint does not understand\" [tls:peer-authentication:12] [tls:peer-authentication:13] [tls:peer-authentication:14]", () => {
    const unknown = (critical: boolean) => ({ oid: "1.3.6.1.4.1.99999.1", critical, value: Der.encodeNull() })
    expect(reason(craft({ ...base, extensions: (spki) => [unknown(false), ...good(spki)] }).der)).toBe("ok")
    expect(reason(craft({ ...base, extensions: (spki) => [...good(spki), unknown(true)] }).der)).toBe(
      "UnknownCriticalExtension"
    )
    // a critical basicConstraints (2.5.29.19) is not one we act on either
    const bc = { oid: "2.5.29.19", critical: true, value: Der.encodeSequence([]) }
    expect(reason(craft({ ...base, extensions: (spki) => [...good(spki), bc] }).der)).toBe("UnknownCriticalExtension")
  })
  it("an extension twice (RFC 5280 §4.2) is Malformed", () => {
    expect(reason(craft({ ...base, extensions: (spki) => [...good(spki), ...good(spki)] }).der)).toBe("Malformed")
  })
  it("an undecodable SignedKey or PublicKey is BadExtension", () => {
    const bad = (value: Uint8Array) =>
      reason(craft({ ...base, extensions: () => [{ oid: Certificate.EXTENSION_OID, critical: true, value }] }).der)
    expect(bad(Uint8Array.of(1, 2, 3))).toBe("BadExtension")
    expect(bad(Der.encodeSequence([Der.encodeOctetString(Uint8Array.of(1))]))).toBe("BadExtension")
    // BIT STRINGs (the spec's old text) instead of OCTET STRINGs
    expect(bad(Der.encodeSequence([Der.encodeBitString(Uint8Array.of(1)), Der.encodeBitString(Uint8Array.of(2))])))
      .toBe("BadExtension")
    expect(bad(Certificate.encodeSignedKey({ publicKey: Uint8Array.of(8, 9, 18, 0), signature: Uint8Array.of(1) })))
      .toBe("BadExtension")
  })
  it("\"MUST abort … if the presented certificate is not yet valid, OR if it is expired\" (checked at the given time) [tls:peer-authentication:7]", () => {
    expect(reason(craft({ notBefore: now + 1000, notAfter: now + HOUR, extensions: good }).der)).toBe("NotYetValid")
    expect(reason(craft({ notBefore: now - HOUR, notAfter: now - 1000, extensions: good }).der)).toBe("Expired")
  })
  it("\"MUST abort … if the certificate's self-signature is not valid\": BadSelfSignature [tls:peer-authentication:8]", () => {
    const der = Uint8Array.from(craft({ ...base, extensions: good }).der)
    // flip a bit in the subject's random serialNumber attribute (inside the TBS, outside anything else we check)
    const cert = ok(Certificate.parse(der))
    const tbsAt = Buffer.from(der).indexOf(Buffer.from(cert.tbs))
    const nameAt = Buffer.from(cert.tbs).lastIndexOf(Buffer.from([0x06, 0x03, 0x55, 0x04, 0x05]))
    der[tbsAt + nameAt + 8]! ^= 0x01
    expect(reason(der)).toBe("BadSelfSignature")
  })
  it("\"Certificates MUST omit the deprecated subjectUniqueId and issuerUniqueId\" (we abort, as the spec allows) [tls:peer-authentication:15] [tls:peer-authentication:16]", () => {
    const uid = Der.encode(Der.contextTag(2, false), Uint8Array.of(0, 1, 2))
    expect(reason(craft({ ...base, extensions: good, tbsExtra: [uid] }).der)).toBe("UniqueIdentifier")
  })
  it("a signature algorithm that is no TLS 1.3 scheme (P-256 with SHA-384) is UnsupportedSignatureScheme", () => {
    expect(reason(craft({ ...base, hash: "sha384", extensions: good }).der)).toBe("UnsupportedSignatureScheme")
  })
  it("certificate keys of every TLS 1.3 family verify: Ed25519, Ed448, P-384, P-521, RSA PKCS#1 SHA-256/384/512", () => {
    const keys: Array<[string, { privateKey: crypto.KeyObject; publicKey: crypto.KeyObject }, ("sha384" | "sha512")?]> =
      [
        ["ed25519", crypto.generateKeyPairSync("ed25519")],
        ["ed448", crypto.generateKeyPairSync("ed448")],
        ["ecdsa_secp384r1_sha384", crypto.generateKeyPairSync("ec", { namedCurve: "secp384r1" })],
        ["ecdsa_secp521r1_sha512", crypto.generateKeyPairSync("ec", { namedCurve: "secp521r1" })],
        ["rsa_pkcs1_sha256", rsaKey],
        ["rsa_pkcs1_sha384", rsaKey, "sha384"],
        ["rsa_pkcs1_sha512", rsaKey, "sha512"]
      ]
    for (const [scheme, key, hash] of keys) {
      const der = craft({ ...base, key, extensions: good, ...(hash !== undefined ? { hash } : {}) }).der
      const r = ok(Certificate.verify(der, { now }))
      expect(r.scheme).toBe(scheme)
    }
  })
  it("oversized fields are refused cheaply: a 100-byte serial, a 100 KiB time, a 100 KiB OID arc (no exception, no quadratic work)", () => {
    expect(reason(craft({ ...base, extensions: good, serial: new Uint8Array(100).fill(0x42) }).der))
      .toBe("Malformed")
    const bigTime = Der.encode(Der.Tag.GENERALIZED_TIME, new Uint8Array(100 * 1024).fill(0x31))
    expect(failure(Der.time(ok(Der.decode(bigTime)), "t")).reason).toBe("NonCanonical")
    const bigArc = Der.encode(Der.Tag.OID, Uint8Array.from([0x2a, ...new Array<number>(100 * 1024).fill(0x81), 0x01]))
    expect(failure(Der.oid(ok(Der.decode(bigArc)), "o")).reason).toBe("Unexpected")
  })
  it("truncated, trailing and BER-encoded certificates are Malformed", () => {
    const der = craft({ ...base, extensions: good }).der
    expect(reason(der.subarray(0, der.byteLength - 1))).toBe("Malformed")
    expect(reason(Uint8Array.from([...der, 0]))).toBe("Malformed")
    // the outer length in a non-minimal long form (0x83 00 xx xx instead of 0x82 xx xx)
    const ber = Uint8Array.from([der[0]!, 0x83, 0x00, ...der.subarray(2)])
    expect(reason(ber)).toBe("Malformed")
    expect(reason(new Uint8Array(0))).toBe("Malformed")
  })
})

const rsaKey = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 })

// ---------------------------------------------------------------------------
// handshakes

const both = (
  tls: Tls.Tls,
  dialer: Keys.PrivateKey,
  listener: Keys.PrivateKey,
  opts?: { readonly dialerMuxers?: ReadonlyArray<string>; readonly listenerMuxers?: ReadonlyArray<string> }
) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    return yield* Effect.all([
      tls.secureOutbound(a, {
        localKey: dialer,
        remotePeer: PeerId.fromPrivateKey(listener),
        ...(opts?.dialerMuxers !== undefined ? { muxers: opts.dialerMuxers } : {})
      }),
      tls.secureInbound(b, {
        localKey: listener,
        ...(opts?.listenerMuxers !== undefined ? { muxers: opts.listenerMuxers } : {})
      })
    ], { concurrency: 2 })
  })

const text = (s: string) => new TextEncoder().encode(s)
const readText = (d: Duplex.Duplex) => Effect.map(Duplex.readAll(d, 1 << 24), (b) => new TextDecoder().decode(b))

describe("tls spec §Handshake Protocol: our handshake over an in-memory pair", () => {
  for (const type of Keys.keyTypes) {
    it.effect(`${type} identities: both sides learn the other's peer id and key, data flows both ways, half-close [tls:peer-authentication:5]`, () =>
      Effect.gen(function*() {
        const dialer = yield* identity(type)
        const listener = yield* identity(type === "Ed25519" ? "Secp256k1" : "Ed25519")
        const tls = yield* Tls.make()
        const [out, inb] = yield* both(tls, dialer, listener)
        expect(out.remotePeer.toString()).toBe(PeerId.fromPrivateKey(listener).toString())
        expect(inb.remotePeer.toString()).toBe(PeerId.fromPrivateKey(dialer).toString())
        expect(Keys.equals(inb.remotePublicKey, dialer.publicKey)).toBe(true)
        expect(Keys.equals(out.remotePublicKey, listener.publicKey)).toBe(true)
        expect(ok(Certificate.verify(out.remoteCertificate, { now: 0 })).peerId.toString()).toBe(
          PeerId.fromPrivateKey(listener).toString()
        )
        // both directions, each half-closed by its writer (TLS 1.3 close_notify), the other still writing
        yield* out.duplex.write([text("hello "), text("listener")])
        yield* out.duplex.closeWrite
        expect(yield* readText(inb.duplex)).toBe("hello listener")
        yield* inb.duplex.write([text("hello dialer")])
        yield* inb.duplex.closeWrite
        expect(yield* readText(out.duplex)).toBe("hello dialer")
      }))
  }

  it.live("large transfers both ways at once arrive intact (backpressure through node:tls and the Duplex)", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [out, inb] = yield* both(tls, yield* identity("Ed25519"), yield* identity("ECDSA"))
      const size = 4 * 1024 * 1024
      const data = Uint8Array.from(crypto.randomBytes(size))
      const send = (d: Duplex.Duplex) =>
        Effect.gen(function*() {
          for (let at = 0; at < size; at += 100_000) {
            yield* d.write([
              data.subarray(at, Math.min(size, at + 40_000)),
              data.subarray(Math.min(size, at + 40_000), Math.min(size, at + 100_000))
            ])
          }
          yield* d.closeWrite
        })
      const [, , a, b] = yield* Effect.all([
        send(out.duplex),
        send(inb.duplex),
        Duplex.readAll(out.duplex, size),
        Duplex.readAll(inb.duplex, size)
      ], { concurrency: 4 })
      expect(Buffer.compare(a, data)).toBe(0)
      expect(Buffer.compare(b, data)).toBe(0)
    }))

  it.live("backpressure: a receiver that does not read stalls the sender after a bounded amount; reading resumes it [connections:definitions:1]", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make({ maxBufferedBytes: 1024 * 1024 })
      const [out, inb] = yield* both(tls, yield* identity("Ed25519"), yield* identity("Secp256k1"))
      let sent = 0
      const chunk = new Uint8Array(64 * 1024)
      const total = 64 * 1024 * 1024
      const writer = yield* Effect.forkChild(Effect.gen(function*() {
        while (sent < total) {
          yield* out.duplex.write([chunk])
          sent += chunk.byteLength
        }
        yield* out.duplex.closeWrite
      }))
      yield* Effect.sleep("400 millis")
      const stalled = sent
      yield* Effect.sleep("200 millis")
      expect(sent).toBe(stalled)
      expect(stalled).toBeLessThan(16 * 1024 * 1024)
      expect(stalled).toBeGreaterThan(0)
      const got = yield* Duplex.readAll(inb.duplex, total)
      expect(got.byteLength).toBe(total)
      yield* Fiber.join(writer)
    }))

  it.effect("reset of the secured Duplex resets the raw one; the remote's reads fail", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      const [out, inb] = yield* Effect.all([
        tls.secureOutbound(w.duplex, { localKey: yield* identity("Ed25519") }),
        tls.secureInbound(b, { localKey: yield* identity("Secp256k1") })
      ], { concurrency: 2 })
      yield* out.duplex.reset
      expect(w.state.resets).toBe(1)
      expect(Exit.isFailure(yield* Effect.exit(inb.duplex.read))).toBe(true)
      expect(Exit.isFailure(yield* Effect.exit(out.duplex.write([text("x")])))).toBe(true)
    }))

  it.effect("the certificate validity is checked at Clock time (TestClock): a certificate from the future is refused until then [tls:peer-authentication:7]", () =>
    Effect.gen(function*() {
      // our node's clock: 2040; the peer's certificate is valid from 2041
      yield* TestClock.setTime(Date.UTC(2040, 0, 1))
      const tls = yield* Tls.make()
      const peerKey = yield* identity("Ed25519")
      const from = Date.UTC(2041, 0, 1)
      const cert = craft({
        notBefore: from,
        notAfter: from + 1000 * HOUR,
        extensions: (spki) => [libp2pExt(peerKey, spki)]
      })
      const attempt = Effect.gen(function*() {
        const [a, b] = yield* Duplex.pair()
        const peer = yield* nodePeer(b, { isServer: true, cert: cert.pem, key: cert.keyPem })
        yield* Effect.forkChild(Effect.ignore(peer.secure))
        return yield* Effect.result(tls.secureOutbound(a, { localKey: yield* identity("ECDSA") }))
      })
      const early = yield* attempt
      expect(Result.isFailure(early) && early.failure.message).toContain("NotYetValid")
      yield* TestClock.setTime(from + HOUR)
      const later = yield* attempt
      expect(Result.isSuccess(later) && later.success.remotePeer.toString()).toBe(
        PeerId.fromPrivateKey(peerKey).toString()
      )
    }))

  /** A node:tls client with a valid libp2p certificate for a fresh Ed25519 identity. */
  const nodeClient = (raw: Duplex.Duplex, options: Partial<NodePeerOptions>) =>
    Effect.gen(function*() {
      const peerKey = yield* identity("Ed25519")
      const cert = craft({ notBefore: -HOUR, notAfter: HOUR, extensions: (spki) => [libp2pExt(peerKey, spki)] })
      const peer = yield* nodePeer(raw, { ...options, isServer: false, cert: cert.pem, key: cert.keyPem })
      return { peer, peerKey }
    })

  it.effect("§Handshake Protocol: \"Endpoints MUST NOT negotiate lower TLS versions\": a TLS 1.2-only client is refused [tls:handshake-protocol:1]", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(b)
      const { peer } = yield* nodeClient(a, { minVersion: "TLSv1.2", maxVersion: "TLSv1.2" })
      const [ours, theirs] = yield* Effect.all([
        Effect.flip(tls.secureInbound(w.duplex, { localKey: yield* identity("ECDSA") })),
        Effect.exit(peer.secure)
      ], { concurrency: 2 })
      expect(ours).toBeInstanceOf(SecurityError)
      expect(ours.reason).toBe("InvalidPayload")
      expect(ours.message).toMatch(/version|protocol/i)
      expect(Exit.isFailure(theirs)).toBe(true)
      expect(w.state.resets).toBeGreaterThan(0)
    }))

  it.effect("§Future Extensibility: \"Servers that support only this version MUST ignore this field if present\": a client's SNI does not matter [tls:future-extensibility:3]", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const { peer, peerKey } = yield* nodeClient(a, { servername: "libp2p.example" })
      const [ours] = yield* Effect.all([
        tls.secureInbound(b, { localKey: yield* identity("ECDSA") }),
        peer.secure
      ], { concurrency: 2 })
      expect(PeerId.equals(ours.remotePeer, PeerId.fromPublicKey(peerKey.publicKey))).toBe(true)
    }))

  it.effect("§Future Extensibility: \"clients … MUST NOT send any value in the Server Name Indication\" [tls:future-extensibility:2]", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      yield* Effect.all([
        tls.secureOutbound(w.duplex, { localKey: yield* identity("Ed25519"), muxers: [YAMUX] }),
        tls.secureInbound(b, { localKey: yield* identity("ECDSA"), muxers: [YAMUX] })
      ], { concurrency: 2 })
      const exts = clientHelloExtensions(Duplex.concat(w.state.writes))
      expect(exts.has(0)).toBe(false) // server_name
      expect(exts.has(16)).toBe(true) // ALPN
      // supported_versions (43) lists only TLS 1.3 (0x0304)
      expect(toHex(exts.get(43)!)).toBe("020304")
    }))
})

describe("tls spec §Peer Authentication after a HelloRetryRequest (RFC 8446 §4.1.4)", () => {
  /** The HelloRetryRequest's special ServerHello.random (RFC 8446 §4.1.3). */
  const HRR_RANDOM = Buffer.from("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c", "hex")
  const cases: Array<[string, boolean, string]> = [
    ["we dial a server that accepts only P-256 key shares", true, "P-256"],
    ["a client whose first key share (ffdhe2048) we do not take", false, "ffdhe2048:X25519"]
  ]
  for (const [name, peerIsServer, curve] of cases) {
    it.effect(`${name}: the handshake is retried, both sides authenticate, the certificate count still read`, () =>
      Effect.gen(function*() {
        const peerKey = yield* identity("Ed25519")
        const cert = craft({ notBefore: -HOUR, notAfter: HOUR, extensions: (spki) => [libp2pExt(peerKey, spki)] })
        const [a, b] = yield* Duplex.pair()
        const theirs = watch(a)
        const ours = watch(b)
        const peer = yield* nodePeer(theirs.duplex, {
          isServer: peerIsServer,
          cert: cert.pem,
          key: cert.keyPem,
          ecdhCurve: curve
        })
        const tls = yield* Tls.make()
        const localKey = yield* identity("ECDSA")
        const [conn] = yield* Effect.all([
          peerIsServer ? tls.secureOutbound(ours.duplex, { localKey }) : tls.secureInbound(ours.duplex, { localKey }),
          peer.secure
        ], { concurrency: 2 })
        expect(conn.remotePeer.toString()).toBe(PeerId.fromPrivateKey(peerKey).toString())
        const serverBytes = Buffer.from(Duplex.concat(peerIsServer ? theirs.state.writes : ours.state.writes))
        expect(serverBytes.includes(HRR_RANDOM)).toBe(true)
      }))
  }
})

describe("tls spec §Peer Authentication: no session resumption (a resumed TLS 1.3 session carries no certificate)", () => {
  it.effect("a client offering a session ticket from an earlier connection gets a full handshake, its certificate checked again", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const serverKey = yield* identity("Ed25519")
      const clientKey = yield* identity("Secp256k1")
      const cert = craft({ notBefore: -HOUR, notAfter: HOUR, extensions: (spki) => [libp2pExt(clientKey, spki)] })
      const connect = (session?: Buffer) =>
        Effect.gen(function*() {
          const [a, b] = yield* Duplex.pair()
          const peer = yield* nodePeer(a, {
            isServer: false,
            cert: cert.pem,
            key: cert.keyPem,
            ...(session !== undefined ? { session } : {})
          })
          const sessions: Array<Buffer> = []
          peer.socket.on("session", (s: Buffer) => sessions.push(s))
          const [conn] = yield* Effect.all([tls.secureInbound(b, { localKey: serverKey }), peer.secure], {
            concurrency: 2
          })
          // let the post-handshake NewSessionTicket messages arrive
          yield* conn.duplex.write([text("x")])
          const got = yield* Effect.promise(() => new Promise<Buffer>((resolve) => peer.socket.once("data", resolve)))
          expect(got.toString()).toBe("x")
          return { conn, reused: peer.socket.isSessionReused(), sessions }
        })
      const first = yield* connect()
      expect(first.sessions.length).toBeGreaterThan(0)
      const second = yield* connect(first.sessions[0]!)
      expect(second.reused).toBe(false)
      expect(second.conn.remotePeer.toString()).toBe(PeerId.fromPrivateKey(clientKey).toString())
    }))
})

describe("inlined-muxer-negotiation spec §Multiplexer Negotiation over TLS (ALPN) [inlined-muxer:multiplexer-negotiation-over-tls:3]", () => {
  it("the server picks the first of the client's protocols it supports, \"libp2p\" included [inlined-muxer:multiplexer-negotiation-over-tls:1]", () => {
    expect(Tls.selectProtocol([YAMUX, MPLEX, "libp2p"], [MPLEX, YAMUX])).toBe(YAMUX)
    expect(Tls.selectProtocol([MPLEX, YAMUX, "libp2p"], [YAMUX])).toBe(YAMUX)
    expect(Tls.selectProtocol(["/other/1", "libp2p"], [YAMUX])).toBe("libp2p")
    expect(Tls.selectProtocol(["libp2p"], [])).toBe("libp2p")
    expect(Tls.selectProtocol(["/other/1"], [YAMUX])).toBeUndefined()
    // "The \"libp2p\" protocol code MUST always be the last item in the multiplexer list"
    expect(Tls.alpnOffer([YAMUX, MPLEX])).toEqual([YAMUX, MPLEX, "libp2p"])
    expect(Tls.alpnOffer([])).toEqual(["libp2p"])
  })

  const cases: Array<
    [string, ReadonlyArray<string> | undefined, ReadonlyArray<string> | undefined, string | undefined, string]
  > = [
    ["both offer yamux", [YAMUX], [YAMUX], YAMUX, YAMUX],
    [
      "the client's preference wins (mplex first) over the server's order",
      [MPLEX, YAMUX],
      [YAMUX, MPLEX],
      MPLEX,
      MPLEX
    ],
    ["the first of the client's list the server supports", [MPLEX, YAMUX], [YAMUX], YAMUX, YAMUX],
    ["no muxer in common: \"libp2p\", muxer left to multistream-select", [MPLEX], [YAMUX], undefined, "libp2p"],
    ["the client offers no muxer", undefined, [YAMUX], undefined, "libp2p"],
    ["the server has no muxer list", [YAMUX], undefined, undefined, "libp2p"]
  ]
  for (const [name, dialerMuxers, listenerMuxers, muxer, alpn] of cases) {
    it.effect(name, () =>
      Effect.gen(function*() {
        const tls = yield* Tls.make()
        const [out, inb] = yield* both(tls, yield* identity("Ed25519"), yield* identity("Secp256k1"), {
          ...(dialerMuxers !== undefined ? { dialerMuxers } : {}),
          ...(listenerMuxers !== undefined ? { listenerMuxers } : {})
        })
        expect(out.muxer).toBe(muxer)
        expect(inb.muxer).toBe(muxer)
        expect(out.alpnProtocol).toBe(alpn)
        expect(inb.alpnProtocol).toBe(alpn)
      }))
  }

  it.effect("the client's ALPN list is [...muxers, \"libp2p\"] on the wire [inlined-muxer:multiplexer-negotiation-over-tls:2]", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      yield* Effect.all([
        tls.secureOutbound(w.duplex, { localKey: yield* identity("Ed25519"), muxers: [YAMUX, MPLEX] }),
        tls.secureInbound(b, { localKey: yield* identity("ECDSA"), muxers: [YAMUX] })
      ], { concurrency: 2 })
      expect(alpnNames(clientHelloExtensions(Duplex.concat(w.state.writes)).get(16)!)).toEqual([YAMUX, MPLEX, "libp2p"])
    }))

  it.effect("tls spec §ALPN: \"The server MUST abort the handshake if it doesn't support any of the application protocols offered\" [tls:alpn:1]", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(b)
      const peerKey = yield* identity("Ed25519")
      const cert = craft({ notBefore: -HOUR, notAfter: HOUR, extensions: (spki) => [libp2pExt(peerKey, spki)] })
      const peer = yield* nodePeer(a, { isServer: false, cert: cert.pem, key: cert.keyPem, alpn: ["/other/1.0.0"] })
      const [ours, theirs] = yield* Effect.all([
        Effect.flip(tls.secureInbound(w.duplex, { localKey: yield* identity("ECDSA"), muxers: [YAMUX] })),
        Effect.exit(peer.secure)
      ], { concurrency: 2 })
      expect(ours.reason).toBe("NoCommonMuxer")
      expect(Exit.isFailure(theirs)).toBe(true)
      expect(peer.errors[0]?.message).toMatch(/no.application.protocol/i)
      expect(w.state.resets).toBeGreaterThan(0)
    }))
})

// ---------------------------------------------------------------------------
// bad peers

describe("tls spec §Peer Authentication: misbehaving peers (typed SecurityError, raw Duplex reset, no hang)", () => {
  /** Our outbound handshake against a node:tls server presenting `cert` (PEM, possibly a chain). */
  const dialBadServer = (cert: { readonly pem: string; readonly keyPem: string }, remotePeer?: PeerId.PeerId) =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      const peer = yield* nodePeer(b, { isServer: true, cert: cert.pem, key: cert.keyPem })
      yield* Effect.forkChild(Effect.ignore(peer.secure))
      const error = yield* Effect.flip(tls.secureOutbound(w.duplex, {
        localKey: yield* identity("Ed25519"),
        ...(remotePeer !== undefined ? { remotePeer } : {})
      }))
      return { error, resets: w.state.resets }
    })

  /** Our inbound handshake against a node:tls client presenting `cert` (or none). */
  const acceptBadClient = (cert?: { readonly pem: string; readonly keyPem: string }) =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(b)
      const peer = yield* nodePeer(a, {
        isServer: false,
        ...(cert !== undefined ? { cert: cert.pem, key: cert.keyPem } : {})
      })
      yield* Effect.forkChild(Effect.ignore(peer.secure))
      const error = yield* Effect.flip(tls.secureInbound(w.duplex, { localKey: yield* identity("ECDSA") }))
      return { error, resets: w.state.resets }
    })

  const valid = (key: Keys.PrivateKey) =>
    craft({ notBefore: -HOUR, notAfter: HOUR, extensions: (spki) => [libp2pExt(key, spki)] })

  it.effect("a server certificate without the libp2p extension [tls:peer-authentication:10]", () =>
    Effect.gen(function*() {
      const { error, resets } = yield* dialBadServer(craft({ notBefore: -HOUR, notAfter: HOUR, extensions: () => [] }))
      expect(error.reason).toBe("InvalidPayload")
      expect(error.message).toContain("MissingExtension")
      expect(resets).toBeGreaterThan(0)
    }))

  it.effect("a client certificate without the libp2p extension [tls:peer-authentication:10]", () =>
    Effect.gen(function*() {
      const { error, resets } = yield* acceptBadClient(
        craft({ notBefore: -HOUR, notAfter: HOUR, extensions: () => [] })
      )
      expect(error.reason).toBe("InvalidPayload")
      expect(error.message).toContain("MissingExtension")
      expect(resets).toBeGreaterThan(0)
    }))

  it.effect("a client that sends no certificate (\"servers MUST require client authentication\") [tls:handshake-protocol:3]", () =>
    Effect.gen(function*() {
      const { error, resets } = yield* acceptBadClient()
      expect(error.reason).toBe("InvalidPayload")
      expect(error.message).toContain("no certificate")
      expect(resets).toBeGreaterThan(0)
    }))

  it.effect("a bad extension signature, from either side [tls:libp2p-public-key-extension:2]", () =>
    Effect.gen(function*() {
      const key = yield* identity("Secp256k1")
      const bad = craft({
        notBefore: -HOUR,
        notAfter: HOUR,
        extensions: () => [libp2pExt(key, Certificate.spkiOf(p256().publicKey))]
      })
      const s = yield* dialBadServer(bad)
      expect(s.error.reason).toBe("InvalidSignature")
      expect(s.resets).toBeGreaterThan(0)
      const c = yield* acceptBadClient(bad)
      expect(c.error.reason).toBe("InvalidSignature")
      expect(c.resets).toBeGreaterThan(0)
    }))

  it.effect("a server authenticating another peer than the one dialled: PeerIdMismatch [tls:libp2p-public-key-extension:1]", () =>
    Effect.gen(function*() {
      const impostor = valid(yield* identity("RSA"))
      const expected = PeerId.fromPrivateKey(yield* identity("Secp256k1"))
      const { error, resets } = yield* dialBadServer(impostor, expected)
      expect(error.reason).toBe("PeerIdMismatch")
      expect(resets).toBeGreaterThan(0)
    }))

  it.effect("\"Endpoints MUST abort the connection attempt if more than one certificate is received\" [tls:peer-authentication:8]", () =>
    Effect.gen(function*() {
      const key = yield* identity("Ed25519")
      const leaf = valid(key)
      const extra = valid(key)
      const chain = { pem: leaf.pem + extra.pem, keyPem: leaf.keyPem }
      const s = yield* dialBadServer(chain)
      expect(s.error.reason).toBe("InvalidPayload")
      expect(s.error.message).toContain("2 certificates")
      expect(s.resets).toBeGreaterThan(0)
      const c = yield* acceptBadClient(chain)
      expect(c.error.message).toContain("2 certificates")
      // the same certificate alone is fine
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const peer = yield* nodePeer(b, { isServer: true, cert: leaf.pem, key: leaf.keyPem })
      yield* Effect.forkChild(Effect.ignore(peer.secure))
      const conn = yield* tls.secureOutbound(a, {
        localKey: yield* identity("ECDSA"),
        remotePeer: PeerId.fromPrivateKey(key)
      })
      expect(conn.remotePeer.toString()).toBe(PeerId.fromPrivateKey(key).toString())
    }))

  it.effect("an expired server certificate [tls:peer-authentication:7]", () =>
    Effect.gen(function*() {
      // under TestClock the time is 0 (1970): a certificate that ended before that
      const expired = craft({ notBefore: -2 * HOUR, notAfter: -HOUR, extensions: (spki) => [libp2pExt(edKey, spki)] })
      const { error } = yield* dialBadServer(expired)
      expect(error.reason).toBe("InvalidPayload")
      expect(error.message).toContain("Expired")
    }))

  it.effect("garbage instead of a ClientHello", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(b)
      yield* a.write([text("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Uint8Array.from(crypto.randomBytes(300))])
      const error = yield* Effect.flip(tls.secureInbound(w.duplex, { localKey: yield* identity("Ed25519") }))
      expect(error).toBeInstanceOf(SecurityError)
      expect(error.reason).toBe("InvalidPayload")
      expect(w.state.resets).toBeGreaterThan(0)
      // the remote end sees the reset
      expect(Exit.isFailure(yield* Effect.exit(Duplex.readAll(a, 1 << 20)))).toBe(true)
    }))

  it.effect("random bytes with a handshake record header instead of a ClientHello", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(b)
      yield* a.write([Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0x40, ...crypto.randomBytes(64)])])
      const error = yield* Effect.flip(tls.secureInbound(w.duplex, { localKey: yield* identity("Ed25519") }))
      expect(error.reason).toBe("InvalidPayload")
      expect(w.state.resets).toBeGreaterThan(0)
    }))

  it.effect("garbage instead of a ServerHello", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      const fiber = yield* Effect.forkChild(
        Effect.flip(tls.secureOutbound(w.duplex, { localKey: yield* identity("Ed25519") }))
      )
      yield* b.read // the ClientHello
      yield* b.write([Uint8Array.from(crypto.randomBytes(200)).fill(0x17, 0, 1)])
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("InvalidPayload")
      expect(w.state.resets).toBeGreaterThan(0)
    }))

  it.effect("a handshake cut short: half a ClientHello, then EOF", () =>
    Effect.gen(function*() {
      // a real ClientHello, from our own dialer, cut in half
      const tls = yield* Tls.make()
      const [c1, c2] = yield* Duplex.pair()
      const dial = yield* Effect.forkChild(
        Effect.exit(tls.secureOutbound(c1, { localKey: yield* identity("Ed25519") }))
      )
      const hello = Duplex.concat(yield* c2.read)
      yield* c2.reset
      yield* Fiber.join(dial)

      const [a, b] = yield* Duplex.pair()
      const w = watch(b)
      yield* a.write([hello.subarray(0, hello.byteLength >> 1)])
      yield* a.closeWrite
      const error = yield* Effect.flip(tls.secureInbound(w.duplex, { localKey: yield* identity("ECDSA") }))
      expect(error.reason).toBe("Closed")
      expect(w.state.resets).toBeGreaterThan(0)
    }))

  it.effect("a handshake cut short on the dialer's side: the server answers half its flight, then EOF", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      const [m1, m2] = yield* Duplex.pair()
      // a real server over m2, relaying only its first 100 bytes to us
      yield* Effect.forkChild(Effect.exit(tls.secureInbound(m2, { localKey: yield* identity("ECDSA") })))
      const fiber = yield* Effect.forkChild(
        Effect.flip(tls.secureOutbound(w.duplex, { localKey: yield* identity("Ed25519") }))
      )
      yield* m1.write(yield* b.read)
      const answer = Duplex.concat(yield* m1.read)
      yield* b.write([answer.subarray(0, 100)])
      yield* b.closeWrite
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Closed")
      expect(w.state.resets).toBeGreaterThan(0)
    }))

  it.effect("a peer that stalls mid-handshake fails at the deadline (Timeout)", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const w = watch(a)
      const fiber = yield* Effect.forkChild(Effect.flip(tls.secureOutbound(w.duplex, {
        localKey: yield* identity("Ed25519"),
        timeout: "5 seconds"
      })))
      yield* b.read // the ClientHello, never answered
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Timeout")
      expect(w.state.resets).toBeGreaterThan(0)
    }))

  it.effect("the raw Duplex reset by the remote mid-handshake: Closed", () =>
    Effect.gen(function*() {
      const tls = yield* Tls.make()
      const [a, b] = yield* Duplex.pair()
      const fiber = yield* Effect.forkChild(
        Effect.flip(tls.secureOutbound(a, { localKey: yield* identity("Ed25519") }))
      )
      yield* b.read
      yield* b.reset
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Closed")
    }))
})

describe("Transcript (tls spec §Peer Authentication: counting the certificates the peer sent)", () => {
  it("RFC 8448 §3 (Simple 1-RTT Handshake): HKDF-Expand-Label derives the server handshake key and iv", () => {
    // server_handshake_traffic_secret, key and iv from RFC 8448 §3 "Simple 1-RTT Handshake"
    const secret = fromHex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    expect(toHex(Transcript.expandLabel("sha256", secret, "key", 16))).toBe("3fce516009c21727d0f2e4e86ee403bc")
    expect(toHex(Transcript.expandLabel("sha256", secret, "iv", 12))).toBe("5d313eb2671276ee13000b30")
  })
  it("RFC 8446 §4.4.2: CertificateEntry counting", () => {
    const entry = (n: number) => [0, 0, n, ...new Array<number>(n).fill(1), 0, 0]
    const msg = (ctx: Array<number>, entries: Array<number>) => {
      const len = entries.length
      return Uint8Array.from([ctx.length, ...ctx, len >> 16, (len >> 8) & 0xff, len & 0xff, ...entries])
    }
    expect(Transcript.countEntries(msg([], []))).toBe(0)
    expect(Transcript.countEntries(msg([], entry(3)))).toBe(1)
    expect(Transcript.countEntries(msg([1, 2], [...entry(3), ...entry(5)]))).toBe(2)
    expect(Transcript.countEntries(msg([], [0, 0, 0, 0, 0]))).toBeUndefined() // an empty cert_data
    expect(Transcript.countEntries(Uint8Array.of(0, 0, 0, 9))).toBeUndefined()
  })
})
