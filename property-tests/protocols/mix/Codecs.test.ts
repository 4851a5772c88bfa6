/**
 * The Mix codecs around the Sphinx packet: the 94-byte address block (LIP-99
 * §8.4: ip4 | protocol | port | peer id slots, or our by-peer-id form) and the
 * padded message m (§8.5.2 step 1, nim's layout). Round trips for every
 * representable input; arbitrary bytes decode to a typed error or to a value
 * that encodes back to the same bytes, never a throw.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import { ok } from "../../../spec-tests/support/result.ts"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as Multihash from "../../../src/core/Multihash.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Address from "../../../src/protocols/mix/address.ts"
import * as Message from "../../../src/protocols/mix/message.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"

const peerId = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((d) =>
  ok(PeerId.fromBytes(Multihash.make(0x12, d).bytes))
)
const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join("."))
const port = fc.integer({ min: 0, max: 65535 })
const addr = fc.oneof(
  fc.tuple(ip, port).map(([i, p]) => `/ip4/${i}/tcp/${p}`),
  fc.tuple(ip, port).map(([i, p]) => `/ip4/${i}/udp/${p}/quic-v1`)
)

/** A valid block (tcp, quic, relayed or by peer id) with one byte replaced. */
const nearValid = fc.tuple(peerId, addr, fc.boolean(), fc.nat(Sphinx.ADDRESS_SIZE - 1), fc.nat(255)).map(
  ([peer, base, byPeer, at, value]) => {
    const block = ok(Address.encode(peer, byPeer ? undefined : ok(Multiaddr.fromString(base))))
    block[at] = value
    return block
  }
)

describe("mix codecs", () => {
  it("LIP-99 §8.4: ip4/tcp and ip4/udp/quic-v1 addresses, direct or through a relay, round-trip", () => {
    fc.assert(
      fc.property(peerId, addr, fc.option(peerId, { nil: undefined }), (peer, base, relay) => {
        const text = relay === undefined
          ? `${base}/p2p/${peer.toString()}`
          : `${base}/p2p/${relay.toString()}/p2p-circuit/p2p/${peer.toString()}`
        const ma = ok(Multiaddr.fromString(text))
        const block = ok(Address.encode(peer, ma))
        expect(block.byteLength).toBe(Sphinx.ADDRESS_SIZE)
        const back = ok(Address.decode(block))
        expect(PeerId.equals(back.peerId, peer)).toBe(true)
        expect(back.addr?.toString()).toBe(text)
      })
    )
  })

  it("LIP-99 §8.4 (our extension): other addresses encode the peer id alone and decode to it", () => {
    fc.assert(
      fc.property(peerId, fc.nat(1000), (peer, n) => {
        const block = ok(Address.encode(peer, ok(Multiaddr.fromString(`/memory/${n}`))))
        expect(block[4]).toBe(Address.BY_PEER_ID)
        const back = ok(Address.decode(block))
        expect(PeerId.equals(back.peerId, peer)).toBe(true)
        expect(back.addr).toBeUndefined()
      })
    )
  })

  it("arbitrary address blocks decode to a typed error or re-encode to themselves", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ minLength: Sphinx.ADDRESS_SIZE, maxLength: Sphinx.ADDRESS_SIZE }), nearValid),
        (block) => {
          const r = Address.decode(block)
          if (Result.isFailure(r)) expect(r.failure.reason).toBe("BadAddress")
          else expect(ok(Address.encode(r.success.peerId, r.success.addr))).toEqual(block)
        }
      )
    )
  })

  it("LIP-99 §8.5.2 step 1: a message with codec and SURBs pads to 3968 bytes and decodes to itself", () => {
    const surb = fc.record({
      firstHop: fc.uint8Array({ minLength: Sphinx.ADDRESS_SIZE, maxLength: Sphinx.ADDRESS_SIZE }),
      header: fc.uint8Array({ minLength: Sphinx.HEADER_SIZE, maxLength: Sphinx.HEADER_SIZE }),
      key: fc.uint8Array({ minLength: Sphinx.K, maxLength: Sphinx.K })
    })
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200 }),
        fc.array(surb, { maxLength: 3 }),
        fc.uint8Array({ maxLength: 1500 }),
        (codec, surbs, body) => {
          const m = ok(Message.encodeForward(codec, surbs, body, 7))
          expect(m.byteLength).toBe(Sphinx.MESSAGE_SIZE)
          const back = ok(Message.decodeForward(m))
          expect(back.codec).toBe(codec)
          expect(back.message).toEqual(body)
          expect(back.surbs.map((s) => Sphinx.encodeSurb(s))).toEqual(surbs.map((s) => Sphinx.encodeSurb(s)))
          expect(body.byteLength <= Message.maxMessageSize(codec, surbs.length)).toBe(true)
        }
      )
    )
  })

  it("a message one byte over maxMessageSize fails MessageTooLarge; arbitrary m never throws", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), fc.integer({ min: 0, max: Message.MAX_SURBS }), (codec, n) => {
        const max = Message.maxMessageSize(codec, n)
        const surbs = Array.from({ length: n }, () => Sphinx.decodeSurb(new Uint8Array(Sphinx.SURB_SIZE)))
        expect(Result.isSuccess(Message.encodeForward(codec, surbs, new Uint8Array(max)))).toBe(true)
        const over = Message.encodeForward(codec, surbs, new Uint8Array(max + 1))
        expect(Result.isFailure(over) && over.failure.reason === "MessageTooLarge").toBe(true)
      })
    )
    fc.assert(
      fc.property(fc.uint8Array({ minLength: Sphinx.MESSAGE_SIZE, maxLength: Sphinx.MESSAGE_SIZE }), (m) => {
        const r = Message.decodeForward(m)
        if (Result.isFailure(r)) expect(r.failure.reason).toBe("BadPayload")
      }),
      { numRuns: 50 }
    )
  })
})
