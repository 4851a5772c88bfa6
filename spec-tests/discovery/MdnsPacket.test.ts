/**
 * mDNS messages (specs discovery/mdns.md §Definitions, §Request, §Response),
 * built and read by `src/discovery/mdns/packet.ts`, checked against
 * `dns-packet` and against what js-libp2p's `@libp2p/mdns` sends, plus the
 * issue's bad input: malformed packets, thousands of TXT records, spoofed
 * peer ids, oversized strings.
 */
import { describe, expect, it } from "@effect/vitest"
import * as DnsPacket from "dns-packet"
import { Effect, Result } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Mdns from "../../src/discovery/Mdns.ts"
import * as Packet from "../../src/discovery/mdns/packet.ts"
import { ma } from "../support/multiaddr.ts"

const newPeer = () => PeerId.fromPrivateKey(Effect.runSync(Keys.generate("Ed25519")))
const decode = (b: Uint8Array) => DnsPacket.decode(Buffer.from(b))
const parse = (b: Uint8Array) => Result.getOrThrow(Packet.parse(b))

const txtResponse = (instance: string, strings: ReadonlyArray<string | Buffer>, where: "answers" | "additionals") => {
  const ptr = { type: "PTR" as const, name: Packet.SERVICE_NAME, ttl: 120, data: instance }
  // ten strings per TXT record (one record's data is at most 65,535 bytes)
  const txt = Array.from({ length: Math.ceil(strings.length / 10) }, (_, i) => ({
    type: "TXT" as const,
    name: instance,
    ttl: 120,
    data: strings.slice(i * 10, i * 10 + 10)
  }))
  return Uint8Array.from(DnsPacket.encode({
    type: "response",
    answers: where === "answers" ? [ptr, ...txt] : [ptr],
    additionals: where === "additionals" ? txt : []
  }))
}

describe("mDNS packets (discovery/mdns.md)", () => {
  it("§Definitions: the peer name is 32+ random lower-case alphanumerics, under 64", () => {
    const name = Packet.randomPeerName((n) => Math.floor(Math.random() * n))
    expect(name).toMatch(/^[a-z0-9]{32,63}$/)
  })

  it("§Request: a query with the question `_p2p._udp.local PTR`", () => {
    const q = decode(Packet.query())
    expect(q.type).toBe("query")
    expect(q.questions).toEqual([{ name: "_p2p._udp.local", type: "PTR", class: "IN" }])
    expect(parse(Packet.query())).toEqual({ _tag: "Query", asksForPeers: true })
    const other = Uint8Array.from(DnsPacket.encode({ type: "query", questions: [{ type: "A", name: "x.local" }] }))
    expect(parse(other)).toEqual({ _tag: "Query", asksForPeers: false })
  })

  it("§Response: PTR answer `<peer-name>.<service-name>`, TXT `dnsaddr=…/p2p/<id>` additional records", () => {
    const peer = newPeer()
    const addrs = [`/ip4/10.0.0.1/tcp/4001/p2p/${peer}`, `/ip6/fd00::1/tcp/4001/p2p/${peer}`]
    const bytes = Packet.response("abcdefghijklmnopqrstuvwxyz012345", addrs)
    const r = decode(bytes)
    expect(r.type).toBe("response")
    expect(r.answers).toMatchObject([{
      type: "PTR",
      name: "_p2p._udp.local",
      data: "abcdefghijklmnopqrstuvwxyz012345._p2p._udp.local"
    }])
    expect((r.additionals ?? []).map((a) => a.type)).toEqual(["TXT", "TXT"])
    expect((r.additionals ?? []).flatMap((a) => ("data" in a ? (a.data as Array<Buffer>) : [])).map(String)).toEqual(
      addrs.map((a) => `dnsaddr=${a}`)
    )
    const m = parse(bytes)
    expect(m._tag).toBe("Response")
    if (m._tag !== "Response") return
    expect(m.peer?.instance).toBe("abcdefghijklmnopqrstuvwxyz012345._p2p._udp.local")
    expect(PeerId.equals(m.peer!.peerId, peer)).toBe(true)
    expect(m.peer!.addrs.map(Multiaddr.toString)).toEqual(["/ip4/10.0.0.1/tcp/4001", "/ip6/fd00::1/tcp/4001"])
  })

  it("§Response: TXT records in the answers (as js-libp2p sends them) are read too; a string over 255 bytes is not sent", () => {
    const peer = newPeer()
    const m = parse(txtResponse("js._p2p._udp.local", [`dnsaddr=/ip4/10.0.0.2/tcp/1/p2p/${peer}`], "answers"))
    expect(m._tag === "Response" && m.peer?.addrs.map(Multiaddr.toString)).toEqual(["/ip4/10.0.0.2/tcp/1"])
    const long = `/dns4/${"a".repeat(240)}.example/tcp/1/p2p/${peer}`
    const r = decode(Packet.response("n".repeat(32), [long]))
    expect(r.additionals).toEqual([])
  })

  it("issue 18 bad input: malformed and truncated packets are a Malformed result, never a throw", () => {
    const good = Packet.response("n".repeat(32), [`/ip4/10.0.0.1/tcp/1/p2p/${newPeer()}`])
    for (const bytes of [new Uint8Array(0), Uint8Array.of(1, 2, 3), good.subarray(0, 20)]) {
      expect(Result.isFailure(Packet.parse(bytes))).toBe(true)
    }
    for (let cut = 1; cut < good.length; cut++) expect(() => Packet.parse(good.subarray(0, cut))).not.toThrow()
    // random garbage never throws
    for (let i = 0; i < 500; i++) {
      const bytes = Uint8Array.from({ length: 12 + (i % 200) }, () => Math.floor(Math.random() * 256))
      expect(() => Packet.parse(bytes)).not.toThrow()
    }
  })

  it("issue 18 bad input: thousands of TXT strings are read up to the bound, at most 32 addresses kept", () => {
    const peer = newPeer()
    const strings = Array.from({ length: 3000 }, (_, i) => `dnsaddr=/ip4/10.0.${i >> 8}.${i & 255}/tcp/1/p2p/${peer}`)
    const m = parse(txtResponse("x._p2p._udp.local", strings, "additionals"))
    expect(m._tag === "Response" && m.peer?.addrs.length).toBe(Packet.MAX_ADDRS)
    const junk = Array.from({ length: 3000 }, () => "junk")
    const n = parse(txtResponse("x._p2p._udp.local", [...junk, `dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/${peer}`], "answers"))
    // the valid string comes after the bound: nothing found
    expect(n).toEqual({ _tag: "Response", peer: undefined })
  })

  it("issue 18 bad input: a spoofed peer id (a TXT record whose /p2p id differs from the first) is dropped", () => {
    const peer = newPeer()
    const other = newPeer()
    const m = parse(txtResponse("x._p2p._udp.local", [
      `dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/${peer}`,
      `dnsaddr=/ip4/10.0.0.66/tcp/1/p2p/${other}`,
      "dnsaddr=/ip4/10.0.0.67/tcp/1",
      "dnsaddr=not a multiaddr",
      `dnsaddr=/ip4/10.0.0.2/tcp/1/p2p/${peer}`
    ], "additionals"))
    expect(m._tag === "Response" && PeerId.equals(m.peer!.peerId, peer)).toBe(true)
    expect(m._tag === "Response" && m.peer?.addrs.map(Multiaddr.toString)).toEqual([
      "/ip4/10.0.0.1/tcp/1",
      "/ip4/10.0.0.2/tcp/1"
    ])
  })

  it("issue 18 bad input: a response with no PTR for the service, or TXT under another name, names no peer", () => {
    const peer = newPeer()
    const noPtr = Uint8Array.from(DnsPacket.encode({
      type: "response",
      answers: [{ type: "TXT", name: "x._p2p._udp.local", data: [`dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/${peer}`] }]
    }))
    expect(parse(noPtr)).toEqual({ _tag: "Response", peer: undefined })
    const wrongName = Uint8Array.from(DnsPacket.encode({
      type: "response",
      answers: [{ type: "PTR", name: Packet.SERVICE_NAME, data: "x._p2p._udp.local" }],
      additionals: [{ type: "TXT", name: "y._p2p._udp.local", data: [`dnsaddr=/ip4/10.0.0.1/tcp/1/p2p/${peer}`] }]
    }))
    expect(parse(wrongName)).toEqual({ _tag: "Response", peer: undefined })
  })

  it("§Response: we answer with LAN addresses: wildcards expanded, loopback, link-local and relayed ones left out", () => {
    const id = PeerId.toString(newPeer())
    const listen = [
      ma(`/ip4/0.0.0.0/tcp/4001/p2p/${id}`),
      ma(`/ip4/127.0.0.1/tcp/4002/p2p/${id}`),
      ma(`/ip6/::/tcp/4003/p2p/${id}`),
      ma(`/ip4/192.168.1.5/tcp/4004/ws/p2p/${id}`),
      ma(`/ip4/10.0.0.9/tcp/4005/p2p/${id}/p2p-circuit/p2p/${id}`),
      ma("/ip4/10.0.0.9/tcp/4006"),
      ma(`/memory/1/p2p/${id}`)
    ]
    expect(Mdns.lanAddrs(listen, ["10.0.0.1", "127.0.0.1"], ["fd00::1", "fe80::1"], false)).toEqual([
      `/ip4/10.0.0.1/tcp/4001/p2p/${id}`,
      `/ip6/fd00::1/tcp/4003/p2p/${id}`,
      `/ip4/192.168.1.5/tcp/4004/ws/p2p/${id}`
    ])
    expect(Mdns.lanAddrs(listen, ["10.0.0.1", "127.0.0.1"], [], true)).toEqual([
      `/ip4/10.0.0.1/tcp/4001/p2p/${id}`,
      `/ip4/127.0.0.1/tcp/4001/p2p/${id}`,
      `/ip4/127.0.0.1/tcp/4002/p2p/${id}`,
      `/ip4/192.168.1.5/tcp/4004/ws/p2p/${id}`
    ])
  })
})
