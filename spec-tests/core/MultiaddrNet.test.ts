/**
 * Address classification (docs/ARCHITECTURE.md §7 "Address classification":
 * private means RFC 1918, 100.64/10, loopback, link-local, IPv6 ULA;
 * documentation and reserved ranges are not public either, unless a
 * `--public-cidr` says so), checked against the IANA IPv4 and IPv6
 * special-purpose address registries and go-multiaddr/net's private and
 * unroutable lists; CIDR parsing; the thin-waist split of go-libp2p's
 * observedaddrs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../src/core/MultiaddrNet.ts"

const ma = (s: string) => Result.getOrThrow(Multiaddr.fromString(s))
const cidr = (s: string) => Result.getOrThrow(MultiaddrNet.parseCidr(s))
const classOf = (s: string, options?: MultiaddrNet.ClassifyOptions) => [s, MultiaddrNet.classify(ma(s), options)]

describe("MultiaddrNet.classify", () => {
  it("loopback: 127/8, ::1, IPv4-mapped 127/8, /dns*/localhost", () => {
    for (const s of [
      "/ip4/127.0.0.1/tcp/1",
      "/ip4/127.255.0.9",
      "/ip6/::1/tcp/1",
      "/ip6/::ffff:127.0.0.1",
      "/dns4/localhost/tcp/1",
      "/dns/a.localhost"
    ]) {
      expect(classOf(s)).toEqual([s, "loopback"])
    }
  })

  it("private: RFC 1918, 100.64/10 (RFC 6598), link local, IPv6 unique local (fc00::/7)", () => {
    for (
      const s of [
        "/ip4/10.0.0.1",
        "/ip4/10.255.255.255/tcp/1",
        "/ip4/172.16.0.1",
        "/ip4/172.31.255.254",
        "/ip4/192.168.1.5/tcp/4001",
        "/ip4/100.64.0.1",
        "/ip4/100.127.255.255",
        "/ip4/169.254.1.1",
        "/ip6/fe80::1/tcp/1",
        "/ip6zone/eth0/ip6/fe80::1",
        "/ip6/fc00::1",
        "/ip6/fd12:3456::1/udp/1",
        "/ip6/::ffff:192.168.0.1"
      ]
    ) expect(classOf(s)).toEqual([s, "private"])
  })

  it("reserved: documentation (RFC 5737, RFC 3849, RFC 9637), benchmarking, multicast, 0/8, 240/4, and IPv6 outside 2000::/3", () => {
    for (
      const s of [
        "/ip4/192.0.2.1",
        "/ip4/198.51.100.7/tcp/4001",
        "/ip4/203.0.113.255",
        "/ip4/0.0.0.0/tcp/1",
        "/ip4/0.1.2.3",
        "/ip4/192.0.0.8",
        "/ip4/192.88.99.1",
        "/ip4/198.18.0.1",
        "/ip4/198.19.255.255",
        "/ip4/224.0.0.251/udp/5353",
        "/ip4/239.1.1.1",
        "/ip4/240.0.0.1",
        "/ip4/255.255.255.255",
        "/ip6/2001:db8::1/tcp/1",
        "/ip6/3fff::1",
        "/ip6/2001:2::1",
        "/ip6/2001:10::1",
        "/ip6/2001:20::1",
        "/ip6/::",
        "/ip6/ff02::fb/udp/5353",
        "/ip6/64:ff9b::1.2.3.4",
        "/ip6/100::1",
        "/ip6/::ffff:203.0.113.1"
      ]
    ) expect(classOf(s)).toEqual([s, "reserved"])
  })

  it("public: any other IP, next to the edges of the ranges above", () => {
    for (
      const s of [
        "/ip4/1.1.1.1/tcp/4001",
        "/ip4/8.8.8.8",
        "/ip4/9.255.255.255",
        "/ip4/11.0.0.0",
        "/ip4/100.63.255.255",
        "/ip4/100.128.0.0",
        "/ip4/172.15.255.255",
        "/ip4/172.32.0.0",
        "/ip4/192.0.3.0",
        "/ip4/198.17.255.255",
        "/ip4/198.20.0.0",
        "/ip4/223.255.255.255",
        "/ip6/2001:4860:4860::8888/tcp/1",
        "/ip6/2a00:1450::1",
        "/ip6/2001:db9::1",
        "/ip6/3ffe::1",
        "/ip6/::ffff:8.8.8.8"
      ]
    ) expect(classOf(s)).toEqual([s, "public"])
  })

  it("unknown: nothing to judge without resolving", () => {
    for (const s of ["/dns4/example.com/tcp/1", "/dnsaddr/bootstrap.libp2p.io", "/unix/tmp/x.sock", "/memory/3"]) {
      expect(classOf(s)).toEqual([s, "unknown"])
    }
  })

  it("--public-cidr: private and reserved addresses inside a configured CIDR are public; loopback stays loopback", () => {
    const options = {
      publicCidrs: [cidr("198.51.100.0/24"), cidr("10.0.0.0/8"), cidr("127.0.0.0/8"), cidr("2001:db8::/32")]
    }
    expect(classOf("/ip4/198.51.100.7/tcp/1", options)).toEqual(["/ip4/198.51.100.7/tcp/1", "public"])
    expect(classOf("/ip4/10.1.2.3", options)).toEqual(["/ip4/10.1.2.3", "public"])
    expect(classOf("/ip6/2001:db8::5", options)).toEqual(["/ip6/2001:db8::5", "public"])
    expect(classOf("/ip4/127.0.0.1", options)).toEqual(["/ip4/127.0.0.1", "loopback"])
    expect(classOf("/ip4/203.0.113.1", options)).toEqual(["/ip4/203.0.113.1", "reserved"])
    expect(classOf("/ip4/192.168.0.1", options)).toEqual(["/ip4/192.168.0.1", "private"])
    expect(MultiaddrNet.isPublic(ma("/ip4/198.51.100.7"), options)).toBe(true)
    expect(MultiaddrNet.isPublic(ma("/ip4/198.51.100.7"))).toBe(false)
  })
})

describe("MultiaddrNet CIDRs", () => {
  it("parseCidr takes a.b.c.d/n, x::/n, a bare address, and /ip4|ip6/<ip>/ipcidr/<n>; host bits are cleared", () => {
    expect(MultiaddrNet.formatCidr(cidr("198.51.100.77/24"))).toBe("198.51.100.0/24")
    expect(MultiaddrNet.formatCidr(cidr("2001:db8:1:2::9/33"))).toBe("2001:db8::/33")
    expect(MultiaddrNet.formatCidr(cidr("8.8.8.8"))).toBe("8.8.8.8/32")
    expect(MultiaddrNet.formatCidr(cidr("/ip4/10.1.0.0/ipcidr/8"))).toBe("10.0.0.0/8")
    expect(MultiaddrNet.formatCidr(cidr("/ip6/fd00::/ipcidr/8"))).toBe("fd00::/8")
    expect(MultiaddrNet.formatCidr(cidr("0.0.0.0/0"))).toBe("0.0.0.0/0")
  })

  it("parseCidr refuses what is not a CIDR, with a typed MultiaddrError", () => {
    for (const s of [
      "",
      "example.com/8",
      "1.2.3.4/33",
      "::/129",
      "1.2.3.4/-1",
      "1.2.3.4/8/8",
      "1.2.3/8",
      "/ip4/1.2.3.4/tcp/1",
      "/dns4/a/ipcidr/8",
      "/ip4/1.2.3.4/ipcidr/40",
      "/nope"
    ]) {
      const r = MultiaddrNet.parseCidr(s)
      expect([s, Result.isFailure(r) && r.failure._tag]).toEqual([s, "MultiaddrError"])
    }
  })

  it("contains: the prefix bits decide; the families never mix", () => {
    expect(MultiaddrNet.contains(cidr("100.64.0.0/10"), Uint8Array.of(100, 127, 255, 255))).toBe(true)
    expect(MultiaddrNet.contains(cidr("100.64.0.0/10"), Uint8Array.of(100, 128, 0, 0))).toBe(false)
    expect(MultiaddrNet.contains(cidr("0.0.0.0/0"), Uint8Array.of(1, 2, 3, 4))).toBe(true)
    expect(MultiaddrNet.contains(cidr("::/0"), Uint8Array.of(1, 2, 3, 4))).toBe(false)
  })

  it("Multiaddr.ipBytes: the first IP (zone skipped, IPv4-mapped unwrapped), or undefined", () => {
    expect(Multiaddr.ipBytes(ma("/ip4/1.2.3.4/tcp/1"))).toEqual(Uint8Array.of(1, 2, 3, 4))
    expect(Multiaddr.ipBytes(ma("/ip6/::ffff:1.2.3.4"))).toEqual(Uint8Array.of(1, 2, 3, 4))
    expect(Multiaddr.ipBytes(ma("/ip6zone/eth0/ip6/fe80::1"))?.length).toBe(16)
    expect(Multiaddr.ipBytes(ma("/dns4/example.com/tcp/1"))).toBeUndefined()
  })
})

describe("MultiaddrNet.splitThinWaist (go-libp2p observedaddrs thinWaistForm)", () => {
  it("ip4|ip6 then tcp|udp, and the rest", () => {
    const split = (s: string) => {
      const r = MultiaddrNet.splitThinWaist(ma(s))
      return r === undefined
        ? undefined
        : [Multiaddr.toString(r.thinWaist), Multiaddr.isEmpty(r.rest) ? "" : Multiaddr.toString(r.rest)]
    }
    expect(split("/ip4/1.2.3.4/tcp/4001")).toEqual(["/ip4/1.2.3.4/tcp/4001", ""])
    expect(split("/ip4/1.2.3.4/tcp/4001/ws")).toEqual(["/ip4/1.2.3.4/tcp/4001", "/ws"])
    expect(split("/ip6/::1/udp/4001/quic-v1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5")).toEqual([
      "/ip6/::1/udp/4001",
      "/quic-v1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5"
    ])
    for (const s of [
      "/ip4/1.2.3.4",
      "/dns4/a.b/tcp/1",
      "/ip6zone/x/ip6/fe80::1/tcp/1",
      "/ip4/1.2.3.4/ip4/5.6.7.8",
      "/unix/x.sock"
    ]) {
      expect([s, split(s)]).toEqual([s, undefined])
    }
  })

  it("isRelayed: a /p2p-circuit component", () => {
    expect(
      MultiaddrNet.isRelayed(
        ma("/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5/p2p-circuit")
      )
    )
      .toBe(true)
    expect(MultiaddrNet.isRelayed(ma("/ip4/1.2.3.4/tcp/1"))).toBe(false)
  })
})
