/**
 * Full-process interop: our node (layers/Node.ts Default preset: TCP + multistream-select +
 * Noise + Yamux + identify + ping) against a real js-libp2p v3 node in a separate process
 * (spec-tests/interop/harness), over loopback TCP, in both directions (ARCHITECTURE.md §6).
 *
 * Specs exercised: ping (libp2p/specs ping/ping.md), identify and identify/push
 * (identify/README.md), RFC 0003 signed peer records (routing-records), connections
 * §Upgrading connections and §Protocol Negotiation, multistream-select
 * (connections/README.md, multistream-select), yamux (concurrent streams, flow control
 * beyond the initial window), noise (§The libp2p Handshake Payload: the peer id is
 * authenticated).
 *
 * The directional tests (we dial js, js dials us) get a fresh pair each; the others share
 * one js process and one node of ours (one connection between them) through `layer(...)`.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Scope, Stream } from "effect"
import * as crypto from "node:crypto"
import type * as Connection from "../../src/connection/Connection.ts"
import type { StreamHandler } from "../../src/connection/Registrar.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import type { DialTarget } from "../../src/host/Host.ts"
import * as Identify from "../../src/protocols/identify/Identify.ts"
import * as Ping from "../../src/protocols/ping/Ping.ts"
import { bare, bareText, ma } from "../support/multiaddr.ts"
import { tcpNode, type TestNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const ECHO = "/echo/1.0.0"
const MiB = 1024 * 1024

/** A multiaddr as text without its /p2p/ suffix. */
const peerOf = (js: JsPeer.JsPeer): PeerId.PeerId => {
  const r = PeerId.fromString(js.peerId)
  if (r._tag === "Failure") throw new Error(`bad js peer id ${js.peerId}`)
  return r.success
}

/** Echo handler for our node: writes back every batch until EOF, then half-closes. Counts concurrent streams. */
const makeEcho = () => {
  const stats = { active: 0, maxActive: 0, streams: 0, bytes: 0 }
  const handler: StreamHandler = (stream) =>
    Effect.gen(function*() {
      stats.streams++
      stats.maxActive = Math.max(stats.maxActive, ++stats.active)
      while (true) {
        const chunks = yield* stream.read
        if (Duplex.isEOF(chunks)) break
        stats.bytes += Duplex.byteLength(chunks)
        yield* stream.write(chunks)
      }
      yield* stream.closeWrite
    }).pipe(Effect.ensuring(Effect.sync(() => void stats.active--)))
  return { stats, handler }
}

/**
 * Our client side of an echo stream: open `protocol` to `target`, write `payload` from a forked
 * fiber in 64 KiB chunks (then half-close) while reading everything back.
 * `afterFirst` runs once the first chunk came back (the stream is open end to end).
 */
const echoFromUs = (
  ours: TestNode,
  target: DialTarget,
  payload: Uint8Array,
  options: { readonly afterFirst?: Effect.Effect<void>; readonly lazy?: boolean } = {}
) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* ours.host.newStream(target, [ECHO], options.lazy === false ? { lazy: false } : {})
    const chunk = 64 * 1024
    const first = payload.subarray(0, Math.min(chunk, payload.length))
    yield* stream.write([first])
    const received: Array<Uint8Array> = []
    let got = 0
    // read until the first chunk is back
    while (got < first.length) {
      const chunks = yield* stream.read
      if (Duplex.isEOF(chunks)) break
      for (const c of chunks) received.push(c)
      got += Duplex.byteLength(chunks)
    }
    if (options.afterFirst !== undefined) yield* options.afterFirst
    const writer = yield* Effect.forkScoped(Effect.gen(function*() {
      for (let i = first.length; i < payload.length; i += chunk) yield* stream.write([payload.subarray(i, i + chunk)])
      yield* stream.closeWrite
    }))
    const rest = yield* Duplex.readAll(stream, payload.length - got)
    yield* Fiber.join(writer)
    received.push(rest)
    return { stream, back: Duplex.concat(received) }
  }))

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0

/** Wait (polling our in-memory state) until `check` holds; fails with `what` after `timeoutMs`. */
const eventually = (what: string, check: () => boolean, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    const until = performance.now() + timeoutMs
    while (!check()) {
      if (performance.now() > until) return yield* Effect.die(new Error(`timed out waiting for: ${what}`))
      yield* Effect.sleep("10 millis")
    }
  })

// ------------------------------------------------------------------ directional tests

describe("interop with js-libp2p (separate process, TCP): each side dials", () => {
  it.live(
    "ping spec + identify spec §identify: we dial js, ping 3 round trips and read js's identify (signed peer record verified)",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([JsPeer.start(), tcpNode()], { concurrency: 2 })
        const jsId = peerOf(js)
        const conn = yield* ours.host.dial(ma(js.addr))
        expect(PeerId.equals(conn.remotePeer, jsId)).toBe(true)
        expect(conn.direction).toBe("outbound")
        expect(conn.security).toBe("/noise")
        expect(conn.muxer).toBe("/yamux/1.0.0")

        const rtts = yield* ours.ping.ping(jsId, { count: 3 })
        expect(rtts).toHaveLength(3)
        for (const rtt of rtts) {
          expect(rtt).toBeGreaterThan(0)
          expect(rtt).toBeLessThan(5000)
        }

        const id = yield* ours.identify.identify(conn)
        expect(PeerId.equals(id.peerId, jsId)).toBe(true)
        expect(id.agentVersion?.startsWith("js-libp2p/")).toBe(true)
        expect(id.protocolVersion).toBe("ipfs/0.1.0")
        expect(id.protocols).toContain(Ping.PROTOCOL)
        expect(id.protocols).toContain(Identify.PROTOCOL)
        expect(id.protocols).toContain(Identify.PUSH_PROTOCOL)
        expect(id.protocols).toContain(ECHO)
        expect(id.listenAddrs.length).toBeGreaterThan(0)
        expect(id.listenAddrs.map(Multiaddr.toString)).toContain(bareText(js.addr))
        // the public key in the message is the key of the peer id Noise authenticated
        expect(id.publicKey).toBeDefined()
        expect(PeerId.equals(PeerId.fromPublicKey(id.publicKey!), jsId)).toBe(true)
        // RFC 0003: the record verified (our interpret only keeps a record that opened with
        // js's key under the libp2p-peer-record domain) and certifies js's listen address
        expect(id.signedPeerRecord).toBeDefined()
        expect(id.signedPeerRecord!.seq).toBeGreaterThan(0n)
        expect(id.signedPeerRecord!.addrs.map(Multiaddr.toString)).toEqual(js.addrs.map(bareText))
        // observedAddr: js saw us at the address we dialed from (js appends /p2p/<our id>, which
        // go-libp2p does not; the spec only asks for the observed address)
        expect(id.observedAddr).toBeDefined()
        expect(bare(id.observedAddr!)).toBe(Multiaddr.toString(conn.localAddr))
        expect(Multiaddr.getPeerId(id.observedAddr!) ?? PeerId.toString(ours.host.peerId)).toBe(
          PeerId.toString(ours.host.peerId)
        )
        // what identify learned went to our peer store
        const stored = ours.peerstore.get(jsId)
        expect(stored?.protocols).toContain(ECHO)
        expect(stored?.agentVersion).toBe(id.agentVersion)
        expect(stored?.recordSeq).toBe(id.signedPeerRecord!.seq)
        expect(stored?.addrs.map(Multiaddr.toString)).toContain(bareText(js.addr))
        // js sees exactly one inbound connection from us
        const jsConns = yield* js.connections
        expect(
          jsConns.connections.filter((c) => c.peerId === PeerId.toString(ours.host.peerId)).map((c) => c.direction)
        )
          .toEqual(["inbound"])
      })
  )

  it.live(
    "ping spec + identify spec §identify, RFC 0003: js dials us, pings 3 times, and accepts our signed peer record",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([JsPeer.start(), tcpNode()], { concurrency: 2 })
        const jsId = peerOf(js)
        const ourId = PeerId.toString(ours.host.peerId)
        const dialed = yield* js.dial(Multiaddr.toString(ours.addr))
        expect(dialed.peerId).toBe(ourId)
        expect(dialed.direction).toBe("outbound")
        expect(dialed.encryption).toBe("/noise")
        expect(dialed.multiplexer).toBe("/yamux/1.0.0")
        yield* eventually("our side registers the inbound connection", () => ours.host.connections(jsId).length === 1)
        const conn = ours.host.connections(jsId)[0]!
        expect(conn.direction).toBe("inbound")

        const pinged = yield* js.ping({ peerId: ourId }, { count: 3 })
        expect(pinged.rtts).toHaveLength(3)
        for (const rtt of pinged.rtts) {
          expect(rtt).toBeGreaterThanOrEqual(0)
          expect(rtt).toBeLessThan(5000)
        }

        const id = yield* js.identify(ourId)
        expect(id.peerId).toBe(ourId)
        expect(id.agentVersion).toBe(Identify.AGENT_VERSION)
        expect(id.agentVersion).toBe("effect-libp2p/0.1.0")
        expect(id.protocolVersion).toBe("ipfs/0.1.0")
        expect([...id.protocols].sort()).toEqual([...ours.registrar.protocols()].sort())
        expect(id.protocols).toContain(Ping.PROTOCOL)
        expect(id.protocols).toContain(Identify.PROTOCOL)
        expect(id.protocols).toContain(Identify.PUSH_PROTOCOL)
        const ourListen = ours.host.addrs().map(bare)
        expect(id.listenAddrs).toEqual(ourListen)
        // js verified the envelope before accepting the message, and verifies it again from its store
        expect(id.signedPeerRecord).not.toBeNull()
        expect(id.signedPeerRecord!.addrs).toEqual(ourListen)
        expect(id.peerRecordError).toBeNull()
        expect(id.peerRecordVerified).toBe(true)
        expect(id.peerRecord?.peerId).toBe(ourId)
        expect(id.peerRecord?.addrs).toEqual(ourListen)
        expect(id.peerRecord?.seq).toBe(id.signedPeerRecord!.seq)
        // we tell js the address we saw it dial from
        expect(id.observedAddr).toBe(Multiaddr.toString(conn.remoteAddr))
        expect(bareText(dialed.remoteAddr)).toBe(bare(ours.addr))

        // and our side identified js on its inbound connection by itself: js observed us at our listen address
        const back = yield* ours.identify.identify(conn)
        expect(back.agentVersion?.startsWith("js-libp2p/")).toBe(true)
        expect(back.observedAddr).toBeDefined()
        expect(bare(back.observedAddr!)).toBe(bare(ours.addr))
        // a second identify on the same connection reuses the result (js resets a second identify stream)
        const again = yield* ours.identify.identify(conn)
        expect(again).toBe(back)
        const errors = (yield* js.eventLog).filter((e) => e.event === "identify:error" || e.event === "handler:error")
        expect(errors).toEqual([])
      })
  )
})

// ------------------------------------------------------------------ one shared pair

class Pair extends Context.Service<Pair, {
  readonly js: JsPeer.JsPeer
  readonly ours: TestNode
  readonly echo: ReturnType<typeof makeEcho>["stats"]
}>()("spec-tests/interop/node-js/Pair") {}

const PairLayer = Layer.effect(
  Pair,
  Effect.gen(function*() {
    const [js, ours] = yield* Effect.all([JsPeer.start(), tcpNode()], { concurrency: 2 })
    const echo = makeEcho()
    yield* ours.registrar.handle(ECHO, echo.handler)
    // one connection for the whole block, opened by us
    yield* ours.host.dial(ma(js.addr))
    return { js, ours, echo: echo.stats }
  })
)

layer(PairLayer, { excludeTestServices: true, timeout: "30 seconds" })(
  "interop with js-libp2p: one connection, many streams",
  (it) => {
    it.effect("yamux §Opening a stream: js runs 32 concurrent echo streams to our handler on one connection", () =>
      Effect.gen(function*() {
        const { echo, js, ours } = yield* Pair
        const jsId = peerOf(js)
        const before = echo.streams
        echo.maxActive = 0
        const r = yield* js.echo({ peerId: PeerId.toString(ours.host.peerId) }, { bytes: 256 * 1024, streams: 32 })
        expect(r.streams).toBe(32)
        expect(r.bytes).toBe(32 * 256 * 1024)
        expect(echo.streams - before).toBe(32)
        expect(echo.maxActive).toBeGreaterThan(1)
        expect(ours.host.connections(jsId)).toHaveLength(1)
        const jsConns = yield* js.connections
        expect(jsConns.count).toBe(1)
        process.stderr.write(
          `[interop] js → ours: 32 concurrent echo streams, up to ${echo.maxActive} handlers at once\n`
        )
      }))

    it.effect("yamux §Opening a stream: we open 32 concurrent echo streams to js on one connection", () =>
      Effect.gen(function*() {
        const { js, ours } = yield* Pair
        const jsId = peerOf(js)
        const conn = ours.host.connections(jsId)[0]!
        const allOpen = yield* Deferred.make<void>()
        let open = 0
        let peakStreams = 0
        const payloads = Array.from({ length: 32 }, () => new Uint8Array(crypto.randomBytes(200 * 1024)))
        const results = yield* Effect.forEach(
          payloads,
          (payload) =>
            echoFromUs(ours, jsId, payload, {
              // every stream waits until all 32 have echoed their first chunk: they are truly concurrent
              afterFirst: Effect.gen(function*() {
                if (++open === 32) {
                  peakStreams = conn.streamCount()
                  yield* Deferred.succeed(allOpen, undefined)
                }
                yield* Deferred.await(allOpen)
              })
            }),
          { concurrency: "unbounded" }
        ).pipe(Effect.timeout("20 seconds"))
        expect(results).toHaveLength(32)
        results.forEach((r, i) => expect(sameBytes(r.back, payloads[i]!)).toBe(true))
        expect(peakStreams).toBeGreaterThanOrEqual(32)
        expect(ours.host.connections()).toHaveLength(1)
        expect(ours.host.connections(jsId)[0]).toBe(conn)
      }))

    it.effect("yamux §Flow Control: 16 MiB echoed over one stream, js → our handler", () =>
      Effect.gen(function*() {
        const { echo, js, ours } = yield* Pair
        const before = echo.bytes
        const r = yield* js.echo({ peerId: PeerId.toString(ours.host.peerId) }, { bytes: 16 * MiB, streams: 1 })
        expect(r.bytes).toBe(16 * MiB)
        expect(echo.bytes - before).toBe(16 * MiB)
        process.stderr.write(`[interop] js → ours 16 MiB echo: ${r.ms.toFixed(0)} ms\n`)
      }))

    it.effect("yamux §Flow Control: 16 MiB echoed over one stream, our client → js's /echo/1.0.0", () =>
      Effect.gen(function*() {
        const { js, ours } = yield* Pair
        const payload = new Uint8Array(crypto.randomBytes(16 * MiB))
        const t0 = performance.now()
        const { back, stream } = yield* echoFromUs(ours, peerOf(js), payload)
        const ms = performance.now() - t0
        expect(stream.protocol).toBe(ECHO)
        expect(back.length).toBe(payload.length)
        expect(sameBytes(back, payload)).toBe(true)
        expect(ours.host.connections()).toHaveLength(1)
        process.stderr.write(`[interop] ours → js 16 MiB echo: ${ms.toFixed(0)} ms\n`)
      }))

    it.effect("identify spec §identify/push: registering a protocol on our node pushes it to js; removing it pushes again [identify:protocols:1]", () =>
      Effect.gen(function*() {
        const { js, ours } = yield* Pair
        const ourId = PeerId.toString(ours.host.peerId)
        const proto = "/effect-libp2p/interop-push/1.0.0"
        const hasProto = (e: JsPeer.JsPeerEvent) =>
          e.event === "peer:identify" && e["peerId"] === ourId && Array.isArray(e["protocols"]) &&
          e["protocols"].includes(proto)
        const lacksProto = (e: JsPeer.JsPeerEvent) =>
          e.event === "peer:identify" && e["peerId"] === ourId && Array.isArray(e["protocols"]) &&
          !e["protocols"].includes(proto) && e["protocols"].includes(ECHO)
        const mark = yield* js.eventCount
        expect((yield* js.eventLog).some(hasProto)).toBe(false)
        const scope = yield* Scope.make()
        yield* ours.registrar.handle(proto, () => Effect.void).pipe(Scope.provide(scope))
        const pushed = yield* js.awaitEvent(hasProto, { after: mark, timeout: "10 seconds" })
        // a push carries a fresh signed peer record, which js verified before dispatching the event
        expect(pushed["signedPeerRecord"]).not.toBeNull()
        expect((yield* js.identify(ourId)).protocols).toContain(proto)
        const mark2 = yield* js.eventCount
        yield* Scope.close(scope, Exit.void)
        yield* js.awaitEvent(lacksProto, { after: mark2, timeout: "10 seconds" })
        const now = yield* js.identify(ourId)
        expect(now.protocols).not.toContain(proto)
        expect(now.peerRecordVerified).toBe(true)
      }))

    it.effect("identify spec §identify/push: a protocol js starts handling reaches our peer store by push, and its removal too [identify:identifypush:1]", () =>
      Effect.gen(function*() {
        const { js, ours } = yield* Pair
        const jsId = peerOf(js)
        const proto = "/js-libp2p/interop-push/1.0.0"
        const sub = yield* ours.identify.subscribe
        expect(ours.peerstore.get(jsId)?.protocols).not.toContain(proto)
        // js pushes by itself when its protocols change (debounced)
        yield* js.handle(proto, "sink")
        const got = yield* sub.pipe(
          Stream.filter((r) => PeerId.equals(r.peerId, jsId) && r.protocols.includes(proto)),
          Stream.runHead,
          Effect.timeout("10 seconds")
        )
        expect(Option.isSome(got)).toBe(true)
        expect(ours.peerstore.get(jsId)?.protocols).toContain(proto)
        // js's push has a signed peer record that we verified
        const pushed = Option.getOrThrow(got)
        expect(pushed.signedPeerRecord?.addrs.map(Multiaddr.toString)).toEqual(js.addrs.map(bareText))
        // the new protocol is usable from our side right away
        const stream = yield* Effect.scoped(
          Effect.map(ours.host.newStream(jsId, [proto], { lazy: false }), (s) => s.protocol)
        )
        expect(stream).toBe(proto)
        // explicit push after unhandle
        yield* js.unhandle(proto)
        yield* js.push
        yield* eventually(
          "our peer store drops the protocol js no longer handles",
          () => !(ours.peerstore.get(jsId)?.protocols ?? [proto]).includes(proto)
        )
        expect(ours.peerstore.get(jsId)?.protocols).toContain(ECHO)
      }))

    it.effect("multistream-select: js offers [unknown, /echo/1.0.0] and we agree on the second; none known is refused", () =>
      Effect.gen(function*() {
        const { js, ours } = yield* Pair
        const target = { peerId: PeerId.toString(ours.host.peerId) }
        expect(yield* js.negotiate(target, ["/no/such/protocol/1.0.0", ECHO])).toBe(ECHO)
        expect(yield* js.negotiate(target, ["/no/such/1.0.0", "/nor/this/2.0.0", Ping.PROTOCOL])).toBe(Ping.PROTOCOL)
        // first choice wins when we support both
        expect(yield* js.negotiate(target, [Identify.PROTOCOL, ECHO])).toBe(Identify.PROTOCOL)
        const refused = yield* Effect.flip(js.negotiate(target, ["/no/such/1.0.0", "/nor/this/2.0.0"]))
        expect(refused.reason).toBe("CommandFailed")
        expect(refused.errorName).toBe("UnsupportedProtocolError")
        // and the other way round: we offer [unknown, echo] to js
        const ours2 = yield* Effect.scoped(Effect.map(
          ours.host.newStream(peerOf(js), ["/no/such/protocol/1.0.0", ECHO]),
          (s) => s.protocol
        ))
        expect(ours2).toBe(ECHO)
        const none = yield* Effect.flip(
          Effect.scoped(ours.host.newStream(peerOf(js), ["/no/such/1.0.0", "/nor/this/2.0.0"]))
        )
        expect(none._tag).toBe("ConnectionError")
        expect((none as Connection.ConnectionError).reason).toBe("Negotiation")
      }))

    it.effect("multistream-select (optimistic): js sends the protocol name with the first data; echo and ping work, an unknown protocol fails", () =>
      Effect.gen(function*() {
        const { echo, js, ours } = yield* Pair
        const target = { peerId: PeerId.toString(ours.host.peerId) }
        const before = echo.streams
        const r = yield* js.echo(target, { bytes: 100_000, streams: 4, negotiateFully: false })
        expect(r.bytes).toBe(400_000)
        expect(echo.streams - before).toBe(4)
        const p = yield* js.ping(target, { count: 3, mode: "stream", negotiateFully: false })
        expect(p.rtts).toHaveLength(3)
        for (const rtt of p.rtts) expect(rtt).toBeGreaterThan(0)
        const bad = yield* Effect.flip(
          js.echo(target, { bytes: 1000, protocol: "/no/such/1.0.0", negotiateFully: false })
        )
        expect(bad.reason).toBe("CommandFailed")
        // the connection survives all of it
        expect(ours.host.connections(peerOf(js))).toHaveLength(1)
        expect((yield* js.ping(target, { count: 1, mode: "stream" })).rtts).toHaveLength(1)
        // our own lazy select (the default for one protocol) and a full one both reach js's echo
        const lazy = yield* echoFromUs(ours, peerOf(js), new Uint8Array(crypto.randomBytes(1000)))
        expect(lazy.back.length).toBe(1000)
        const full = yield* echoFromUs(ours, peerOf(js), new Uint8Array(crypto.randomBytes(1000)), { lazy: false })
        expect(full.back.length).toBe(1000)
      }))

    // last in the block: it closes the shared connection (and leaves a new one open)
    it.effect("connections spec: a hang-up on either side closes the connection on both; the peers can reconnect", () =>
      Effect.gen(function*() {
        const { js, ours } = yield* Pair
        const jsId = peerOf(js)
        const ourId = PeerId.toString(ours.host.peerId)
        yield* ours.host.dial(ma(js.addr))
        const sub = yield* ours.host.subscribe
        // js hangs up: our host drops the connection and publishes PeerDisconnect
        yield* js.hangup(ourId)
        const gone = yield* sub.pipe(
          Stream.filter((e) => e._tag === "PeerDisconnect" && PeerId.equals(e.peerId, jsId)),
          Stream.runHead,
          Effect.timeout("10 seconds")
        )
        expect(Option.isSome(gone)).toBe(true)
        expect(ours.host.connections(jsId)).toHaveLength(0)
        // we dial again and work on the new connection
        const conn = yield* ours.host.dial(ma(js.addr))
        expect(yield* ours.ping.ping(jsId, { count: 2 })).toHaveLength(2)
        expect((yield* js.connections).count).toBe(1)
        // we hang up: js sees the peer go
        const mark = yield* js.eventCount
        yield* ours.host.hangUp(jsId)
        expect(conn.isClosed()).toBe(true)
        yield* js.awaitEvent(JsPeer.isEvent("peer:disconnect", { peerId: ourId }), {
          after: mark,
          timeout: "10 seconds"
        })
        expect((yield* js.connections).count).toBe(0)
        // js dials back and pings
        yield* js.dial(Multiaddr.toString(ours.addr))
        expect((yield* js.ping({ peerId: ourId }, { count: 2, mode: "stream" })).rtts).toHaveLength(2)
        yield* eventually("our side sees js's new connection", () => ours.host.connections(jsId).length === 1)
        expect(ours.host.connections(jsId)[0]!.direction).toBe("inbound")
      }))
  }
)
