/**
 * Interop: our binary form of a multiaddr equals the one js-libp2p's
 * `@multiformats/multiaddr` (13.x, devDependency, imported only here) produces,
 * and js reads our bytes back to the same address. This is what travels in
 * identify, peer records and the DHT (multiaddr README §Specification: the
 * machine-readable form is the interchange form).
 *
 * Divergences found (js 13 vs the go/rust vectors and the spec), each asserted below
 * so that a change in js shows up here:
 * - `/http-path`: js stores the path with a leading `/` (bytes of `/user` for
 *   `/http-path/user`), while go and rust store `user` (vector
 *   `/tcp/1234/http/http-path/user` = `…e1030475736572`). Reading go's bytes, js
 *   drops the first character of the path.
 * - `/memory`: js writes the decimal text as a length-prefixed string; go and rust
 *   write 8 bytes big-endian. js cannot read go's form back.
 * - `/garlic32`, `/garlic64`: js stores the text (UTF-8), go and rust the decoded bytes.
 * - Printing only (bytes agree): js prints an IPv4-mapped IPv6 address as
 *   `::ffff:7f00:1` (WHATWG URL host serialisation), go and rust as
 *   `::ffff:127.0.0.1`; js prints `/unix/%2Ftmp%2Fx.sock` where the spec shows
 *   `/unix/tmp/x.sock`; js keeps a CID-form `/p2p` value as written, go and rust print base58btc.
 */
import { describe, expect, it } from "@effect/vitest"
import { multiaddr } from "@multiformats/multiaddr"
import { Result } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import { toHex } from "../support/vectors.ts"

const parse = (s: string) => Result.getOrThrow(Multiaddr.fromString(s))

const agree: ReadonlyArray<string> = [
  "/ip4/127.0.0.1/tcp/4001",
  "/ip4/0.0.0.0/udp/0/quic-v1",
  "/ip6/::1/tcp/4001",
  "/ip6/::/tcp/0",
  "/ip6/2001:db8::1/udp/9/quic-v1/webtransport",
  "/ip6/::ffff:127.0.0.1/tcp/111",
  "/ip6zone/eth0/ip6/fe80::1/tcp/1",
  "/ip6/fe80::9700:803e:ca65:66e8:c21/ip6zone/wlan0",
  "/ip4/192.0.2.0/ipcidr/24",
  "/dns/example.com/tcp/80/http",
  "/dns4/example.com/tcp/443/wss",
  "/dns6/example.com/tcp/443/tls/ws",
  "/dnsaddr/bootstrap.libp2p.io",
  "/ip4/1.2.3.4/tcp/443/tls/sni/example.com/http",
  "/ip4/1.2.3.4/tcp/1/ws/noise",
  "/ip4/1.2.3.4/sctp/5/dccp/6",
  "/ip4/1.2.3.4/udp/1/webrtc-direct/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g",
  "/ip4/127.0.0.1/udp/1234/quic-v1/webtransport/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g/certhash/zQmbWTwYGcmdyK9CYfNBcfs9nhZs17a6FQ4Y8oea278xx41",
  "/ip6/2601:9:4f81:9700:803e:ca65:66e8:c21/udp/1234/quic",
  "/ip4/127.0.0.1/tcp/0/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV/p2p-circuit/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
  "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u",
  "/ipfs/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC/tcp/1234",
  "/onion/timaq4ygg2iegci7:1234",
  "/onion3/vww6ybal4bd7szmgncyruucpgfkqahzddi37ktceo3ah7ngmcopnpyyd:1234",
  "/unix/%2Ftmp%2Fx.sock",
  "/unix/%2Ftmp%2Fx.sock/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV",
  "/p2p-webrtc-star/ip4/127.0.0.1/tcp/9090/ws/p2p/QmcgpsyWgH8Y8ajJz1Cu72KnS5uo2Aa2LpzU7kinSupNKC",
  "/ip4/1.2.3.4/udp/1/udt",
  "/ip4/1.2.3.4/tcp/1/webrtc",
  "/ip4/1.2.3.4/tcp/1/https"
]

describe("interop with @multiformats/multiaddr 13 (README §Specification: binary form)", () => {
  for (const s of agree) {
    it(`same bytes for ${s}`, () => {
      const ours = parse(s)
      const js = multiaddr(s)
      expect(toHex(Multiaddr.toBytes(ours))).toBe(toHex(js.bytes))
      // js reads our bytes, and we read what js prints.
      const jsFromOurs = multiaddr(Multiaddr.toBytes(ours))
      expect(Multiaddr.equals(parse(jsFromOurs.toString()), ours)).toBe(true)
      // js reads what we print, except our spec-form unix path (js only knows its percent form).
      if (!ours.toString().startsWith("/unix/") || ours.components.length > 1) {
        expect(toHex(multiaddr(ours.toString()).bytes)).toBe(toHex(js.bytes))
      }
    })
  }

  it("divergence: /http-path bytes (js keeps a leading '/')", () => {
    const s = "/tcp/1234/http/http-path/user"
    expect(toHex(Multiaddr.toBytes(parse(s)))).toBe("0604d2e003e1030475736572") // go/rust vector
    expect(toHex(multiaddr(s).bytes)).toBe("0604d2e003e103052f75736572")
    expect(multiaddr(Multiaddr.toBytes(parse(s))).toString()).toBe("/tcp/1234/http/http-path/ser")
  })

  it("divergence: /memory bytes (js writes decimal text)", () => {
    expect(toHex(Multiaddr.toBytes(parse("/memory/4")))).toBe("89060000000000000004")
    expect(toHex(multiaddr("/memory/4").bytes)).toBe("89060134")
  })

  it("divergence: /garlic32 bytes (js writes the text)", () => {
    const s = "/garlic32/566niximlxdzpanmn4qouucvua3k7neniwss47li5r6ugoertzuq"
    expect(Multiaddr.toBytes(parse(s)).length).toBe(2 + 1 + 32)
    expect(toHex(multiaddr(s).bytes)).toBe("bf0334" + toHex(new TextEncoder().encode(s.slice("/garlic32/".length))))
  })

  it("printing differs, bytes agree: IPv4-mapped IPv6, unix paths, CID peer ids", () => {
    expect(multiaddr("/ip6/::ffff:127.0.0.1").toString()).toBe("/ip6/::ffff:7f00:1")
    expect(parse("/ip6/::ffff:7f00:1").toString()).toBe("/ip6/::ffff:127.0.0.1")
    expect(multiaddr("/unix/%2Ftmp%2Fx.sock").toString()).toBe("/unix/%2Ftmp%2Fx.sock")
    expect(parse("/unix/%2Ftmp%2Fx.sock").toString()).toBe("/unix/tmp/x.sock")
    const cid = "/p2p/bafzaajaiaejcalj543iwv2d7pkjt7ykvefrkfu7qjfi6sduakhso4lay6abn2d5u"
    expect(multiaddr(cid).toString()).toBe(cid)
    expect(parse(cid).toString()).toBe("/p2p/12D3KooWCryG7Mon9orvQxcS1rYZjotPgpwoJNHHKcLLfE4Hf5mV")
  })
})
