import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as crypto from "node:crypto"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as CipherState from "../../src/security/noise/CipherState.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as Payload from "../../src/security/noise/Payload.ts"
import * as SecureDuplex from "../../src/security/noise/SecureDuplex.ts"
import * as SymmetricState from "../../src/security/noise/SymmetricState.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
import { ok } from "../support/result.ts"
import { frame, handshake, identity, manualPeer, parseFrames, readBytes, relayPair, spy } from "../support/security.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

interface NoiseVector {
  readonly source: string
  readonly protocol_name: string
  readonly init_prologue: string
  readonly init_static: string
  readonly init_ephemeral: string
  readonly resp_prologue: string
  readonly resp_static: string
  readonly resp_ephemeral: string
  readonly handshake_hash?: string
  readonly transport_message_order: string
  readonly messages: ReadonlyArray<{ readonly payload: string; readonly ciphertext: string }>
}
const vectorFile = readJson<{ readonly vectors: ReadonlyArray<NoiseVector> }>(
  "noise/noise-XX_25519_ChaChaPoly_SHA256.json"
)

describe("Noise Protocol Framework rev 34 §5 (XX vectors for Noise_XX_25519_ChaChaPoly_SHA256) [noise:xx:1] [noise:noise-protocol-name:1] [noise:cryptographic-primitives:1]", () => {
  vectorFile.vectors.forEach((v, n) => {
    const name = `vector #${n} from ${v.source.split("@")[0]}:${v.source.split(":").pop()}`
    it(`§5.3 HandshakeState + §5.2 Split: ${name} (handshake messages, hash and transport messages)`, () => {
      expect(v.protocol_name).toBe(HandshakeState.PROTOCOL_NAME)
      const init = HandshakeState.make({
        initiator: true,
        prologue: fromHex(v.init_prologue),
        staticKeyPair: ok(X25519.fromPrivate(fromHex(v.init_static))),
        ephemeralKeyPair: ok(X25519.fromPrivate(fromHex(v.init_ephemeral)))
      })
      const resp = HandshakeState.make({
        initiator: false,
        prologue: fromHex(v.resp_prologue),
        staticKeyPair: ok(X25519.fromPrivate(fromHex(v.resp_static))),
        ephemeralKeyPair: ok(X25519.fromPrivate(fromHex(v.resp_ephemeral)))
      })
      // Handshake: messages 0 and 2 by the initiator, 1 by the responder.
      for (let i = 0; i < 3; i++) {
        const m = v.messages[i]!
        const [writer, reader] = i % 2 === 0 ? [init, resp] : [resp, init]
        const ct = ok(writer.writeMessage(fromHex(m.payload)))
        expect(toHex(ct)).toBe(m.ciphertext)
        expect(toHex(ok(reader.readMessage(ct)))).toBe(m.payload)
      }
      expect(init.isComplete() && resp.isComplete()).toBe(true)
      expect(toHex(init.handshakeHash())).toBe(toHex(resp.handshakeHash()))
      if (v.handshake_hash !== undefined) expect(toHex(init.handshakeHash())).toBe(v.handshake_hash)
      expect(toHex(init.remoteStatic()!)).toBe(toHex(ok(X25519.fromPrivate(fromHex(v.resp_static))).publicRaw))
      expect(toHex(resp.remoteStatic()!)).toBe(toHex(ok(X25519.fromPrivate(fromHex(v.init_static))).publicRaw))
      const i2r = ok(init.split())
      const r2i = ok(resp.split())
      const cacophony = v.transport_message_order.startsWith("cacophony")
      expect(cacophony || v.transport_message_order.startsWith("index 3,5")).toBe(true)
      expect(v.messages.length).toBeGreaterThan(3)
      for (let i = 3; i < v.messages.length; i++) {
        const m = v.messages[i]!
        // cacophony: even index = initiator sends (Split #1); flynn: odd index = Split #1.
        const initiatorSends = cacophony ? i % 2 === 0 : i % 2 === 1
        const [sender, receiver] = initiatorSends ? [i2r, r2i] : [r2i, i2r]
        const ct = ok(sender.send.encryptWithAd(new Uint8Array(0), fromHex(m.payload)))
        expect(toHex(ct)).toBe(m.ciphertext)
        expect(toHex(ok(receiver.receive.decryptWithAd(new Uint8Array(0), ct)))).toBe(m.payload)
      }
    })
  })
})

describe("Noise Protocol Framework rev 34 §4 (crypto functions) and §5.1 (CipherState)", () => {
  it("§4.3 HKDF: one RFC 5869 call equals the spec's HMAC construction", () => {
    for (let i = 0; i < 20; i++) {
      const ck = crypto.randomBytes(32)
      const ikm = crypto.randomBytes(i === 0 ? 0 : i * 3)
      const tempKey = crypto.createHmac("sha256", ck).update(ikm).digest()
      const o1 = crypto.createHmac("sha256", tempKey).update(Uint8Array.of(1)).digest()
      const o2 = crypto.createHmac("sha256", tempKey).update(o1).update(Uint8Array.of(2)).digest()
      const [a, b] = SymmetricState.hkdf2(ck, ikm)
      expect(toHex(a)).toBe(o1.toString("hex"))
      expect(toHex(b)).toBe(o2.toString("hex"))
    }
  })

  it("§5.2 InitializeSymmetric: a 32-byte protocol name is used as h unhashed, padded names too, longer ones hashed [noise:noise-protocol-name:1]", () => {
    expect(toHex(SymmetricState.make("Noise_XX_25519_ChaChaPoly_SHA256").handshakeHash())).toBe(
      toHex(new TextEncoder().encode("Noise_XX_25519_ChaChaPoly_SHA256"))
    )
    const short = SymmetricState.make("Noise_NN")
    expect(toHex(short.handshakeHash())).toBe(toHex(new TextEncoder().encode("Noise_NN")) + "00".repeat(24))
    const long = "Noise_XXfallback+psk0_25519_AESGCM_SHA256"
    expect(toHex(SymmetricState.make(long).handshakeHash())).toBe(
      crypto.createHash("sha256").update(long).digest("hex")
    )
  })

  it("§12.3 ChaChaPoly: nonce = 32 zero bits ‖ 64-bit little-endian n, checked against node's AEAD [noise:cryptographic-primitives:1]", () => {
    const key = crypto.randomBytes(32)
    const cs = CipherState.make(key)
    cs.setNonce(0x0102030405060708n)
    const pt = crypto.randomBytes(100)
    const ct = ok(cs.encryptWithAd(new Uint8Array(0), pt))
    const iv = Buffer.from("000000000807060504030201", "hex")
    const ref = crypto.createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 })
    const expected = Buffer.concat([ref.update(pt), ref.final(), ref.getAuthTag()])
    expect(toHex(ct)).toBe(expected.toString("hex"))
    expect(cs.nonce()).toBe(0x0102030405060709n)
  })

  it("§12.3 ChaChaPoly: transport messages below SMALL_MESSAGE (WebAssembly) and above it (node:crypto) are the same RFC 8439 AEAD, every length 0..600 both ways [noise:cryptographic-primitives:1]", () => {
    const key = crypto.randomBytes(32)
    const sender = CipherState.make(key)
    const receiver = CipherState.make(key)
    const nonce = 0xfffffff0n // crosses into the high half on the way
    sender.setNonce(nonce)
    receiver.setNonce(nonce)
    for (let len = 0; len <= 600; len++) {
      const n = sender.nonce()
      const pt = crypto.randomBytes(len)
      // split in up to three pieces, as SecureDuplex hands them over
      const pieces = len < 3 ? [pt] : [pt.subarray(0, 1), pt.subarray(1, len >> 1), pt.subarray(len >> 1)]
      const out = new Uint8Array(len + 16 + 5)
      const written = sender.encryptInto(pieces, out, 5)
      expect(written).toBe(len + 16)
      const iv = Buffer.alloc(12)
      iv.writeBigUInt64LE(n, 4)
      const ref = crypto.createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 })
      const expected = Buffer.concat([ref.update(pt), ref.final(), ref.getAuthTag()])
      expect(toHex(out.subarray(5))).toBe(expected.toString("hex"))
      const back = receiver.decrypt(out.subarray(5))
      expect(back instanceof Uint8Array && toHex(back)).toBe(pt.toString("hex"))
    }
    expect(sender.nonce()).toBe(nonce + 601n)
    expect(receiver.nonce()).toBe(nonce + 601n)
  })

  it("§5.1 DecryptWithAd: a tampered small transport message (WebAssembly path) signals Decrypt and does not advance n", () => {
    const key = crypto.randomBytes(32)
    const a = CipherState.make(key)
    const b = CipherState.make(key)
    const out = new Uint8Array(13 + 16)
    expect(a.encryptInto([crypto.randomBytes(13)], out, 0)).toBe(29)
    for (const at of [0, 12, 13, 28]) {
      const bad = Uint8Array.from(out)
      bad[at]! ^= 0x80
      const r = b.decrypt(bad)
      expect(r instanceof Uint8Array ? "decrypted" : r.reason).toBe("Decrypt")
      expect(b.nonce()).toBe(0n)
    }
    const wrongKey = CipherState.make(crypto.randomBytes(32)).decrypt(out)
    expect(wrongKey instanceof Uint8Array ? "decrypted" : wrongKey.reason).toBe("Decrypt")
    expect(b.decrypt(out) instanceof Uint8Array).toBe(true)
    expect(b.nonce()).toBe(1n)
  })

  it("§5.1 CipherState: the nonce carries from 2^32 - 1 into the high half", () => {
    const key = crypto.randomBytes(32)
    const cs = CipherState.make(key)
    cs.setNonce(0xffffffffn)
    ok(cs.encryptWithAd(new Uint8Array(0), new Uint8Array(1)))
    expect(cs.nonce()).toBe(0x100000000n)
  })

  it("§5.1 CipherState: n = 2^64 - 1 is never used; encrypt and decrypt fail with NonceExhausted [noise:encryption-and-io:1]", () => {
    const key = crypto.randomBytes(32)
    const a = CipherState.make(key)
    const b = CipherState.make(key)
    a.setNonce(2n ** 64n - 2n)
    b.setNonce(2n ** 64n - 2n)
    const ct = ok(a.encryptWithAd(new Uint8Array(0), Uint8Array.of(1, 2, 3)))
    expect(toHex(ok(b.decryptWithAd(new Uint8Array(0), ct)))).toBe("010203")
    expect(a.nonce()).toBe(2n ** 64n - 1n)
    const again = a.encryptWithAd(new Uint8Array(0), Uint8Array.of(1))
    expect(Result.isFailure(again) && again.failure.reason).toBe("NonceExhausted")
    const into = a.encryptInto([Uint8Array.of(1)], new Uint8Array(64), 0)
    expect(typeof into === "object" && into.reason).toBe("NonceExhausted")
    const dec = b.decryptWithAd(new Uint8Array(0), ct)
    expect(Result.isFailure(dec) && dec.failure.reason).toBe("NonceExhausted")
    expect(a.nonce()).toBe(2n ** 64n - 1n)
  })

  it("§5.1 DecryptWithAd: an authentication failure signals Decrypt and does not advance n", () => {
    const key = crypto.randomBytes(32)
    const a = CipherState.make(key)
    const b = CipherState.make(key)
    const ct = ok(a.encryptWithAd(Uint8Array.of(9), Uint8Array.of(1, 2, 3)))
    const bad = Uint8Array.from(ct)
    bad[0]! ^= 1
    const r = b.decryptWithAd(Uint8Array.of(9), bad)
    expect(Result.isFailure(r) && r.failure.reason).toBe("Decrypt")
    expect(b.nonce()).toBe(0n)
    const wrongAd = b.decryptWithAd(Uint8Array.of(8), ct)
    expect(Result.isFailure(wrongAd) && wrongAd.failure.reason).toBe("Decrypt")
    expect(toHex(ok(b.decryptWithAd(Uint8Array.of(9), ct)))).toBe("010203")
    expect(b.nonce()).toBe(1n)
    const short = b.decryptWithAd(new Uint8Array(0), new Uint8Array(15))
    expect(Result.isFailure(short) && short.failure.reason).toBe("Decrypt")
  })

  it("§5.1 EncryptWithAd/DecryptWithAd without a key return the input unchanged", () => {
    const cs = CipherState.make()
    expect(cs.hasKey()).toBe(false)
    expect(toHex(ok(cs.encryptWithAd(Uint8Array.of(1), Uint8Array.of(7, 7))))).toBe("0707")
    expect(toHex(ok(cs.decryptWithAd(Uint8Array.of(1), Uint8Array.of(7, 7))))).toBe("0707")
  })

  it("§12.1 DH: a public key of small order is refused (all-zero output)", () => {
    const s = X25519.generate()
    // u = 0 and u = 1 are points of small order (RFC 7748 §6.1 discussion).
    for (const u of ["00".repeat(32), "01" + "00".repeat(31)]) {
      const pub = ok(X25519.publicFromRaw(fromHex(u)))
      const r = X25519.dh(s.privateKey, pub)
      expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidPayload")
    }
  })

  it("§12.1 DH: X25519 of two generated pairs agrees (RFC 7748 §6.1) [noise:cryptographic-primitives:1]", () => {
    const a = X25519.generate()
    const b = X25519.generate()
    const ab = ok(X25519.dh(a.privateKey, ok(X25519.publicFromRaw(b.publicRaw))))
    const ba = ok(X25519.dh(b.privateKey, ok(X25519.publicFromRaw(a.publicRaw))))
    expect(toHex(ab)).toBe(toHex(ba))
    expect(ab.byteLength).toBe(32)
  })
})

// ---------------------------------------------------------------------------
// noise-libp2p

const randomBytes = (n: number) => new Uint8Array(crypto.randomBytes(n))

/** The error of a failed effect, as a plain object (tag, reason, message). */
const failure = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (e) => e as unknown as { _tag: string; reason: string; message: string })

/** The remote end of a raw duplex sees a reset (our side reset the connection). */
const expectReset = (peerEnd: Duplex.Duplex) =>
  Effect.gen(function*() {
    // drain whatever was written before the reset, then the reset must show
    while (true) {
      const r = yield* Effect.result(peerEnd.read)
      if (Result.isFailure(r)) {
        expect(r.failure.reason).toBe("Reset")
        return
      }
      expect(r.success.length).toBeGreaterThan(0) // never a clean EOF
    }
  })

describe("noise-libp2p §Handshake Pattern (XX) between two of our nodes", () => {
  const types: ReadonlyArray<Keys.KeyType> = ["Ed25519", "Secp256k1", "ECDSA", "RSA"]
  for (const type of types) {
    it.effect(
      `§The libp2p Handshake Payload: ${type} identities authenticate both ways and data flows both ways`,
      () =>
        Effect.gen(function*() {
          const ik = yield* identity(type)
          const rk = yield* identity(type === "Ed25519" ? "ECDSA" : "Ed25519")
          const { initiator, responder } = yield* handshake({
            initiatorKey: ik,
            responderKey: rk,
            initiator: { remotePeer: PeerId.fromPrivateKey(rk) }
          })
          expect(PeerId.equals(initiator.remotePeer, PeerId.fromPrivateKey(rk))).toBe(true)
          expect(PeerId.equals(responder.remotePeer, PeerId.fromPrivateKey(ik))).toBe(true)
          expect(Keys.equals(responder.remotePublicKey, ik.publicKey)).toBe(true)
          expect(Keys.equals(initiator.remotePublicKey, rk.publicKey)).toBe(true)
          expect(toHex(initiator.handshakeHash)).toBe(toHex(responder.handshakeHash))
          expect(initiator.muxer).toBeUndefined()
          yield* initiator.duplex.write([Uint8Array.of(1, 2, 3)])
          expect(toHex(yield* readBytes(responder.duplex, 3))).toBe("010203")
          yield* responder.duplex.write([Uint8Array.of(4), Uint8Array.of(5)])
          expect(toHex(yield* readBytes(initiator.duplex, 2))).toBe("0405")
          yield* initiator.duplex.closeWrite
          expect(Duplex.isEOF(yield* responder.duplex.read)).toBe(true)
        }),
      60_000
    )
  }

  it.effect("§Wire Format: handshake messages are 2-byte big-endian length-prefixed; message 1 is 32 bytes (-> e)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const sa = spy(a)
      const sb = spy(b)
      const ik = yield* identity("Ed25519")
      const rk = yield* identity("Secp256k1")
      yield* handshake({ initiatorKey: ik, responderKey: rk, wire: [sa.duplex, sb.duplex] })
      expect(sa.writes.length).toBe(2)
      expect(sb.writes.length).toBe(1)
      const m1 = Duplex.concat(sa.writes[0]!)
      expect(m1.byteLength).toBe(2 + 32)
      expect((m1[0]! << 8) | m1[1]!).toBe(32)
      for (const w of [sb.writes[0]!, sa.writes[1]!]) {
        const m = Duplex.concat(w)
        expect((m[0]! << 8) | m[1]!).toBe(m.byteLength - 2)
      }
      // message 2 = e (32) ‖ encrypted s (48) ‖ encrypted payload
      expect(Duplex.concat(sb.writes[0]!).byteLength).toBeGreaterThan(2 + 32 + 48 + 16)
    }))

  it.effect("§The libp2p Handshake Payload: identity_sig = sign(\"noise-libp2p-static-key:\" ‖ s), identity_key = PublicKey protobuf [noise:the-libp2p-handshake-payload:3] [noise:the-libp2p-handshake-payload:4]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const rk = yield* identity("Ed25519")
      const nb = yield* Noise.make()
      const responder = yield* Effect.forkChild(nb.secureInbound(b, { localKey: rk, muxers: ["/yamux/1.0.0"] }))
      const peer = manualPeer(a, true)
      yield* peer.send(new Uint8Array(0))
      const payload = Result.getOrThrow(Payload.codec.decode(yield* peer.receive))
      expect(toHex(payload.identity_key!)).toBe(toHex(Keys.publicKeyToProtobuf(rk.publicKey)))
      expect(toHex(peer.hs.remoteStatic()!)).toBe(toHex(nb.staticPublicKey))
      const data = new Uint8Array([...new TextEncoder().encode("noise-libp2p-static-key:"), ...nb.staticPublicKey])
      expect(rk.publicKey.verify(data, payload.identity_sig!)).toBe(true)
      // §Noise Extensions: the responder's muxers travel in message 2
      expect(payload.extensions?.stream_muxers).toEqual(["/yamux/1.0.0"])
      yield* Fiber.interrupt(responder)
    }))

  it.effect("§The libp2p Handshake Payload: the initiator sends nothing but e in message 1 and its extensions in message 3 [noise:the-libp2p-handshake-payload:1]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const ik = yield* identity("Ed25519")
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(na.secureOutbound(a, { localKey: ik, muxers: ["/mplex/6.7.0"] }))
      const rk = yield* identity("Secp256k1")
      const peer = manualPeer(b, false)
      expect((yield* peer.receive).byteLength).toBe(0)
      const sig = Result.getOrThrow(Payload.sign(rk, peer.staticKeyPair.publicRaw))
      yield* peer.send(
        Payload.codec.encode({ identity_key: Keys.publicKeyToProtobuf(rk.publicKey), identity_sig: sig })
      )
      const payload = Result.getOrThrow(Payload.codec.decode(yield* peer.receive))
      expect(payload.extensions?.stream_muxers).toEqual(["/mplex/6.7.0"])
      const conn = yield* Fiber.join(initiator)
      // the responder offered no list: no early muxer
      expect(conn.muxer).toBeUndefined()
      expect(PeerId.equals(conn.remotePeer, PeerId.fromPrivateKey(rk))).toBe(true)
    }))
})

describe("noise-libp2p §The libp2p Handshake Payload: remembered signature checks (Payload.SignatureCache)", () => {
  const payloadOf = (key: Keys.PrivateKey, staticKey: Uint8Array, sig?: Uint8Array) =>
    Payload.codec.encode({
      identity_key: Keys.publicKeyToProtobuf(key.publicKey),
      ...(sig === undefined ? {} : { identity_sig: sig })
    })

  it.effect("a remembered check never accepts another signature, another static key or another identity key", () =>
    Effect.gen(function*() {
      const cache = new Payload.SignatureCache()
      const ik = yield* identity("Ed25519")
      const other = yield* identity("Secp256k1")
      const s = randomBytes(32)
      const sig = Result.getOrThrow(Payload.sign(ik, s))
      for (let i = 0; i < 2; i++) {
        const v = Payload.verify(payloadOf(ik, s, sig), s, PeerId.fromPrivateKey(ik), cache)
        expect(Result.isSuccess(v)).toBe(true)
        expect(cache.size).toBe(1)
      }
      const tampered = Uint8Array.from(sig)
      tampered[0]! ^= 0x01
      const fails = [
        Payload.verify(payloadOf(ik, s, tampered), s, undefined, cache),
        Payload.verify(payloadOf(ik, s, sig), randomBytes(32), undefined, cache),
        Payload.verify(payloadOf(other, s, sig), s, undefined, cache)
      ]
      for (const r of fails) {
        expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidSignature")
      }
      // failures are never remembered
      expect(cache.size).toBe(1)
    }))

  it("keys are the triple's bytes, lengths included; the least recently used entry is dropped past the capacity", () => {
    const k = (a: ReadonlyArray<number>, b: ReadonlyArray<number>, c: ReadonlyArray<number>) =>
      Payload.SignatureCache.key(Uint8Array.from(a), Uint8Array.from(b), Uint8Array.from(c))
    expect(k([1, 2], [3], [4])).not.toBe(k([1], [2, 3], [4]))
    expect(k([1, 2], [3], [4])).toBe(k([1, 2], [3], [4]))
    const cache = new Payload.SignatureCache(2)
    const [k1, k2, k3] = [k([1], [], []), k([2], [], []), k([3], [], [])]
    cache.add(k1)
    cache.add(k2)
    expect(cache.has(k1)).toBe(true) // k1 is now the most recent
    cache.add(k3)
    expect([cache.has(k1), cache.has(k2), cache.has(k3), cache.size]).toEqual([true, false, true, 2])
  })

  it.effect("repeated handshakes between the same two Noise instances authenticate every time, across identity keys", () =>
    Effect.gen(function*() {
      const na = yield* Noise.make()
      const nb = yield* Noise.make()
      for (const [ik, rk] of [["Ed25519", "Secp256k1"], ["Ed25519", "Secp256k1"], ["ECDSA", "Ed25519"]] as const) {
        const ikey = yield* identity(ik)
        const rkey = yield* identity(rk)
        const [ci, cr] = yield* Effect.scoped(Effect.gen(function*() {
          const [a, b] = yield* Duplex.pair()
          return yield* Effect.all([
            na.secureOutbound(a, { localKey: ikey, remotePeer: PeerId.fromPrivateKey(rkey) }),
            nb.secureInbound(b, { localKey: rkey })
          ], { concurrency: 2 })
        }))
        expect(PeerId.equals(ci.remotePeer, PeerId.fromPrivateKey(rkey))).toBe(true)
        expect(PeerId.equals(cr.remotePeer, PeerId.fromPrivateKey(ikey))).toBe(true)
      }
    }))
})

describe("inlined-muxer-negotiation spec §Multiplexer Negotiation over Noise", () => {
  it.effect("inlined-muxer-negotiation §Noise: client prefers yamux, server prefers mplex → /yamux/1.0.0 on both sides; the initiator sends only its choice (the spec's MAY), so any reading of the rule agrees [noise:libp2p-data-in-handshake-messages:1] [noise:libp2p-data-in-handshake-messages:7] [inlined-muxer:multiplexer-negotiation-over-noise:1]", () =>
    Effect.gen(function*() {
      const { initiator, responder } = yield* handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Secp256k1"),
        initiator: { muxers: ["/yamux/1.0.0", "/mplex/6.7.0"] },
        responder: { muxers: ["/mplex/6.7.0", "/yamux/1.0.0"] }
      })
      expect(initiator.muxer).toBe("/yamux/1.0.0")
      expect(responder.muxer).toBe("/yamux/1.0.0")
      expect(initiator.remoteExtensions?.stream_muxers).toEqual(["/mplex/6.7.0", "/yamux/1.0.0"])
      expect(responder.remoteExtensions?.stream_muxers).toEqual(["/yamux/1.0.0"])
    }))

  it.effect("the first of the initiator's list that the responder supports is chosen", () =>
    Effect.gen(function*() {
      const { initiator, responder } = yield* handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Secp256k1"),
        initiator: { muxers: ["/a", "/b", "/c"] },
        responder: { muxers: ["/c", "/b"] }
      })
      expect([initiator.muxer, responder.muxer]).toEqual(["/b", "/b"])
    }))

  it.effect("no early muxer unless both sides offered a list", () =>
    Effect.gen(function*() {
      const k1 = yield* identity("Ed25519")
      const k2 = yield* identity("Secp256k1")
      const one = yield* handshake({ initiatorKey: k1, responderKey: k2, initiator: { muxers: ["/yamux/1.0.0"] } })
      expect([one.initiator.muxer, one.responder.muxer]).toEqual([undefined, undefined])
      const other = yield* handshake({ initiatorKey: k1, responderKey: k2, responder: { muxers: ["/yamux/1.0.0"] } })
      expect([other.initiator.muxer, other.responder.muxer]).toEqual([undefined, undefined])
    }))

  it.effect("no overlap between the two lists: the handshake MUST fail (NoCommonMuxer) and the connection is reset [inlined-muxer:multiplexer-negotiation-over-noise:2]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const nb = yield* Noise.make()
      const [ei, er] = yield* Effect.all([
        failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519"), muxers: ["/yamux/1.0.0"] })),
        failure(nb.secureInbound(b, { localKey: yield* identity("Secp256k1"), muxers: ["/mplex/6.7.0"] }))
      ], { concurrency: 2 })
      expect([ei._tag, ei.reason]).toEqual(["SecurityError", "NoCommonMuxer"])
      expect([er._tag, er.reason]).toEqual(["SecurityError", "Closed"])
    }))

  it("selectMuxer is the initiator's preference order over the responder's set", () => {
    expect(Result.getOrThrow(Noise.selectMuxer(["/x", "/y"], ["/y", "/x"]))).toBe("/x")
    expect(Result.getOrThrow(Noise.selectMuxer(["/x"], []))).toBeUndefined()
    expect(Result.getOrThrow(Noise.selectMuxer(undefined, ["/x"]))).toBeUndefined()
    const none = Noise.selectMuxer(["/x"], ["/y"])
    expect(Result.isFailure(none) && none.failure.reason).toBe("NoCommonMuxer")
  })
})

describe("noise-libp2p §Wire Format: transport messages", () => {
  const sizes = [0, 1, 65519, 65520, 1024 * 1024]
  for (const size of sizes) {
    it.effect(
      `a ${size}-byte write round-trips, in ceil(${size}/65519) transport messages of ≤ 65535 bytes, in one raw write`,
      () =>
        Effect.gen(function*() {
          const [a, b] = yield* Duplex.pair()
          const sa = spy(a)
          const { initiator, responder } = yield* handshake({
            initiatorKey: yield* identity("Ed25519"),
            responderKey: yield* identity("Secp256k1"),
            wire: [sa.duplex, b]
          })
          const data = randomBytes(size)
          const before = sa.writes.length
          yield* initiator.duplex.write(size === 0 ? [] : [data])
          const wire = sa.writes.slice(before)
          const expectedMessages = Math.ceil(size / SecureDuplex.MAX_PLAINTEXT_LEN)
          expect(wire.length).toBe(expectedMessages === 0 ? 0 : 1)
          const frames = parseFrames(Duplex.concat(wire.flat()))
          expect(frames.length).toBe(expectedMessages)
          let total = 0
          for (const f of frames) {
            expect(f.length).toBeLessThanOrEqual(65535)
            total += f.length - 16
          }
          expect(total).toBe(size)
          yield* initiator.duplex.closeWrite
          const got = yield* readBytes(responder.duplex, size + 1)
          expect(got.byteLength).toBe(size)
          expect(Buffer.from(got).equals(Buffer.from(data))).toBe(true)
          // and the other direction
          yield* responder.duplex.write([data])
          const back = yield* readBytes(initiator.duplex, size)
          expect(Buffer.from(back).equals(Buffer.from(data))).toBe(true)
        }),
      60_000
    )
  }

  it.effect("small chunks of one batch are coalesced into one transport message", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const sa = spy(a)
      const { initiator, responder } = yield* handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Secp256k1"),
        wire: [sa.duplex, b]
      })
      const before = sa.writes.length
      const chunks = Array.from({ length: 100 }, (_, i) => Uint8Array.of(i, i, i))
      yield* initiator.duplex.write(chunks)
      const wire = sa.writes.slice(before)
      expect(wire.length).toBe(1)
      expect(wire[0]!.length).toBe(1)
      expect(wire[0]![0]!.byteLength).toBe(2 + 300 + 16)
      expect(toHex(yield* readBytes(responder.duplex, 300))).toBe(toHex(Duplex.concat(chunks)))
    }))

  it.effect("read returns plain Uint8Array chunks (never Node Buffers, whose slice() does not copy)", () =>
    Effect.gen(function*() {
      const { initiator, responder } = yield* handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Secp256k1")
      })
      yield* initiator.duplex.write([randomBytes(10), randomBytes(100_000)])
      let got = 0
      while (got < 100_010) {
        for (const c of yield* responder.duplex.read) {
          expect(c.constructor).toBe(Uint8Array)
          got += c.byteLength
        }
      }
    }))

  it.effect("§Handshake Pattern (XX): the first transport message may arrive together with message 3 [noise:xx:1]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const rk = yield* identity("Ed25519")
      const nb = yield* Noise.make()
      const responder = yield* Effect.forkChild(nb.secureInbound(b, { localKey: rk }))
      // the initiator, by hand: message 3 and two transport frames written in ONE batch
      const ik = yield* identity("Secp256k1")
      const peer = manualPeer(a, true)
      yield* peer.send(new Uint8Array(0))
      yield* peer.receive
      const sig = Result.getOrThrow(Payload.sign(ik, peer.staticKeyPair.publicRaw))
      const m3 = Result.getOrThrow(
        peer.hs.writeMessage(
          Payload.codec.encode({ identity_key: Keys.publicKeyToProtobuf(ik.publicKey), identity_sig: sig })
        )
      )
      const { send } = Result.getOrThrow(peer.hs.split())
      const t1 = Result.getOrThrow(send.encryptWithAd(new Uint8Array(0), new TextEncoder().encode("hello ")))
      const t2 = Result.getOrThrow(send.encryptWithAd(new Uint8Array(0), new TextEncoder().encode("world")))
      yield* a.write([Duplex.concat([frame(m3), frame(t1), frame(t2)])])
      const conn = yield* Fiber.join(responder)
      expect(new TextDecoder().decode(yield* readBytes(conn.duplex, 11))).toBe("hello world")
    }))
})

describe("noise-libp2p: bad input is a typed SecurityError and the raw connection is reset", () => {
  it.effect("§The libp2p Handshake Payload: a bad identity signature (initiator side) → InvalidSignature [noise:the-libp2p-handshake-payload:4] [noise:the-libp2p-handshake-payload:5] [noise:libp2p-data-in-handshake-messages:5] [noise:libp2p-data-in-handshake-messages:6]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519") })))
      const rk = yield* identity("Secp256k1")
      const peer = manualPeer(b, false)
      yield* peer.receive
      // a valid signature, but over another static key
      const sig = Result.getOrThrow(Payload.sign(rk, randomBytes(32)))
      yield* peer.send(
        Payload.codec.encode({ identity_key: Keys.publicKeyToProtobuf(rk.publicKey), identity_sig: sig })
      )
      const e = yield* Fiber.join(initiator)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "InvalidSignature"])
      yield* expectReset(b)
    }))

  it.effect("§The libp2p Handshake Payload: a bad identity signature (responder side) → InvalidSignature [noise:the-libp2p-handshake-payload:4] [noise:the-libp2p-handshake-payload:5]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const nb = yield* Noise.make()
      const responder = yield* Effect.forkChild(failure(nb.secureInbound(b, { localKey: yield* identity("Ed25519") })))
      const ik = yield* identity("ECDSA")
      const peer = manualPeer(a, true)
      yield* peer.send(new Uint8Array(0))
      yield* peer.receive
      const sig = Result.getOrThrow(Payload.sign(ik, peer.staticKeyPair.publicRaw))
      sig[sig.length - 1]! ^= 0x01
      yield* peer.send(
        Payload.codec.encode({ identity_key: Keys.publicKeyToProtobuf(ik.publicKey), identity_sig: sig })
      )
      const e = yield* Fiber.join(responder)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "InvalidSignature"])
      yield* expectReset(a)
    }))

  it.effect("§The libp2p Handshake Payload: a missing signature → InvalidSignature [noise:the-libp2p-handshake-payload:5]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519") })))
      const rk = yield* identity("Secp256k1")
      const peer = manualPeer(b, false)
      yield* peer.receive
      yield* peer.send(Payload.codec.encode({ identity_key: Keys.publicKeyToProtobuf(rk.publicKey) }))
      const e = yield* Fiber.join(initiator)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "InvalidSignature"])
      yield* expectReset(b)
    }))

  it.effect("§SecureOutbound: the remote authenticates as another peer than expected → PeerIdMismatch", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const nb = yield* Noise.make()
      const expected = PeerId.fromPrivateKey(yield* identity("ECDSA"))
      const [ei, er] = yield* Effect.all([
        failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519"), remotePeer: expected })),
        failure(nb.secureInbound(b, { localKey: yield* identity("Secp256k1") }))
      ], { concurrency: 2 })
      expect([ei._tag, ei.reason]).toEqual(["SecurityError", "PeerIdMismatch"])
      expect(er.reason).toBe("Closed")
    }))

  it.effect("§The libp2p Handshake Payload: an undecodable identity key → InvalidPayload [noise:the-libp2p-handshake-payload:3]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519") })))
      const peer = manualPeer(b, false)
      yield* peer.receive
      // KeyType Ed25519 with a 5-byte key
      const badKey = Uint8Array.of(0x08, 0x01, 0x12, 0x05, 1, 2, 3, 4, 5)
      yield* peer.send(Payload.codec.encode({ identity_key: badKey, identity_sig: randomBytes(64) }))
      const e = yield* Fiber.join(initiator)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "InvalidPayload"])
      yield* expectReset(b)
    }))

  it.effect("§The libp2p Handshake Payload: a payload that is not a protobuf → InvalidPayload", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519") })))
      const peer = manualPeer(b, false)
      yield* peer.receive
      yield* peer.send(Uint8Array.of(0x0a, 0xff, 0xff, 0xff)) // field 1, length past the end
      const e = yield* Fiber.join(initiator)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "InvalidPayload"])
      yield* expectReset(b)
    }))

  it.effect("§Handshake Pattern: a garbage message 2 → Decrypt (the encrypted static key does not verify)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519") })))
      const peer = manualPeer(b, false)
      yield* peer.receiveFrame
      yield* peer.sendRaw(frame(randomBytes(200)))
      const e = yield* Fiber.join(initiator)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "Decrypt"])
      yield* expectReset(b)
    }))

  it.effect("§Handshake Pattern: a garbage message 1 shorter than an ephemeral key → InvalidPayload", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const nb = yield* Noise.make()
      const responder = yield* Effect.forkChild(failure(nb.secureInbound(b, { localKey: yield* identity("Ed25519") })))
      yield* a.write([frame(randomBytes(10))])
      const e = yield* Fiber.join(responder)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "InvalidPayload"])
      yield* expectReset(a)
    }))

  it.effect("§Handshake Pattern: a garbage message 3 → Decrypt", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const nb = yield* Noise.make()
      const responder = yield* Effect.forkChild(failure(nb.secureInbound(b, { localKey: yield* identity("Ed25519") })))
      const peer = manualPeer(a, true)
      yield* peer.send(new Uint8Array(0))
      yield* peer.receive
      yield* peer.sendRaw(frame(randomBytes(150)))
      const e = yield* Fiber.join(responder)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "Decrypt"])
      yield* expectReset(a)
    }))

  it.effect("§Wire Format: a handshake frame truncated by EOF → Closed", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const nb = yield* Noise.make()
      const responder = yield* Effect.forkChild(failure(nb.secureInbound(b, { localKey: yield* identity("Ed25519") })))
      yield* a.write([Uint8Array.of(0, 32), randomBytes(10)])
      yield* a.closeWrite
      const e = yield* Fiber.join(responder)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "Closed"])
      yield* expectReset(a)
    }))

  it.effect("§Handshake Pattern: a handshake message over 65535 bytes cannot be written → MessageTooLarge", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const nb = yield* Noise.make({ webtransportCerthashes: [randomBytes(70000)] })
      const responder = yield* Effect.forkChild(failure(nb.secureInbound(b, { localKey: yield* identity("Ed25519") })))
      const peer = manualPeer(a, true)
      yield* peer.send(new Uint8Array(0))
      const e = yield* Fiber.join(responder)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "MessageTooLarge"])
      yield* expectReset(a)
    }))

  it.effect("SecureOptions.timeout: a peer that never answers → Timeout, and the raw duplex is reset", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const na = yield* Noise.make()
      const initiator = yield* Effect.forkChild(
        failure(na.secureOutbound(a, { localKey: yield* identity("Ed25519"), timeout: "5 seconds" }))
      )
      yield* TestClock.adjust("4 seconds")
      expect(initiator.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("2 seconds")
      const e = yield* Fiber.join(initiator)
      expect([e._tag, e.reason]).toEqual(["SecurityError", "Timeout"])
      yield* expectReset(b)
    }))

  /** A secured pair where the initiator's wire can be tampered with: returns the raw responder end too. */
  const securedWithRawInitiatorWire = Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    const { initiator, responder } = yield* handshake({
      initiatorKey: yield* identity("Ed25519"),
      responderKey: yield* identity("Secp256k1"),
      wire: [a, b]
    })
    return { initiator, responder, a }
  })

  it.effect("§Encryption and I/O: a tampered transport ciphertext → Decrypt, never wrong plaintext; the raw duplex is reset", () =>
    Effect.gen(function*() {
      let armed = false
      const [wireA, wireB] = yield* relayPair((c) => {
        if (!armed) return c
        const t = Uint8Array.from(c)
        t[t.length - 1]! ^= 0x80
        return t
      })
      const { initiator, responder } = yield* handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Secp256k1"),
        wire: [wireA, wireB]
      })
      armed = true
      yield* initiator.duplex.write([new TextEncoder().encode("attack at dawn")])
      const e = yield* failure(responder.duplex.read)
      expect([e._tag, e.reason]).toEqual(["DuplexError", "Io"])
      expect(e.message).toMatch(/^noise Decrypt:/)
      // sticky, and the raw duplex was reset: the initiator's side sees the reset
      expect((yield* failure(responder.duplex.read)).message).toMatch(/^noise Decrypt:/)
      expect((yield* failure(initiator.duplex.read)).reason).toBe("Reset")
    }))

  it.effect("§Wire Format: a transport message shorter than its 16-byte tag → Decrypt", () =>
    Effect.gen(function*() {
      const { a, responder } = yield* securedWithRawInitiatorWire
      yield* a.write([frame(randomBytes(15))])
      const e = yield* failure(responder.duplex.read)
      expect([e._tag, e.reason]).toEqual(["DuplexError", "Io"])
      expect(e.message).toMatch(/^noise Decrypt:/)
      yield* expectReset(a)
    }))

  it.effect("§Wire Format: a transport frame truncated by EOF → Closed", () =>
    Effect.gen(function*() {
      const { a, responder } = yield* securedWithRawInitiatorWire
      yield* a.write([Uint8Array.of(0x01, 0x00), randomBytes(100)])
      yield* a.closeWrite
      const e = yield* failure(responder.duplex.read)
      expect([e._tag, e.reason]).toEqual(["DuplexError", "Io"])
      expect(e.message).toMatch(/^noise Closed:/)
      yield* expectReset(a)
    }))

  it.effect("§Wire Format: a frame of random bytes in transport → Decrypt", () =>
    Effect.gen(function*() {
      const { a, responder } = yield* securedWithRawInitiatorWire
      yield* a.write([frame(randomBytes(1000))])
      const e = yield* failure(responder.duplex.read)
      expect(e.message).toMatch(/^noise Decrypt:/)
      yield* expectReset(a)
    }))

  it.effect("§Encryption and I/O: a replayed transport message (reused nonce position) → Decrypt", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const sa = spy(a)
      const { initiator, responder } = yield* handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Secp256k1"),
        wire: [sa.duplex, b]
      })
      yield* initiator.duplex.write([Uint8Array.of(1)])
      expect(toHex(yield* readBytes(responder.duplex, 1))).toBe("01")
      yield* a.write(sa.writes[sa.writes.length - 1]!)
      const e = yield* failure(responder.duplex.read)
      expect(e.message).toMatch(/^noise Decrypt:/)
    }))

  it.effect("a closed-write raw duplex before the handshake → Closed, not a hang", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* a.closeWrite
      const nb = yield* Noise.make()
      const e = yield* failure(nb.secureInbound(b, { localKey: yield* identity("Ed25519") }))
      expect([e._tag, e.reason]).toEqual(["SecurityError", "Closed"])
    }))
})

describe("Noise.make", () => {
  it.effect("a fixed static key is used as s (spec §Static Key Authentication allows a configured key) [noise:static-key-authentication:1]", () =>
    Effect.gen(function*() {
      const sk = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
      const noise = yield* Noise.make({ staticKey: sk })
      expect(toHex(noise.staticPublicKey)).toBe(toHex(ok(X25519.fromPrivate(sk)).publicRaw))
      expect(noise.protocol).toBe("/noise")
      const bad = yield* failure(Noise.make({ staticKey: new Uint8Array(31) }))
      expect(bad.reason).toBe("InvalidPayload")
    }))

  it.effect("§Static Key Authentication: without a configured key each instance makes its own in memory, never stored [noise:static-key-authentication:2]", () =>
    Effect.gen(function*() {
      const a = yield* Noise.make()
      const b = yield* Noise.make()
      expect(a.staticPublicKey).toHaveLength(32)
      expect(toHex(a.staticPublicKey)).not.toBe(toHex(b.staticPublicKey))
    }))

  it.effect("exits cleanly: Exit of a successful handshake is a success", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(handshake({
        initiatorKey: yield* identity("Ed25519"),
        responderKey: yield* identity("Ed25519")
      }))
      expect(Exit.isSuccess(exit)).toBe(true)
    }))
})

describe("noise spec §Wire Format, read by polling (Duplex.Pollable)", () => {
  /** A raw duplex the test feeds: pollable, its notice recorded; written synchronously, unless `blocked`. */
  const scriptedRaw = (options: { readonly ownedReads?: boolean } = {}) => {
    const state = {
      queue: [] as Array<Duplex.Chunks | Duplex.DuplexError>,
      notify: undefined as (() => void) | undefined,
      resets: 0,
      written: [] as Array<Uint8Array>,
      handedOver: [] as Array<boolean>,
      blocked: false
    }
    const raw: Duplex.Duplex & Duplex.Pollable & Duplex.SyncWritable & Partial<Duplex.OwnedReads> = {
      ...(options.ownedReads === true ? { ownedReads: true as const } : {}),
      read: Effect.die("read by polling only"),
      write: () => Effect.void,
      closeWrite: Effect.void,
      reset: Effect.sync(() => void state.resets++),
      pollRead: () => state.queue.shift(),
      onReadable: (notify) => {
        state.notify = notify
      },
      tryWrite: (chunks, handOver) => {
        if (state.blocked) return false
        state.written.push(...chunks)
        if (chunks.length > 0) state.handedOver.push(handOver === true)
        return true
      }
    }
    const feed = (item: Duplex.Chunks | Duplex.DuplexError) => {
      state.queue.push(item)
      const n = state.notify
      state.notify = undefined
      n?.()
    }
    return { raw, state, feed }
  }
  const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
  const sealed = (send: CipherState.CipherState, text: string): Uint8Array => {
    const ct = ok(send.encryptWithAd(new Uint8Array(0), new TextEncoder().encode(text)))
    return frame(ct)
  }
  const ciphers = () => ({
    send: CipherState.make(key),
    receive: CipherState.make(key),
    handshakeHash: new Uint8Array(32)
  })

  it("§Wire Format: over a pollable raw duplex the secure one polls too: whole frames decrypted (a frame split across reads waits for its rest), undefined while incomplete, the raw duplex's notice, EOF", () => {
    const { raw, state, feed } = scriptedRaw()
    const secure = Duplex.pollable(SecureDuplex.make(raw, ciphers(), []))
    expect(secure).toBeDefined()
    const peer = CipherState.make(key)
    const f1 = sealed(peer, "hello")
    const f2 = sealed(peer, "world")
    expect(secure!.pollRead()).toBeUndefined()
    let notices = 0
    secure!.onReadable(() => notices++)
    feed([f1, f2.subarray(0, 5)])
    expect(notices).toBe(1)
    const first = secure!.pollRead()
    expect(Array.isArray(first) && first.map((c) => new TextDecoder().decode(c))).toEqual(["hello"])
    expect(secure!.pollRead()).toBeUndefined() // the second frame is incomplete
    feed([f2.subarray(5)])
    const second = secure!.pollRead()
    expect(Array.isArray(second) && new TextDecoder().decode(Duplex.concat(second))).toBe("world")
    feed(Duplex.EOF)
    expect(secure!.pollRead()).toEqual([])
    expect(state.resets).toBe(0)
  })

  it("§Wire Format: a tampered frame read by polling: the authentic plaintexts before it come first, then the failure, for good, and the raw duplex is reset; EOF inside a frame fails the same way", () => {
    const { raw, state, feed } = scriptedRaw()
    const secure = Duplex.pollable(SecureDuplex.make(raw, ciphers(), []))!
    const peer = CipherState.make(key)
    const good = sealed(peer, "ok")
    const bad = sealed(peer, "tampered")
    bad[bad.length - 1]! ^= 1
    feed([good, bad])
    const first = secure.pollRead()
    expect(Array.isArray(first) && first.map((c) => new TextDecoder().decode(c))).toEqual(["ok"])
    expect(state.resets).toBe(1)
    const failure = secure.pollRead()
    expect(failure).toBeInstanceOf(Duplex.DuplexError)
    expect(secure.pollRead()).toBe(failure)

    const other = scriptedRaw()
    const cut = Duplex.pollable(SecureDuplex.make(other.raw, ciphers(), []))!
    other.feed([sealed(CipherState.make(key), "cut short").subarray(0, 6)])
    expect(cut.pollRead()).toBeUndefined()
    other.feed(Duplex.EOF)
    const ended = cut.pollRead()
    expect(ended).toBeInstanceOf(Duplex.DuplexError)
    expect((ended as Duplex.DuplexError).message).toMatch(/ended inside a frame/)
    expect(other.state.resets).toBe(1)
  })

  it("§Wire Format: tryWrite encrypts only when the raw duplex takes the frames now: while it applies backpressure nothing is written and no nonce is used, so the frames that follow decrypt in order", () => {
    const { raw, state } = scriptedRaw()
    const secure = Duplex.syncWritable(SecureDuplex.make(raw, ciphers(), []))!
    expect(secure).toBeDefined()
    const enc = new TextEncoder()
    expect(secure.tryWrite([enc.encode("one")])).toBe(true)
    state.blocked = true
    expect(secure.tryWrite([enc.encode("skipped")])).toBe(false)
    expect(secure.tryWrite([])).toBe(false)
    state.blocked = false
    expect(secure.tryWrite([enc.encode("two")])).toBe(true)
    const peer = CipherState.make(key)
    const texts = parseFrames(Duplex.concat(state.written)).map(({ start, length }) =>
      new TextDecoder().decode(
        ok(peer.decryptWithAd(new Uint8Array(0), Duplex.concat(state.written).subarray(start + 2, start + 2 + length)))
      )
    )
    expect(texts).toEqual(["one", "two"])
  })

  /** `bytes` as one chunk that is the whole of its own ArrayBuffer (as a socket read is). */
  const own = (bytes: Uint8Array): Uint8Array => new Uint8Array(bytes)
  const big = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)
  const sealedBytes = (send: CipherState.CipherState, plaintext: Uint8Array): Uint8Array =>
    frame(ok(send.encryptWithAd(new Uint8Array(0), plaintext)))

  it("over a raw duplex whose reads are owned (Duplex.OwnedReads) the ciphertext chunks are released once decrypted, only then, and not the handshake's leftover: the plaintext is intact", () => {
    const peer = CipherState.make(key)
    const p1 = big(20_000, 1)
    const p2 = big(30_000, 2)
    const p3 = big(12_000, 3)
    const f1 = sealedBytes(peer, p1)
    const leftover = own(f1)
    const f2 = sealedBytes(peer, p2)
    const f3 = sealedBytes(peer, p3)
    const { raw, feed } = scriptedRaw({ ownedReads: true })
    const secure = Duplex.pollable(SecureDuplex.make(raw, ciphers(), [leftover]))!
    const text = (r: Duplex.Chunks | Duplex.DuplexError | undefined) => Array.isArray(r) && Duplex.concat(r)
    const first = secure.pollRead()
    expect(text(first)).toEqual(p1)
    expect(leftover.byteLength).toBe(f1.byteLength) // the handshake's: kept
    // f2 whole with the start of f3 in one read, the rest of f3 in the next
    const read1 = own(Duplex.concat([f2, f3.subarray(0, 3_000)]))
    const read2 = own(f3.subarray(3_000))
    feed([read1])
    expect(text(secure.pollRead())).toEqual(p2)
    expect(read1.byteLength).toBe(f2.byteLength + 3_000) // the start of f3 is still to be decrypted
    feed([read2])
    expect(text(secure.pollRead())).toEqual(p3)
    expect(read1.byteLength).toBe(0)
    expect(read2.byteLength).toBe(0)
    expect(text(first)).toEqual(p1) // plaintext is never a view of the ciphertext

    // reads that are not owned are never released
    const other = scriptedRaw()
    const peer2 = CipherState.make(key)
    const notOwned = own(sealedBytes(peer2, p2))
    const plain = Duplex.pollable(SecureDuplex.make(other.raw, ciphers(), []))!
    other.feed([notOwned])
    expect(Array.isArray(plain.pollRead())).toBe(true)
    expect(notOwned.byteLength).toBe(f2.byteLength)
  })

  it("tryWrite hands the frames over to the raw duplex (it may release them once sent) when the batch is large enough for that to matter, never the caller's chunks", () => {
    const { raw, state } = scriptedRaw()
    const secure = Duplex.syncWritable(SecureDuplex.make(raw, ciphers(), []))!
    const small = new TextEncoder().encode("small")
    const large = big(70_000, 4)
    expect(secure.tryWrite([small])).toBe(true)
    expect(secure.tryWrite([large])).toBe(true)
    expect(state.handedOver).toEqual([false, true])
    expect(state.written.some((c) => c.buffer === large.buffer)).toBe(false)
  })

  it("a raw duplex that cannot be polled gives a secure duplex that cannot either (it is read with `read`)", () =>
    Effect.gen(function*() {
      const [a] = yield* Duplex.pair()
      expect(Duplex.pollable(SecureDuplex.make(a, ciphers(), []))).toBeUndefined()
      expect(Duplex.syncWritable(SecureDuplex.make(a, ciphers(), []))).toBeUndefined()
    }).pipe(Effect.scoped, Effect.runPromise))
})
