/**
 * Full-process interop over libp2p TLS: our node (layers/Node.ts `make` with TCP, our
 * `/tls/1.0.0` channel, Yamux, identify, ping) against a real js-libp2p v3 node with
 * `@libp2p/tls` (spec-tests/interop/harness, `encrypters: ["tls"]`), in both directions.
 *
 * Specs exercised: tls/tls.md §Handshake Protocol (TLS 1.3, client certificates required),
 * §Peer Authentication and §libp2p Public Key Extension (each side derives the other's peer
 * id from the certificate; a wrong expected id is refused), §ALPN; inlined-muxer-negotiation
 * §Multiplexer Negotiation over TLS (yamux agreed in the handshake, no multistream-select
 * round for the muxer, checked through a spy on our channel); ping (ping/ping.md), identify
 * (identify/README.md); connections §Upgrading connections (TLS as the second choice of
 * multistream-select).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Ping from "../../src/protocols/ping/Ping.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as Tls from "../../src/security/Tls.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import { ma } from "../support/multiaddr.ts"
import { buildNode } from "../support/node.ts"
import { spyMuxers } from "../support/security.ts"
import * as JsPeer from "./harness/JsPeer.ts"

/** Our node: TCP, the given channels (TLS spied on), Yamux. */
const ourNode = (security: ReadonlyArray<"tls" | "noise"> = ["tls"]) =>
  Effect.gen(function*() {
    const tls = spyMuxers(yield* Tls.make())
    const noise = yield* Noise.make()
    const layer = Nodes.layer({
      transports: [Tcp.transport],
      security: security.map((s) => (s === "tls" ? tls.wrapped : noise)),
      muxers: [Yamux.yamux],
      listen: [ma("/ip4/127.0.0.1/tcp/0")]
    })
    const node = yield* buildNode(layer)
    return { ...node, tlsMuxers: tls.muxers }
  })

const peerIdOf = (text: string): PeerId.PeerId => {
  const r = PeerId.fromString(text)
  if (r._tag === "Failure") throw new Error(`bad peer id ${text}`)
  return r.success
}

describe("interop with js-libp2p @libp2p/tls (libp2p TLS 1.3, /tls/1.0.0)", () => {
  it.live(
    "we dial js: TLS with yamux agreed over ALPN, ping 3 times, identify; js identifies us",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([JsPeer.start({ encrypters: ["tls"] }), ourNode()], { concurrency: 2 })
        const jsId = peerIdOf(js.peerId)
        const conn = yield* ours.host.dial(ma(js.addr))
        expect(PeerId.equals(conn.remotePeer, jsId)).toBe(true)
        expect(conn.security).toBe(Tls.PROTOCOL)
        expect(conn.muxer).toBe("/yamux/1.0.0")
        // inlined-muxer-negotiation: js (server) chose our first ALPN protocol
        expect(ours.tlsMuxers).toEqual([{ direction: "outbound", muxer: "/yamux/1.0.0" }])

        const rtts = yield* ours.ping.ping(jsId, { count: 3 })
        expect(rtts).toHaveLength(3)
        const id = yield* ours.identify.identify(conn)
        expect(id.agentVersion?.startsWith("js-libp2p/")).toBe(true)
        expect(id.protocols).toContain(Ping.PROTOCOL)
        expect(id.signedPeerRecord?.addrs.map(Multiaddr.toString)).toContain(js.addr.replace(/\/p2p\/.*$/, ""))

        const jsConns = yield* js.connections
        expect(jsConns.connections.map((c) => [c.direction, c.encryption, c.multiplexer])).toEqual([
          ["inbound", "/tls/1.0.0", "/yamux/1.0.0"]
        ])
        yield* js.awaitEvent(JsPeer.isEvent("peer:identify", { peerId: PeerId.toString(ours.host.peerId) }))
        const jsRtts = yield* js.ping({ peerId: PeerId.toString(ours.host.peerId) }, { count: 2 })
        expect(jsRtts.rtts).toHaveLength(2)
        const errors = (yield* js.eventLog).filter((e) => e.event === "identify:error" || e.event === "handler:error")
        expect(errors).toEqual([])
      }),
    60_000
  )

  it.live(
    "js dials us: TLS with yamux agreed over ALPN, js pings and identifies us, we ping and identify js",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([JsPeer.start({ encrypters: ["tls"] }), ourNode()], { concurrency: 2 })
        const jsId = peerIdOf(js.peerId)
        const ourId = PeerId.toString(ours.host.peerId)
        const dialed = yield* js.dial(Multiaddr.toString(ours.host.addrs()[0]!))
        expect(dialed.peerId).toBe(ourId)
        expect(dialed.encryption).toBe("/tls/1.0.0")
        expect(dialed.multiplexer).toBe("/yamux/1.0.0")
        // js (client) offered ["/yamux/1.0.0", "libp2p"]; we chose yamux
        expect(ours.tlsMuxers).toEqual([{ direction: "inbound", muxer: "/yamux/1.0.0" }])

        const jsRtts = yield* js.ping({ peerId: ourId }, { count: 3 })
        expect(jsRtts.rtts).toHaveLength(3)
        const jsView = yield* js.identify(ourId)
        expect(jsView.peerId).toBe(ourId)
        expect(jsView.protocols).toContain(Ping.PROTOCOL)
        expect(jsView.peerRecordVerified).toBe(true)

        for (let i = 0; i < 500 && ours.host.connections(jsId).length === 0; i++) yield* Effect.sleep("10 millis")
        const conn = ours.host.connections(jsId)[0]!
        expect(conn.direction).toBe("inbound")
        expect(conn.security).toBe(Tls.PROTOCOL)
        const rtts = yield* ours.ping.ping(jsId, { count: 2 })
        expect(rtts).toHaveLength(2)
        const id = yield* ours.identify.identify(conn)
        expect(id.agentVersion?.startsWith("js-libp2p/")).toBe(true)
      }),
    60_000
  )

  it.live(
    "TLS as the second choice: we offer [noise, tls] to a js node with only tls (multistream-select picks /tls/1.0.0)",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([JsPeer.start({ encrypters: ["tls"] }), ourNode(["noise", "tls"])], {
          concurrency: 2
        })
        const conn = yield* ours.host.dial(ma(js.addr))
        expect(conn.security).toBe(Tls.PROTOCOL)
        expect(yield* ours.ping.ping(peerIdOf(js.peerId), { count: 1 })).toHaveLength(1)
      }),
    60_000
  )

  it.live(
    "§libp2p Public Key Extension: dialing js under another peer id fails (PeerIdMismatch); js refuses us likewise",
    () =>
      Effect.gen(function*() {
        const [js, ours, other] = yield* Effect.all([
          JsPeer.start({ encrypters: ["tls"] }),
          ourNode(),
          JsPeer.start({ encrypters: ["tls"] })
        ], { concurrency: 3 })
        // js's address with the other js node's id
        const wrong = js.addr.replace(/\/p2p\/.*$/, `/p2p/${other.peerId}`)
        const exit = yield* Effect.exit(ours.host.dial(ma(wrong)))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(JSON.stringify(exit)).toMatch(/PeerIdMismatch/)
        // js dialing our address under the other node's id
        const ourWrong = Multiaddr.toString(ours.host.addrs()[0]!).replace(/\/p2p\/.*$/, `/p2p/${other.peerId}`)
        const jsExit = yield* Effect.exit(js.dial(ourWrong))
        expect(Exit.isFailure(jsExit)).toBe(true)
        // both nodes carry on: a correct dial works
        const conn = yield* ours.host.dial(ma(js.addr))
        expect(conn.security).toBe(Tls.PROTOCOL)
      }),
    60_000
  )
})
