/**
 * Full-process interop over WebSockets (libp2p websockets spec: the raw libp2p byte
 * stream in binary messages, then multistream-select + Noise + Yamux as over TCP,
 * §Stream Multiplexing, §Authentication): our node built with `layers/Node.ts` `make`
 * from `WebSocket.make()` + Noise + Yamux against a real js-libp2p v3 node with
 * `@libp2p/websockets` in a separate process (spec-tests/interop/harness), over
 * loopback `/ws`, both directions: ping (ping/ping.md), identify (identify/README.md)
 * with js's signed peer record, echo streams through yamux, and hang-up from either
 * side (our closeWrite / scope close is a WebSocket Close that js reads as a clean
 * close).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Result, Stream } from "effect"
import * as Nodes from "../../layers/Node.ts"
import type { StreamHandler } from "../../src/connection/Registrar.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Identify from "../../src/protocols/identify/Identify.ts"
import * as Ping from "../../src/protocols/ping/Ping.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as WebSocket from "../../src/transport/WebSocket.ts"
import { bare, bareText, ma } from "../support/multiaddr.ts"
import { buildNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const ECHO = "/echo/1.0.0"
const WS_LISTEN = "/ip4/127.0.0.1/tcp/0/ws"

const peerOf = (js: JsPeer.JsPeer): PeerId.PeerId => Result.getOrThrow(PeerId.fromString(js.peerId))

/** Our node: WebSocket transport only, Noise, Yamux, identify + ping, listening on 127.0.0.1 /ws. */
const wsNode = Effect.gen(function*() {
  const noise = yield* Noise.make()
  const layer = Nodes.layer({
    transports: [WebSocket.make()],
    security: [noise],
    muxers: [Yamux.yamux],
    listen: [ma(WS_LISTEN)]
  })
  return yield* buildNode(layer)
})

const jsWs = () => JsPeer.start({ transports: ["websockets"], listen: [WS_LISTEN] })

/** Echo handler: writes back every batch until EOF, then half-closes. */
const echoHandler: StreamHandler = (stream) =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* stream.read
      if (Duplex.isEOF(chunks)) break
      yield* stream.write(chunks)
    }
    yield* stream.closeWrite
  })

/** Wait (polling) until `check` holds; dies with `what` after `timeoutMs`. */
const eventually = (what: string, check: () => boolean, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    const until = performance.now() + timeoutMs
    while (!check()) {
      if (performance.now() > until) return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

describe("interop with js-libp2p over WebSockets (@libp2p/websockets, separate process)", () => {
  it.live(
    "websockets spec + ping spec + identify spec: we dial js's /ws address, ping 3 times and read js's identify",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([jsWs(), wsNode], { concurrency: 2 })
        expect(js.addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//)
        const jsId = peerOf(js)
        const conn = yield* ours.host.dial(ma(js.addr))
        expect(PeerId.equals(conn.remotePeer, jsId)).toBe(true)
        expect(conn.direction).toBe("outbound")
        expect(conn.security).toBe("/noise")
        expect(conn.muxer).toBe("/yamux/1.0.0")
        expect(Multiaddr.toString(conn.remoteAddr)).toBe(bareText(js.addr))

        const rtts = yield* ours.ping.ping(jsId, { count: 3 })
        expect(rtts).toHaveLength(3)
        for (const rtt of rtts) expect(rtt).toBeGreaterThan(0)

        const id = yield* ours.identify.identify(conn)
        expect(PeerId.equals(id.peerId, jsId)).toBe(true)
        expect(id.agentVersion?.startsWith("js-libp2p/")).toBe(true)
        expect(id.protocols).toContain(Ping.PROTOCOL)
        expect(id.protocols).toContain(Identify.PROTOCOL)
        expect(id.listenAddrs.map(Multiaddr.toString)).toContain(bareText(js.addr))
        expect(id.signedPeerRecord?.addrs.map(Multiaddr.toString)).toEqual(js.addrs.map(bareText))
        // js saw us at the WebSocket address we dialed from
        expect(id.observedAddr).toBeDefined()
        expect(bare(id.observedAddr!)).toBe(Multiaddr.toString(conn.localAddr))

        // js sees one inbound WebSocket connection from us
        const jsConns = yield* js.connections
        const fromUs = jsConns.connections.filter((c) => c.peerId === PeerId.toString(ours.host.peerId))
        expect(fromUs.map((c) => [c.direction, c.encryption, c.multiplexer])).toEqual([
          ["inbound", "/noise", "/yamux/1.0.0"]
        ])
        expect(bareText(fromUs[0]!.remoteAddr)).toMatch(/\/tcp\/\d+\/ws$/)
        const errors = (yield* js.eventLog).filter((e) => e.event === "identify:error" || e.event === "handler:error")
        expect(errors).toEqual([])
      }),
    60_000
  )

  it.live(
    "websockets spec + ping spec + identify spec, RFC 0003: js dials our /ws listener, pings 3 times and accepts our signed peer record",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([jsWs(), wsNode], { concurrency: 2 })
        expect(Multiaddr.toString(ours.addr)).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/p2p\//)
        const ourId = PeerId.toString(ours.host.peerId)
        const jsId = peerOf(js)
        const dialed = yield* js.dial(Multiaddr.toString(ours.addr))
        expect([dialed.peerId, dialed.direction, dialed.encryption, dialed.multiplexer]).toEqual([
          ourId,
          "outbound",
          "/noise",
          "/yamux/1.0.0"
        ])
        expect(bareText(dialed.remoteAddr)).toBe(bare(ours.addr))
        yield* eventually("our side registers the inbound connection", () => ours.host.connections(jsId).length === 1)
        const conn = ours.host.connections(jsId)[0]!
        expect(conn.direction).toBe("inbound")
        expect(Multiaddr.toString(conn.remoteAddr)).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws$/)

        const pinged = yield* js.ping({ peerId: ourId }, { count: 3 })
        expect(pinged.rtts).toHaveLength(3)

        const id = yield* js.identify(ourId)
        expect(id.agentVersion).toBe(Identify.AGENT_VERSION)
        expect(id.listenAddrs).toEqual(ours.host.addrs().map(bare))
        expect(id.peerRecordError).toBeNull()
        expect(id.peerRecordVerified).toBe(true)
        expect(id.peerRecord?.addrs).toEqual(ours.host.addrs().map(bare))
        expect(id.observedAddr).toBe(Multiaddr.toString(conn.remoteAddr))

        const back = yield* ours.identify.identify(conn)
        expect(back.agentVersion?.startsWith("js-libp2p/")).toBe(true)
        expect(back.observedAddr).toBeDefined()
        expect(bare(back.observedAddr!)).toBe(bare(ours.addr))
      }),
    60_000
  )

  it.live(
    "yamux over WebSockets: 8 concurrent 512 KiB echo streams each way (js → our handler, ours → js's handler)",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([jsWs(), wsNode], { concurrency: 2 })
        yield* ours.registrar.handle(ECHO, echoHandler)
        const jsId = peerOf(js)
        yield* ours.host.dial(ma(js.addr))
        const r = yield* js.echo({ peerId: PeerId.toString(ours.host.peerId) }, { bytes: 512 * 1024, streams: 8 })
        expect([r.streams, r.bytes]).toEqual([8, 8 * 512 * 1024])
        const payload = new Uint8Array(512 * 1024).map((_, i) => (i * 7) & 0xff)
        const backs = yield* Effect.all(
          Array.from({ length: 8 }, () =>
            Effect.scoped(Effect.gen(function*() {
              const stream = yield* ours.host.newStream(jsId, [ECHO])
              const reader = yield* Effect.forkChild(Duplex.readAll(stream, payload.length))
              for (let i = 0; i < payload.length; i += 64 * 1024) {
                yield* stream.write([payload.subarray(i, i + 64 * 1024)])
              }
              yield* stream.closeWrite
              return yield* Fiber.join(reader)
            }))),
          { concurrency: "unbounded" }
        )
        for (const back of backs) expect(Buffer.compare(back, payload)).toBe(0)
        expect(ours.host.connections(jsId)).toHaveLength(1)
      }),
    60_000
  )

  it.live(
    "hang-up over WebSockets from either side closes the connection on both (WebSocket Close both ways), and they reconnect",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([jsWs(), wsNode], { concurrency: 2 })
        const jsId = peerOf(js)
        const ourId = PeerId.toString(ours.host.peerId)
        const events = yield* ours.host.subscribe

        // js hangs up: our side sees the connection close
        yield* ours.host.dial(ma(js.addr))
        yield* js.hangup(ourId)
        yield* eventually("our side drops the connection js hung up", () => ours.host.connections(jsId).length === 0)
        yield* events.pipe(
          Stream.filter((e) => e._tag === "ConnectionClose" && PeerId.equals(e.connection.remotePeer, jsId)),
          Stream.runHead
        )

        // we hang up: js sees the peer disconnect
        const mark = yield* js.eventCount
        yield* js.dial(Multiaddr.toString(ours.addr))
        yield* eventually("js's connection arrives", () => ours.host.connections(jsId).length === 1)
        yield* ours.host.hangUp(jsId)
        yield* js.awaitEvent(JsPeer.isEvent("peer:disconnect", { peerId: ourId }), {
          after: mark,
          timeout: "10 seconds"
        })
        const left = yield* js.connections
        expect(left.count).toBe(0)

        // and both can connect again
        const again = yield* ours.host.dial(ma(js.addr))
        expect(PeerId.equals(again.remotePeer, jsId)).toBe(true)
        const rtts = yield* ours.ping.ping(jsId, { count: 1 })
        expect(rtts).toHaveLength(1)
      }),
    60_000
  )
})
