import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Envelope from "../../src/core/Envelope.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as PeerRecord from "../../src/core/PeerRecord.ts"
import * as Varint from "../../src/core/Varint.ts"
import { failureReason, ok } from "../support/result.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

interface Vectors {
  readonly envelope_signing_rule: {
    readonly fields: {
      readonly public_key: number
      readonly payload_type: number
      readonly payload: number
      readonly signature: number
    }
  }
  readonly rfc0003_text_values: { readonly domain: string; readonly payload_type: string }
  readonly rfc0003_example: {
    readonly value: { readonly seq: number; readonly addresses: ReadonlyArray<{ readonly multiaddr: string }> }
  }
  readonly relay_reservation_voucher: { readonly domain: string; readonly payload_type_multicodec: string }
  readonly interop_vectors: ReadonlyArray<{
    readonly name: string
    readonly private_key_protobuf_hex: string
    readonly envelope_hex: string
    readonly decoded_by_collector: {
      readonly public_key_protobuf_hex: string
      readonly payload_type_hex: string
      readonly domain_used_for_signature: string
      readonly signature_verifies: boolean
      readonly peer_id: string
      readonly record: {
        readonly peer_id_multihash_hex: string
        readonly seq: string
        readonly addresses: ReadonlyArray<string>
        readonly addresses_hex: ReadonlyArray<string>
      }
    }
  }>
}
const vectors = readJson<Vectors>("libp2p-specs/signed-envelope-peer-record.json")

const utf8 = (s: string) => new TextEncoder().encode(s)
const key = ok(Keys.ed25519FromSeed(new Uint8Array(32).fill(7)))

describe("RFC 0002 §Signature Production: the signed buffer", () => {
  it("is uvarint(len(domain)) ‖ domain ‖ uvarint(len(payload_type)) ‖ payload_type ‖ uvarint(len(payload)) ‖ payload", () => {
    const domain = "d".repeat(200) // a two-byte length prefix
    const payloadType = Uint8Array.of(0x03, 0x01)
    const payload = new Uint8Array(300).fill(9)
    const buffer = Envelope.signingBuffer(domain, payloadType, payload)
    const expected = Uint8Array.of(
      ...Varint.encode(200),
      ...utf8(domain),
      ...Varint.encode(2),
      ...payloadType,
      ...Varint.encode(300),
      ...payload
    )
    expect(toHex(buffer)).toBe(toHex(expected))
    expect(toHex(Envelope.signingBuffer("", new Uint8Array(0), new Uint8Array(0)))).toBe("000000")
    // the domain is UTF-8: its length counts bytes, not characters
    expect(toHex(Envelope.signingBuffer("é", new Uint8Array(0), new Uint8Array(0)))).toBe("02c3a90000")
  })
  it("the signature is the signer's signature of that buffer", () => {
    const env = ok(Envelope.seal(key, "some-domain", Uint8Array.of(1), utf8("payload")))
    expect(
      key.publicKey.verify(Envelope.signingBuffer("some-domain", Uint8Array.of(1), utf8("payload")), env.signature)
    ).toBe(true)
  })
})

describe("RFC 0002 §Wire Format", () => {
  it("public_key = 1, payload_type = 2, payload = 3, signature = 5, written in field order", () => {
    const { fields } = vectors.envelope_signing_rule
    const env = ok(Envelope.seal(key, "d", Uint8Array.of(0xaa), Uint8Array.of(0xbb)))
    const bytes = Envelope.encode(env)
    const pk = Keys.publicKeyToProtobuf(key.publicKey)
    const tag = (n: number) => ((n << 3) | 2)
    expect(toHex(bytes)).toBe(
      toHex(Uint8Array.of(
        tag(fields.public_key),
        pk.length,
        ...pk,
        tag(fields.payload_type),
        1,
        0xaa,
        tag(fields.payload),
        1,
        0xbb,
        tag(fields.signature),
        env.signature.length,
        ...env.signature
      ))
    )
    const decoded = ok(Envelope.decode(bytes))
    expect(Keys.equals(decoded.publicKey, key.publicKey)).toBe(true)
    expect(decoded.payloadType).toEqual(Uint8Array.of(0xaa))
    expect(decoded.payload).toEqual(Uint8Array.of(0xbb))
    expect(decoded.signature).toEqual(env.signature)
    expect(PeerId.equals(Envelope.peerId(decoded), PeerId.fromPrivateKey(key))).toBe(true)
  })
  it("an envelope without a public key, or with an invalid one, is rejected [rfc0002:wire-format:1] [rfc0003:certification--verification:1]", () => {
    const env = ok(Envelope.seal(key, "d", Uint8Array.of(1), Uint8Array.of(2)))
    const bytes = Envelope.encode(env)
    const pkLength = bytes[1]!
    expect(failureReason(Envelope.decode(bytes.subarray(2 + pkLength)))).toBe("Malformed")
    const badKey = Uint8Array.from(bytes)
    badKey[3] = 9 // KeyType 9
    expect(failureReason(Envelope.decode(badKey))).toBe("InvalidPublicKey")
    expect(failureReason(Envelope.decode(Uint8Array.of(0x0a, 0x05)))).toBe("Malformed")
  })
})

describe("RFC 0002 §Domain Separation and §Signature Verification", () => {
  const sealed = Envelope.encode(ok(Envelope.seal(key, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, utf8("x"))))
  it("opens with the domain it was signed for, and only that domain [rfc0002:domain-separation:1]", () => {
    expect(Result.isSuccess(Envelope.open(sealed, PeerRecord.DOMAIN))).toBe(true)
    expect(failureReason(Envelope.open(sealed, vectors.relay_reservation_voucher.domain))).toBe("InvalidSignature")
    expect(failureReason(Envelope.open(sealed, PeerRecord.DOMAIN + " "))).toBe("InvalidSignature")
  })
  it("a relay reservation voucher (domain libp2p-relay-rsvp, payload type 0x0302) is not a peer record [rfc0002:domain-separation:1]", () => {
    const code = Number(vectors.relay_reservation_voucher.payload_type_multicodec)
    const voucherType = Uint8Array.of(code >> 8, code & 0xff)
    const voucher = ok(Envelope.seal(key, vectors.relay_reservation_voucher.domain, voucherType, utf8("voucher")))
    const bytes = Envelope.encode(voucher)
    expect(Result.isSuccess(Envelope.open(bytes, vectors.relay_reservation_voucher.domain, voucherType))).toBe(true)
    expect(failureReason(Envelope.open(bytes, vectors.relay_reservation_voucher.domain, PeerRecord.PAYLOAD_TYPE))).toBe(
      "WrongPayloadType"
    )
    expect(failureReason(PeerRecord.openSigned(bytes))).toBe("InvalidEnvelope")
    // even with the right domain, the payload type must be libp2p-peer-record
    const wrongType = Envelope.encode(ok(Envelope.seal(key, PeerRecord.DOMAIN, voucherType, utf8("x"))))
    expect(failureReason(PeerRecord.openSigned(wrongType))).toBe("WrongPayloadType")
  })
})

describe("RFC 0003: a real go-libp2p signed peer record", () => {
  for (const v of vectors.interop_vectors) {
    const bytes = fromHex(v.envelope_hex)
    const d = v.decoded_by_collector
    it(`${v.name}: opens with domain ${d.domain_used_for_signature} and payload type 0x${d.payload_type_hex} [rfc0003:signed-envelope-domain:1]`, () => {
      expect(PeerRecord.DOMAIN).toBe(d.domain_used_for_signature)
      expect(toHex(PeerRecord.PAYLOAD_TYPE)).toBe(d.payload_type_hex)
      const env = ok(Envelope.open(bytes, d.domain_used_for_signature, fromHex(d.payload_type_hex)))
      expect(d.signature_verifies).toBe(true)
      expect(toHex(Keys.publicKeyToProtobuf(env.publicKey))).toBe(d.public_key_protobuf_hex)
      expect(PeerId.toString(Envelope.peerId(env))).toBe(d.peer_id)
      // the private key of the vector is the signer's
      const priv = ok(Keys.privateKeyFromProtobuf(fromHex(v.private_key_protobuf_hex)))
      expect(Keys.equals(priv.publicKey, env.publicKey)).toBe(true)
    })
    it(`${v.name}: the record's peer id, seq (above 2^53) and ten addresses`, () => {
      const record = ok(PeerRecord.openSigned(bytes))
      expect(toHex(PeerId.toBytes(record.peerId))).toBe(d.record.peer_id_multihash_hex)
      expect(PeerId.toString(record.peerId)).toBe(d.peer_id)
      expect(record.seq).toBe(BigInt(d.record.seq))
      expect(record.addrs.map(toHex)).toEqual(d.record.addresses_hex)
      expect(ok(PeerRecord.multiaddrs(record)).map(String)).toEqual(d.record.addresses)
    })
    it(`${v.name}: re-encoding the record and re-sealing it with the same key gives the same bytes`, () => {
      const record = ok(PeerRecord.openSigned(bytes))
      const env = ok(Envelope.open(bytes, PeerRecord.DOMAIN))
      expect(toHex(PeerRecord.encode(record))).toBe(toHex(env.payload))
      const priv = ok(Keys.privateKeyFromProtobuf(fromHex(v.private_key_protobuf_hex)))
      // Ed25519 signatures are deterministic, so the whole envelope is reproduced
      expect(toHex(ok(PeerRecord.seal(priv, record)))).toBe(v.envelope_hex)
    })
    it(`${v.name}: a flipped byte anywhere in the envelope makes it fail to open [rfc0003:certification--verification:2] [rfc0003:certification--verification:3]`, () => {
      for (let i = 0; i < bytes.length; i++) {
        const flipped = Uint8Array.from(bytes)
        flipped[i]! ^= 0x01
        expect(Result.isFailure(PeerRecord.openSigned(flipped)), `byte ${i}`).toBe(true)
      }
    })
    it(`${v.name}: does not verify under the RFC 0003 draft domain "${vectors.rfc0003_text_values.domain}"`, () => {
      expect(failureReason(Envelope.open(bytes, vectors.rfc0003_text_values.domain))).toBe("InvalidSignature")
    })
  }
})

describe("RFC 0003 §Address Record Format and §Certification", () => {
  const peerId = PeerId.fromPrivateKey(key)
  const example = vectors.rfc0003_example.value
  it("the RFC's example record (seq 1570215229, two addresses; its placeholder peer ids replaced by ours)", () => {
    const addrs = example.addresses.map((a) =>
      ok(Multiaddr.fromString(a.multiaddr.replace("QmAlice", PeerId.toString(peerId))))
    )
    const record = PeerRecord.make(peerId, BigInt(example.seq), addrs)
    const sealed = ok(PeerRecord.seal(key, record))
    const opened = ok(PeerRecord.openSigned(sealed))
    expect(PeerId.equals(opened.peerId, peerId)).toBe(true)
    expect(opened.seq).toBe(BigInt(example.seq))
    expect(ok(PeerRecord.multiaddrs(opened)).map(String)).toEqual(addrs.map(String))
  })
  it("a record whose peer id is not the signer's is refused when sealing and when opening [rfc0002:wire-format:1] [rfc0003:certification--verification:4] [rfc0003:certification--verification:5]", () => {
    const other = ok(Keys.ed25519FromSeed(new Uint8Array(32).fill(8)))
    const record: PeerRecord.PeerRecord = { peerId: PeerId.fromPrivateKey(other), seq: 1n, addrs: [] }
    expect(failureReason(PeerRecord.seal(key, record))).toBe("PeerIdMismatch")
    // forge: sign another peer's record with our key at the envelope level
    const forged = Envelope.encode(
      ok(Envelope.seal(key, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, PeerRecord.encode(record)))
    )
    expect(failureReason(PeerRecord.openSigned(forged))).toBe("PeerIdMismatch")
  })
  it("seq must be a uint64; 0 and 2^64-1 are fine", () => {
    for (const seq of [0n, (1n << 64n) - 1n]) {
      expect(ok(PeerRecord.openSigned(ok(PeerRecord.seal(key, { peerId, seq, addrs: [] })))).seq).toBe(seq)
    }
    expect(failureReason(PeerRecord.seal(key, { peerId, seq: -1n, addrs: [] }))).toBe("InvalidSeq")
    expect(failureReason(PeerRecord.seal(key, { peerId, seq: 1n << 64n, addrs: [] }))).toBe("InvalidSeq")
  })
  it("a payload that is not a PeerRecord, or whose peer_id is not a peer id, is rejected after verification", () => {
    const garbage = Envelope.encode(
      ok(Envelope.seal(key, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, Uint8Array.of(0x0a, 0x09)))
    )
    expect(failureReason(PeerRecord.openSigned(garbage))).toBe("Malformed")
    const badId = Envelope.encode(
      ok(Envelope.seal(key, PeerRecord.DOMAIN, PeerRecord.PAYLOAD_TYPE, Uint8Array.of(0x0a, 0x01, 0x00)))
    )
    expect(failureReason(PeerRecord.openSigned(badId))).toBe("InvalidPeerId")
  })
})
