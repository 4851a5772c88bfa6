/**
 * Properties of DCUtR's HolePunch codec (relay/DCUtR.md §RPC messages): every
 * message round-trips; any bytes decode to a message or a typed failure,
 * never a throw; a decoded message never carries more than `MAX_ADDRS`
 * addresses; and `usableAddrs` keeps only public TCP thin waists, at most
 * `max`, without duplicates, whatever it is given.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as Dcutr from "../../../src/protocols/dcutr/Dcutr.ts"
import * as Messages from "../../../src/protocols/dcutr/messages.ts"

const ip4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join("."))
const addr = fc
  .tuple(ip4, fc.nat(65535), fc.constantFrom("tcp", "udp"), fc.constantFrom("", "/ws", "/p2p-circuit"))
  .map(([ip, port, proto, tail]) => Result.getOrThrow(Multiaddr.fromString(`/ip4/${ip}/${proto}/${port}${tail}`)))
const message = fc.record({
  type: fc.constantFrom(Messages.CONNECT, Messages.SYNC),
  addrs: fc.array(addr, { maxLength: Messages.MAX_ADDRS })
})

describe("DCUtR messages", () => {
  it("DCUtR §RPC messages: encode then decode gives the message back", () =>
    fc.assert(fc.property(message, (msg) => {
      const back = Result.getOrThrow(Messages.decode(Messages.encode(msg)))
      expect(back.type).toBe(msg.type)
      expect(back.addrs.map(String)).toEqual(msg.addrs.map(String))
    })))

  it("DCUtR §RPC messages: any bytes decode to a message of at most MAX_ADDRS addresses or a typed failure", () =>
    fc.assert(fc.property(fc.uint8Array({ maxLength: Messages.MAX_MESSAGE_SIZE }), (bytes) => {
      const out = Messages.decode(bytes)
      if (Result.isSuccess(out)) {
        expect([Messages.CONNECT, Messages.SYNC]).toContain(out.success.type)
        expect(out.success.addrs.length).toBeLessThanOrEqual(Messages.MAX_ADDRS)
      } else {
        expect(["Malformed", "TooManyAddresses"]).toContain(out.failure._tag)
      }
    })))

  it("DCUtR §The Protocol: usableAddrs keeps distinct public TCP thin waists, at most max", () =>
    fc.assert(fc.property(fc.array(addr, { maxLength: 100 }), fc.integer({ min: 0, max: 16 }), (addrs, max) => {
      const kept = Dcutr.usableAddrs(addrs, { max })
      expect(kept.length).toBeLessThanOrEqual(max)
      expect(new Set(kept.map(String)).size).toBe(kept.length)
      for (const k of kept) {
        expect(MultiaddrNet.isPublic(k)).toBe(true)
        expect(k.components.map((c) => c.name)).toEqual(["ip4", "tcp"])
      }
    })))
})
