/**
 * The ResourceManager's scopes and limits (go-libp2p's resource manager
 * model; the connections spec only asks that a node bound what peers can make
 * it hold): connections per direction in the system, transient and peer
 * scopes; streams per connection, peer and protocol; memory; every
 * reservation released by its scope closing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import * as ResourceManager from "../../src/connection/ResourceManager.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { fakePeer } from "../support/connection.ts"

const zero: ResourceManager.Usage = {
  connectionsInbound: 0,
  connectionsOutbound: 0,
  streamsInbound: 0,
  streamsOutbound: 0,
  memory: 0
}

const inScope = <A, E>(scope: Scope.Scope, effect: Effect.Effect<A, E, Scope.Scope>): Effect.Effect<A, E> =>
  Scope.provide(effect, scope)

describe("resource manager: connections", () => {
  it.effect("system and transient limits per direction; LimitExceeded names the scope and resource; closing frees", () =>
    Effect.gen(function*() {
      const rm = ResourceManager.make({
        system: { connectionsInbound: 3, connections: 4 },
        transient: { connectionsInbound: 2 }
      })
      const s1 = yield* Scope.make()
      yield* inScope(s1, rm.openConnection("inbound"))
      yield* inScope(s1, rm.openConnection("inbound"))
      const transient = yield* Effect.flip(inScope(s1, rm.openConnection("inbound")))
      expect([transient._tag, transient.scope, transient.resource, transient.limit]).toEqual([
        "LimitExceeded",
        "transient",
        "connectionsInbound",
        2
      ])
      const s3 = yield* Scope.make()
      const peer = (yield* fakePeer).peerId
      const cs = yield* Scope.make()
      const c = yield* inScope(cs, rm.openConnection("outbound"))
      yield* c.setPeer(peer)
      expect(rm.stats().transient.connectionsOutbound).toBe(0)
      expect(rm.stats().peers.get(PeerId.toString(peer))?.connectionsOutbound).toBe(1)
      // system: 2 inbound + 1 outbound; one more inbound fits (3), then the total (4) is reached
      yield* Scope.close(s1, Exit.void)
      for (let i = 0; i < 3; i++) {
        const conn = yield* inScope(s3, rm.openConnection("inbound"))
        yield* conn.setPeer((yield* fakePeer).peerId) // out of the transient scope
      }
      expect((yield* Effect.flip(inScope(s3, rm.openConnection("inbound")))).scope).toBe("system")
      const total = yield* Effect.flip(inScope(s3, rm.openConnection("outbound")))
      expect([total.scope, total.resource]).toEqual(["system", "connections"])
      yield* Scope.close(s3, Exit.void)
      yield* Scope.close(cs, Exit.void)
      const stats = rm.stats()
      expect([stats.system, stats.transient, stats.peers.size, stats.connections]).toEqual([zero, zero, 0, 0])
    }))

  it.effect("per-peer connection limits apply when the peer is named; a refused move leaves the connection transient", () =>
    Effect.gen(function*() {
      const peer = (yield* fakePeer).peerId
      const other = (yield* fakePeer).peerId
      const rm = ResourceManager.make({
        peer: { connectionsInbound: 1 },
        peers: { [PeerId.toString(other)]: { connectionsInbound: 2 } }
      })
      const a = yield* rm.openConnection("inbound")
      yield* a.setPeer(peer)
      const b = yield* rm.openConnection("inbound")
      const err = yield* Effect.flip(b.setPeer(peer))
      expect([err.scope, err.resource, err.limit]).toEqual(["peer", "connectionsInbound", 1])
      expect(b.peer()).toBeUndefined()
      expect(rm.stats().transient.connectionsInbound).toBe(1)
      // the override for `other` allows two
      yield* b.setPeer(other)
      const c = yield* rm.openConnection("inbound")
      yield* c.setPeer(other)
      // setPeer again with the same peer is a no-op; another peer is refused
      yield* c.setPeer(other)
      expect((yield* Effect.flip(c.setPeer(peer))).scope).toBe("connection")
      expect(rm.stats().peers.get(PeerId.toString(other))?.connectionsInbound).toBe(2)
    }))
})

describe("resource manager: streams and memory", () => {
  it.effect("stream limits per connection and per protocol; transient until the protocol is known", () =>
    Effect.gen(function*() {
      const rm = ResourceManager.make({
        connection: { streamsInbound: 2, streamsOutbound: 1 },
        protocols: { "/echo/1.0.0": { streamsInbound: 1 } }
      })
      const peer = (yield* fakePeer).peerId
      const conn = yield* rm.openConnection("inbound")
      yield* conn.setPeer(peer)
      const s1 = yield* Scope.make()
      const a = yield* inScope(s1, conn.openStream("inbound"))
      expect(rm.stats().transient.streamsInbound).toBe(1)
      yield* a.setProtocol("/echo/1.0.0")
      expect(rm.stats().transient.streamsInbound).toBe(0)
      expect(rm.stats().protocols.get("/echo/1.0.0")?.streamsInbound).toBe(1)
      expect(rm.stats().peers.get(PeerId.toString(peer))?.streamsInbound).toBe(1)
      const b = yield* conn.openStream("inbound")
      const proto = yield* Effect.flip(b.setProtocol("/echo/1.0.0"))
      expect([proto.scope, proto.resource]).toEqual(["protocol", "streamsInbound"])
      yield* b.setProtocol("/ipfs/ping/1.0.0")
      const third = yield* Effect.flip(conn.openStream("inbound"))
      expect([third.scope, third.resource, third.limit]).toEqual(["connection", "streamsInbound", 2])
      yield* conn.openStream("outbound")
      expect((yield* Effect.flip(conn.openStream("outbound"))).resource).toBe("streamsOutbound")
      expect(conn.usage()).toEqual({ ...zero, streamsInbound: 2, streamsOutbound: 1 })
      yield* Scope.close(s1, Exit.void)
      expect(conn.usage().streamsInbound).toBe(1)
      expect(rm.stats().protocols.has("/echo/1.0.0")).toBe(false)
    }))

  it.effect("memory is charged to the stream, its connection, peer and the system, and refused past any of them", () =>
    Effect.gen(function*() {
      const KiB = 1024
      const rm = ResourceManager.make({
        system: { memory: 1000 * KiB },
        peer: { memory: 600 * KiB },
        connection: { memory: 500 * KiB },
        stream: { memory: 300 * KiB }
      })
      const peer = (yield* fakePeer).peerId
      const conn = yield* rm.openConnection("outbound")
      yield* conn.setPeer(peer)
      yield* conn.reserveMemory(100 * KiB)
      const stream = yield* conn.openStream("outbound")
      yield* stream.setProtocol("/x")
      const s = yield* Scope.make()
      yield* inScope(s, stream.reserveMemory(256 * KiB))
      const overStream = yield* Effect.flip(stream.reserveMemory(64 * KiB))
      expect([overStream.scope, overStream.resource]).toEqual(["stream", "memory"])
      const other = yield* conn.openStream("outbound")
      const overConn = yield* Effect.flip(other.reserveMemory(200 * KiB))
      expect([overConn.scope, overConn.resource]).toEqual(["connection", "memory"])
      expect(rm.stats().system.memory).toBe(356 * KiB)
      expect(rm.stats().protocols.get("/x")?.memory).toBe(256 * KiB)
      // a second connection of the same peer runs into the peer's limit
      const conn2 = yield* rm.openConnection("outbound")
      yield* conn2.setPeer(peer)
      const overPeer = yield* Effect.flip(conn2.reserveMemory(300 * KiB))
      expect([overPeer.scope, overPeer.resource]).toEqual(["peer", "memory"])
      yield* Scope.close(s, Exit.void)
      yield* conn2.reserveMemory(300 * KiB)
      expect(rm.stats().system.memory).toBe(400 * KiB)
      // zero or negative reservations are no-ops
      yield* conn.reserveMemory(0)
      yield* stream.reserveMemory(-5)
      expect(rm.stats().system.memory).toBe(400 * KiB)
    }))

  it.effect("defaults bound everything; the unlimited layer bounds nothing", () =>
    Effect.gen(function*() {
      const rm = ResourceManager.make()
      expect(rm.limits.system).toEqual(ResourceManager.defaults.system)
      expect(rm.limits.connection.streamsInbound).toBe(512)
      for (const v of Object.values(rm.limits.system)) expect(Number.isFinite(v)).toBe(true)
      const unlimited = yield* Effect.provide(
        Effect.gen(function*() {
          return yield* ResourceManager.ResourceManager
        }),
        ResourceManager.layerUnlimited
      )
      expect(unlimited.limits.transient.connectionsInbound).toBe(Infinity)
    }))
})
