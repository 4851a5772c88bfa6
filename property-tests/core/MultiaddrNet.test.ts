/**
 * Properties of address classification (docs/ARCHITECTURE.md §7 "Address
 * classification"): every IP address is in exactly one class, that class
 * agrees with Multiaddr.isLoopback / isPrivate, an IPv4-mapped IPv6 address
 * is judged by its IPv4 part, every address inside a private or
 * documentation network is classified so, a configured public CIDR changes
 * exactly the private and reserved addresses inside it, and CIDRs print and
 * parse back to themselves.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Codec from "../../src/core/internal/multiaddrCodec.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../src/core/MultiaddrNet.ts"

const ip4 = fc.uint8Array({ minLength: 4, maxLength: 4 })
const ip6 = fc.uint8Array({ minLength: 16, maxLength: 16 })
const text = (ip: Uint8Array) => (ip.length === 4 ? Codec.formatIp4(ip) : Codec.formatIp6(ip))
const addr = (ip: Uint8Array, rest = "/tcp/4001") =>
  Result.getOrThrow(Multiaddr.fromString(`/${ip.length === 4 ? "ip4" : "ip6"}/${text(ip)}${rest}`))
const cidr = (s: string) => Result.getOrThrow(MultiaddrNet.parseCidr(s))

/** A random address inside `network`: its prefix bits, random host bits. */
const inside = (network: MultiaddrNet.Cidr) =>
  fc.uint8Array({ minLength: network.bytes.length, maxLength: network.bytes.length }).map((host) =>
    Uint8Array.from(host, (b, i) => {
      const prefixBits = Math.max(0, Math.min(8, network.bits - i * 8))
      const prefixMask = (0xff00 >> prefixBits) & 0xff
      return (network.bytes[i]! & prefixMask) | (b & ~prefixMask & 0xff)
    })
  )

const PRIVATE = [
  "10.0.0.0/8",
  "172.16.0.0/12",
  "192.168.0.0/16",
  "100.64.0.0/10",
  "169.254.0.0/16",
  "fc00::/7",
  "fe80::/10"
].map(cidr)
const DOCUMENTATION = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20"].map(cidr)

/** The first `bits` bits of `a` and `b` agree (a reference for `contains`, bit by bit as text). */
const samePrefix = (a: Uint8Array, b: Uint8Array, bits: number) => {
  const bitsOf = (x: Uint8Array) => Array.from(x, (v) => v.toString(2).padStart(8, "0")).join("").slice(0, bits)
  return a.length === b.length && bitsOf(a) === bitsOf(b)
}

describe("MultiaddrNet.classify: properties", () => {
  it("every IPv4 and IPv6 address is in exactly one IP class, agreeing with Multiaddr.isLoopback and isPrivate", () => {
    fc.assert(
      fc.property(fc.oneof(ip4, ip6), (ip) => {
        const ma = addr(ip)
        const c = MultiaddrNet.classify(ma)
        expect(["loopback", "private", "reserved", "public"]).toContain(c)
        expect(c === "loopback").toBe(Multiaddr.isLoopback(ma))
        expect(c === "loopback" || c === "private").toBe(Multiaddr.isPrivate(ma))
        expect(MultiaddrNet.isPublic(ma)).toBe(c === "public")
      }),
      { numRuns: 2000 }
    )
  })

  it("an IPv6 public address is global unicast (2000::/3)", () => {
    fc.assert(
      fc.property(ip6, (ip) => {
        if (MultiaddrNet.classify(addr(ip)) === "public") expect(ip[0]! & 0xe0).toBe(0x20)
      }),
      { numRuns: 2000 }
    )
  })

  it("an IPv4-mapped IPv6 address is classified as its IPv4 address", () => {
    fc.assert(
      fc.property(ip4, (ip) => {
        const mapped = Uint8Array.from([...new Uint8Array(10), 0xff, 0xff, ...ip])
        expect(MultiaddrNet.classify(addr(mapped))).toBe(MultiaddrNet.classify(addr(ip)))
      }),
      { numRuns: 1000 }
    )
  })

  it("every address in RFC 1918, 100.64/10, link local or ULA is private; in a documentation range, reserved", () => {
    fc.assert(
      fc.property(fc.oneof(...PRIVATE.map(inside)), (ip) => {
        expect([text(ip), MultiaddrNet.classify(addr(ip))]).toEqual([text(ip), "private"])
      }),
      { numRuns: 1000 }
    )
    fc.assert(
      fc.property(fc.oneof(...DOCUMENTATION.map(inside)), (ip) => {
        expect([text(ip), MultiaddrNet.classify(addr(ip))]).toEqual([text(ip), "reserved"])
      }),
      { numRuns: 1000 }
    )
  })

  it("a public CIDR makes the private and reserved addresses inside it public, and changes nothing else", () => {
    const network = fc.oneof(ip4, ip6).chain((bytes) =>
      fc.integer({ min: 0, max: bytes.length * 8 }).map((bits) => cidr(`${text(bytes)}/${bits}`))
    )
    fc.assert(
      fc.property(network, fc.oneof(ip4, ip6), (net, ip) => {
        const ma = addr(ip)
        const before = MultiaddrNet.classify(ma)
        const after = MultiaddrNet.classify(ma, { publicCidrs: [net] })
        const affected = MultiaddrNet.contains(net, Multiaddr.ipBytes(ma)!) &&
          (before === "private" || before === "reserved")
        expect(after).toBe(affected ? "public" : before)
      }),
      { numRuns: 2000 }
    )
  })
})

describe("MultiaddrNet CIDRs: properties", () => {
  it("a CIDR prints and parses back to itself (also in the /ipcidr multiaddr form)", () => {
    fc.assert(
      fc.property(fc.oneof(ip4, ip6), fc.integer({ min: 0, max: 128 }), (bytes, n) => {
        const bits = n % (bytes.length * 8 + 1)
        const c = cidr(`${text(bytes)}/${bits}`)
        expect(cidr(MultiaddrNet.formatCidr(c))).toEqual(c)
        const family = bytes.length === 4 ? "ip4" : "ip6"
        expect(cidr(`/${family}/${text(bytes)}/ipcidr/${bits}`)).toEqual(c)
      }),
      { numRuns: 1000 }
    )
  })

  it("contains(cidr, ip) is 'the first bits agree' (same family only)", () => {
    fc.assert(
      fc.property(fc.oneof(ip4, ip6), fc.oneof(ip4, ip6), fc.integer({ min: 0, max: 128 }), (net, ip, n) => {
        const bits = n % (net.length * 8 + 1)
        const c = cidr(`${text(net)}/${bits}`)
        expect(MultiaddrNet.contains(c, ip)).toBe(samePrefix(net, ip, bits))
        // an address always lies in its own networks
        expect(MultiaddrNet.contains(c, net)).toBe(true)
      }),
      { numRuns: 2000 }
    )
  })
})
