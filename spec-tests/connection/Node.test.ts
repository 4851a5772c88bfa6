/**
 * Connection management through whole nodes (Host + Upgrader + Noise + Yamux
 * over the memory transport) under TestClock: trimming after the grace
 * period, the hard cap before the handshake, dial backoff through the Host,
 * resource limits on streams, and every reservation returned when the
 * connections end. (The behaviour follows go-libp2p's connmgr and resource
 * manager; no libp2p spec defines it.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as Nodes from "../../layers/Node.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { chain } from "../support/errors.ts"
import * as Events from "../support/events.ts"
import { ma } from "../support/multiaddr.ts"
import { memoryNode } from "../support/node.ts"

/** A node on the MemoryNetwork in context (no keep-alive), with its managers as `cm` and `rm`. */
const node = (options: Nodes.PresetOptions = {}) =>
  Effect.map(
    memoryNode({ yamux: { enableKeepAlive: false }, ...options }),
    (n) => ({ ...n, cm: n.connectionManager, rm: n.resourceManager })
  )

/** Let every fiber run as far as it can without time passing. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 10; i++) {
    yield* TestClock.adjust(0)
    yield* Effect.yieldNow
  }
})

const zero = { connectionsInbound: 0, connectionsOutbound: 0, streamsInbound: 0, streamsOutbound: 0, memory: 0 }

describe("connection management in a node (memory transport, TestClock)", () => {
  it.effect("connmgr: 6 peers connect to a node with high 4 / low 2 / grace 10 s; at the end of the grace period the 4 lowest-valued are trimmed, both ends see it", () =>
    Effect.gen(function*() {
      const hub = yield* node({
        connectionManager: { highWater: 4, lowWater: 2, gracePeriod: "10 seconds", silencePeriod: 0 }
      })
      const events = yield* Events.record(hub.cm.subscribe)
      const peers = yield* Effect.forEach(Array.from({ length: 6 }), () => node())
      // the hub values peers 1 and 4
      yield* hub.cm.tagPeer(peers[1]!.host.peerId, "useful", 10)
      yield* hub.cm.tagPeer(peers[4]!.host.peerId, "useful", 5)
      for (const p of peers) yield* p.ping.ping(hub.addr)
      yield* settle
      expect(hub.host.connections()).toHaveLength(6)
      yield* TestClock.adjust("9 seconds")
      yield* settle
      expect(hub.host.connections()).toHaveLength(6)
      yield* TestClock.adjust("1 second")
      yield* settle
      const kept = hub.host.connections().map((c) => PeerId.toString(c.remotePeer)).sort()
      expect(kept).toEqual([peers[1]!, peers[4]!].map((p) => PeerId.toString(p.host.peerId)).sort())
      const trimmed = (yield* events.drain).filter((e) => e._tag === "PeerTrimmed")
      expect(trimmed).toHaveLength(4)
      // the trimmed peers' own hosts saw the connection end
      for (const [i, p] of peers.entries()) expect(p.host.connections()).toHaveLength(i === 1 || i === 4 ? 1 : 0)
      // and the kept ones still work
      expect(yield* peers[1]!.ping.ping(hub.host.peerId)).toHaveLength(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("hard cap: with maxConnections 3 the 4th and 5th peers are refused before the handshake; a refused peer backs off, and a forced dial gets in once a slot is free", () =>
    Effect.gen(function*() {
      const hub = yield* node({ connectionManager: { maxConnections: 3 } })
      const peers = yield* Effect.forEach(Array.from({ length: 5 }), () => node())
      const results = yield* Effect.forEach(peers, (p) => Effect.result(p.host.dial(hub.addr)))
      expect(results.map((r) => r._tag)).toEqual(["Success", "Success", "Success", "Failure", "Failure"])
      for (const r of results.slice(3)) {
        // the hub reset the raw connection: the dialer's upgrade failed
        expect(r._tag === "Failure" && chain(r.failure).slice(0, 2)).toEqual(["DialError", "UpgradeError"])
      }
      yield* settle
      expect(hub.host.connections()).toHaveLength(3)
      expect(hub.cm.stats().slots).toBe(3)
      // the refused peer backs off the hub's address
      const again = yield* Effect.flip(peers[3]!.host.dial(hub.addr))
      expect(chain(again)).toEqual(["DialError", "Backoff"])
      expect(again.reason._tag === "Backoff" && again.reason.until).toBeGreaterThan(0)
      // a slot frees up; the forced dial goes through the backoff
      yield* peers[0]!.host.hangUp(hub.host.peerId)
      yield* settle
      expect(hub.cm.stats().slots).toBe(2)
      const conn = yield* peers[3]!.host.dial(hub.addr, { force: true })
      expect(PeerId.equals(conn.remotePeer, hub.host.peerId)).toBe(true)
      expect(peers[3]!.host.dialer.backoffs()).toEqual([])
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("dial backoff through the Host: a dead address is Refused, then Backoff until its delay passed, then tried again", () =>
    Effect.gen(function*() {
      const a = yield* node()
      const dead = ma("/memory/424242")
      expect(chain(yield* Effect.flip(a.host.dial(dead)))).toEqual(["DialError", "TransportError", "Refused"])
      const backoff = yield* Effect.flip(a.host.dial(dead))
      expect(chain(backoff)).toEqual(["DialError", "Backoff"])
      yield* TestClock.adjust((backoff.reason._tag === "Backoff" ? backoff.reason.until : 0) + 1)
      expect(chain(yield* Effect.flip(a.host.dial(dead)))).toEqual(["DialError", "TransportError", "Refused"])
      expect(a.host.dialer.backoffs()[0]?.failures).toBe(2)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("resource manager: a stream past the connection's inbound limit is reset; one past the outbound limit is refused with LimitExceeded; all released afterwards", () =>
    Effect.gen(function*() {
      const server = yield* node({ resources: { connection: { streamsInbound: 2 } } })
      const client = yield* node({ resources: { connection: { streamsOutbound: 3 } } })
      // a protocol whose handler holds the stream until the client closes it
      yield* server.registrar.handle("/hold/1.0.0", (stream) => Effect.asVoid(Duplex.readAll(stream, 1024)), {
        maxInboundStreams: 100
      })
      const conn = yield* client.host.dial(server.addr)
      yield* settle // identify (both ways) is over: its streams are released
      expect(conn.streamCount()).toBe(0)
      // the streams live in this inner scope
      yield* Effect.scoped(Effect.gen(function*() {
        const streams = yield* Effect.forEach([1, 2, 3], () => conn.newStream(["/hold/1.0.0"]))
        yield* Effect.forEach(streams, (s) => s.write([Uint8Array.of(1)]))
        yield* settle
        // two are held by the server; the third was reset
        const third = yield* Effect.flip(streams[2]!.read)
        expect(third.reason).toBe("Reset")
        expect(server.rm.stats().protocols.get("/hold/1.0.0")?.streamsInbound).toBe(2)
        // the client's own outbound limit: 3 open (the reset one is still in its scope here)
        const refused = yield* Effect.flip(conn.newStream(["/hold/1.0.0"]))
        expect([
          refused.reason,
          refused.cause?._tag === "LimitExceeded" && refused.cause.scope,
          refused.cause?._tag === "LimitExceeded" && refused.cause.resource
        ]).toEqual([
          "LimitExceeded",
          "connection",
          "streamsOutbound"
        ])
      }))
      yield* settle
      // every stream reservation went back, on both sides
      for (const rm of [server.rm, client.rm]) {
        const s = rm.stats()
        expect([s.system.streamsInbound, s.system.streamsOutbound, s.transient.streamsInbound, s.streams]).toEqual([
          0,
          0,
          0,
          0
        ])
        expect(s.protocols.size).toBe(0)
      }
      // the connection still works
      expect(yield* client.ping.ping(server.host.peerId)).toHaveLength(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("every reservation returns to zero when the connections end", () =>
    Effect.gen(function*() {
      const server = yield* node()
      const client = yield* node()
      yield* client.ping.ping(server.addr, { count: 3 })
      yield* settle
      const during = server.rm.stats()
      expect(during.system.connectionsInbound).toBe(1)
      expect(during.peers.get(PeerId.toString(client.host.peerId))?.connectionsInbound).toBe(1)
      expect(during.system.memory).toBeGreaterThan(0)
      yield* client.host.hangUp(server.host.peerId)
      yield* settle
      for (const rm of [server.rm, client.rm]) {
        const s = rm.stats()
        expect([s.system, s.transient, s.peers.size, s.protocols.size, s.connections, s.streams]).toEqual([
          zero,
          zero,
          0,
          0,
          0,
          0
        ])
      }
      expect([server.cm.stats().slots, client.cm.stats().slots, server.cm.stats().open]).toEqual([0, 0, 0])
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
