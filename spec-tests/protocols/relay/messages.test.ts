/**
 * Circuit relay v2's messages (relay/circuit-v2.md §Protobuf) and reservation
 * vouchers (§Reservation Vouchers) against bytes js-libp2p's
 * `@libp2p/circuit-relay-v2` produced (spec-tests/vectors/interop/relay-js-messages.json):
 * each message decodes to what js encoded and re-encodes to the same bytes;
 * js's voucher opens, ours is byte-identical to js's for the same key and
 * fields, and forged or mangled vouchers are refused with a typed reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Envelope from "../../../src/core/Envelope.ts"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Messages from "../../../src/protocols/relay/messages.ts"
import * as Voucher from "../../../src/protocols/relay/Voucher.ts"
import { fromHex, readJson, toHex } from "../../support/vectors.ts"

interface WireValue {
  readonly type: number
  readonly status?: number
  readonly peer?: { readonly id: string; readonly addrs: ReadonlyArray<string> }
  readonly reservation?: { readonly expire: string; readonly addrs: ReadonlyArray<string>; readonly voucher: string }
  readonly limit?: { readonly duration: number; readonly data: string }
}
interface Vectors {
  readonly relayPrivateKey: string
  readonly relay: string
  readonly peer: string
  readonly voucher: { readonly expiration: string; readonly envelope: string; readonly payload: string }
  readonly messages: ReadonlyArray<
    { readonly name: string; readonly type: "hop" | "stop"; readonly value: WireValue; readonly hex: string }
  >
}

const vectors = readJson<Vectors>("interop/relay-js-messages.json")
const relayKey = Result.getOrThrow(Keys.privateKeyFromProtobuf(fromHex(vectors.relayPrivateKey)))
const relay = Result.getOrThrow(PeerId.fromString(vectors.relay))
const peer = Result.getOrThrow(PeerId.fromString(vectors.peer))

const toOurs = (v: WireValue): Messages.HopMessage & Messages.StopMessage => ({
  type: v.type,
  ...(v.status !== undefined ? { status: v.status } : {}),
  ...(v.peer !== undefined ? { peer: { id: fromHex(v.peer.id), addrs: v.peer.addrs.map(fromHex) } } : {}),
  ...(v.reservation !== undefined
    ? {
      reservation: {
        expire: BigInt(v.reservation.expire),
        addrs: v.reservation.addrs.map(fromHex),
        voucher: fromHex(v.reservation.voucher)
      }
    }
    : {}),
  ...(v.limit !== undefined ? { limit: { duration: v.limit.duration, data: BigInt(v.limit.data) } } : {})
})

describe("circuit-v2 §Protobuf (js-libp2p vectors)", () => {
  for (const m of vectors.messages) {
    it(`circuit-v2 §Protobuf: ${m.name} decodes as js wrote it and re-encodes to the same bytes`, () => {
      const codec = m.type === "hop" ? Messages.HopMessage : Messages.StopMessage
      const decoded = Result.getOrThrow(codec.decode(fromHex(m.hex)))
      const want = toOurs(m.value)
      expect(decoded.type).toBe(want.type)
      expect(decoded.status).toBe(want.status)
      if (want.peer !== undefined) expect(toHex(decoded.peer!.id!)).toBe(toHex(want.peer.id!))
      if (want.limit !== undefined) expect(decoded.limit).toEqual(want.limit)
      if (m.type === "hop" && want.reservation !== undefined) {
        const r = (decoded as Messages.HopMessage).reservation!
        expect(r.expire).toBe(want.reservation.expire)
        expect(r.addrs.map(toHex)).toEqual(want.reservation.addrs.map(toHex))
      }
      expect(toHex(codec.encode(want))).toBe(m.hex)
    })
  }

  it("circuit-v2 §Protobuf: a message that is not protobuf fails to decode with a typed error", () => {
    const r = Messages.HopMessage.decode(Uint8Array.of(0x0a, 0xff, 0x01))
    expect(Result.isFailure(r) && r.failure._tag).toBe("ProtobufError")
  })

  it("circuit-v2 §Protobuf: status names cover the spec's codes, unknown codes read UNKNOWN", () => {
    expect(Messages.statusName(200)).toBe("RESERVATION_REFUSED")
    expect(Messages.statusName(401)).toBe("UNEXPECTED_MESSAGE")
    expect(Messages.statusName(999)).toBe("UNKNOWN")
  })
})

describe("circuit-v2 §Reservation Vouchers", () => {
  it("circuit-v2 §Reservation Vouchers: js's voucher opens with relay, peer and expiration", () => {
    const v = Result.getOrThrow(Voucher.open(fromHex(vectors.voucher.envelope)))
    expect(PeerId.equals(v.relay, relay)).toBe(true)
    expect(PeerId.equals(v.peer, peer)).toBe(true)
    expect(v.expiration).toBe(BigInt(vectors.voucher.expiration))
  })

  it("circuit-v2 §Reservation Vouchers: our voucher for the same key and fields is byte-identical to js's", () => {
    const voucher = { relay, peer, expiration: BigInt(vectors.voucher.expiration) }
    expect(toHex(Voucher.encodePayload(voucher))).toBe(vectors.voucher.payload)
    // Ed25519 signatures are deterministic: the whole envelope matches
    expect(toHex(Result.getOrThrow(Voucher.seal(relayKey, voucher)))).toBe(vectors.voucher.envelope)
  })

  it("circuit-v2 §Reservation Vouchers: domain libp2p-relay-rsvp, payload type 0x0302", () => {
    const env = Result.getOrThrow(Envelope.decode(fromHex(vectors.voucher.envelope)))
    expect(toHex(env.payloadType)).toBe("0302")
    expect(Envelope.verify(env, "libp2p-relay-rsvp")).toBe(true)
    expect(Envelope.verify(env, "libp2p-peer-record")).toBe(false)
  })

  it("circuit-v2 §Reservation Vouchers: a forged voucher (payload changed after signing) is refused", () => {
    const env = Result.getOrThrow(Envelope.decode(fromHex(vectors.voucher.envelope)))
    const payload = Voucher.encodePayload({ relay, peer: relay, expiration: 1n })
    const forged = Envelope.encode({ ...env, payload })
    const r = Voucher.open(forged)
    expect(Result.isFailure(r) && r.failure.reason).toBe("Envelope")
  })

  it("circuit-v2 §Reservation Vouchers: a voucher signed by another key than the relay it names is refused", () => {
    const other = Result.getOrThrow(Keys.ed25519FromSeed(new Uint8Array(32).fill(9)))
    const sealed = Result.getOrThrow(Voucher.seal(other, { relay, peer, expiration: 5n }))
    const r = Voucher.open(sealed)
    expect(Result.isFailure(r) && r.failure.reason).toBe("WrongSigner")
  })

  it("circuit-v2 §Reservation Vouchers: a voucher in another envelope domain or payload type is refused", () => {
    const payload = Voucher.encodePayload({ relay, peer, expiration: 5n })
    const wrongDomain = Envelope.encode(
      Result.getOrThrow(Envelope.seal(relayKey, "libp2p-peer-record", Voucher.PAYLOAD_TYPE, payload))
    )
    const wrongType = Envelope.encode(
      Result.getOrThrow(Envelope.seal(relayKey, Voucher.DOMAIN, Uint8Array.of(3, 1), payload))
    )
    for (const bytes of [wrongDomain, wrongType, Uint8Array.of(1, 2, 3)]) {
      const r = Voucher.open(bytes)
      expect(Result.isFailure(r) && r.failure.reason).toBe("Envelope")
    }
  })

  it("circuit-v2 §Reservation Vouchers: the payload must be canonical (fields in order, no unknown fields)", () => {
    const good = fromHex(vectors.voucher.payload)
    const withUnknown = new Uint8Array([...good, 0x20, 0x01]) // field 4, varint 1
    expect(Result.isFailure(Voucher.decodePayload(withUnknown))).toBe(true)
    expect(Result.isFailure(Voucher.decodePayload(new Uint8Array(0)))).toBe(true)
  })
})
