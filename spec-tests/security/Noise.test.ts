import { describe, expect, it } from "@effect/vitest"
import * as crypto from "node:crypto"
import { Result } from "effect"
import * as CipherState from "../../src/security/noise/CipherState.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as SymmetricState from "../../src/security/noise/SymmetricState.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
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

const ok = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)

describe("Noise Protocol Framework rev 34 §5 (XX vectors for Noise_XX_25519_ChaChaPoly_SHA256)", () => {
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

  it("§5.2 InitializeSymmetric: a 32-byte protocol name is used as h unhashed, padded names too, longer ones hashed", () => {
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

  it("§12.3 ChaChaPoly: nonce = 32 zero bits ‖ 64-bit little-endian n, checked against node's AEAD", () => {
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

  it("§5.1 CipherState: the nonce carries from 2^32 - 1 into the high half", () => {
    const key = crypto.randomBytes(32)
    const cs = CipherState.make(key)
    cs.setNonce(0xffffffffn)
    ok(cs.encryptWithAd(new Uint8Array(0), new Uint8Array(1)))
    expect(cs.nonce()).toBe(0x100000000n)
  })

  it("§5.1 CipherState: n = 2^64 - 1 is never used; encrypt and decrypt fail with NonceExhausted", () => {
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

  it("§12.1 DH: X25519 of two generated pairs agrees (RFC 7748 §6.1)", () => {
    const a = X25519.generate()
    const b = X25519.generate()
    const ab = ok(X25519.dh(a.privateKey, ok(X25519.publicFromRaw(b.publicRaw))))
    const ba = ok(X25519.dh(b.privateKey, ok(X25519.publicFromRaw(a.publicRaw))))
    expect(toHex(ab)).toBe(toHex(ba))
    expect(ab.byteLength).toBe(32)
  })
})
