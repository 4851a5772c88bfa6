/**
 * Kad-DHT's `Message` protobuf (kad-dht spec §RPC messages) against the bytes
 * go-libp2p-kad-dht produced (spec-tests/vectors/interop/kad-dht-go-messages.json):
 * every vector decodes to what the collector read from it, and re-encodes to the
 * same bytes when it has no legacy fields.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import { KadMessage, message, MessageType } from "../../../src/protocols/kad/messages.ts"
import { fromHex, readJson, toHex } from "../../support/vectors.ts"

interface Vector {
  readonly file: string
  readonly hex: string
  readonly decoded_by_collector: {
    readonly type: keyof typeof MessageType
    readonly key_hex: string
    readonly record?: { readonly key_utf8: string; readonly value_utf8: string; readonly field3_hex?: string }
    readonly providerPeers?: ReadonlyArray<{ readonly id_base58: string; readonly addrs: ReadonlyArray<string> }>
    readonly clusterLevelRaw: number
  }
}

const vectors = readJson<{ readonly vectors: ReadonlyArray<Vector> }>("interop/kad-dht-go-messages.json").vectors
const utf8 = new TextDecoder()

describe("kad messages §RPC messages (go-libp2p-kad-dht vectors)", () => {
  it("has the 8 vectors", () => {
    expect(vectors.length).toBe(8)
  })
  for (const v of vectors) {
    it(`${v.file}: decodes as ${v.decoded_by_collector.type}`, () => {
      const want = v.decoded_by_collector
      const msg = Result.getOrThrow(KadMessage.decode(fromHex(v.hex)))
      expect(msg.type).toBe(MessageType[want.type])
      expect(toHex(msg.key)).toBe(want.key_hex)
      expect(msg.clusterLevelRaw).toBe(want.clusterLevelRaw)
      if (want.record !== undefined) {
        expect(utf8.decode(msg.record!.key)).toBe(want.record.key_utf8)
        expect(utf8.decode(msg.record!.value)).toBe(want.record.value_utf8)
      } else {
        expect(msg.record).toBeUndefined()
      }
      expect(msg.providerPeers.length).toBe(want.providerPeers?.length ?? 0)
      msg.providerPeers.forEach((p, i) => {
        const wantPeer = want.providerPeers![i]!
        expect(PeerId.toString(Result.getOrThrow(PeerId.fromBytes(p.id)))).toBe(wantPeer.id_base58)
        expect(p.addrs.map((a) => Multiaddr.toString(Result.getOrThrow(Multiaddr.fromBytes(a))))).toEqual(
          wantPeer.addrs
        )
      })
      // The legacy Record field 3 is skipped; without it our encoding is go's,
      // except that go writes clusterLevelRaw = 0 explicitly (proto3 omits a default).
      if (want.record?.field3_hex === undefined) {
        const ours = toHex(KadMessage.encode(msg))
        expect(ours + "5000").toBe(v.hex)
      }
    })
  }

  it("round-trips a message with closer peers and a record", () => {
    const msg = message(MessageType.GET_VALUE, {
      key: new Uint8Array([1, 2, 3]),
      record: { key: new Uint8Array([1, 2, 3]), value: new Uint8Array([9]), timeReceived: "2026-01-01T00:00:00Z" },
      closerPeers: [{ id: new Uint8Array([0, 1, 7]), addrs: [new Uint8Array([4, 127, 0, 0, 1])], connection: 1 }]
    })
    const back = Result.getOrThrow(KadMessage.decode(KadMessage.encode(msg)))
    expect(back).toEqual(msg)
  })

  it("fails with a typed ProtobufError on malformed bytes", () => {
    const r = KadMessage.decode(fromHex("0a05ff"))
    expect(Result.isFailure(r) && r.failure._tag).toBe("ProtobufError")
  })
})
