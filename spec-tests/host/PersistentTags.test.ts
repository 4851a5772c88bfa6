/**
 * The connection manager's tags and protection are kept in the peer store
 * (issue 12): a node restarted on the same datastore keeps its protected
 * peers protected and its tags, and trimming still spares those peers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as MemoryStore from "../../src/datastore/Memory.ts"
import * as Peerstore from "../../src/host/Peerstore.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { memoryNode } from "../support/node.ts"

const cm = { lowWater: 0, highWater: 0, gracePeriod: 0, silencePeriod: 0 }

/** A memory node whose peer store lives on `ds`, in its own scope (`stop` closes it). */
const nodeOn = (ds: Datastore.Datastore["Service"]) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const node = yield* memoryNode({
      connectionManager: cm,
      peerstore: Peerstore.layerDatastore().pipe(Layer.provide(Layer.succeed(Datastore.Datastore, ds)))
    }).pipe(Scope.provide(scope))
    return { node, stop: Scope.close(scope, Exit.void) }
  })

describe("connection manager state in the peer store", () => {
  it.live("tags and protection survive a restart on the same datastore; trimming spares the protected peer", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryStore.make
      const b = yield* memoryNode()
      const c = yield* memoryNode()
      const first = yield* nodeOn(ds)
      const cm1 = first.node.connectionManager
      yield* cm1.protect(b.host.peerId, "bootstrap")
      yield* cm1.protect(b.host.peerId, "gone")
      yield* cm1.unprotect(b.host.peerId, "gone")
      yield* cm1.tagPeer(b.host.peerId, "kad", 5)
      yield* cm1.upsertTag(b.host.peerId, "kad", (v) => v + 2)
      yield* cm1.tagPeer(c.host.peerId, "tmp", 1)
      yield* cm1.untagPeer(c.host.peerId, "tmp")
      expect(first.node.peerstore.get(b.host.peerId)?.protectedBy).toEqual(["bootstrap"])
      expect(first.node.peerstore.get(b.host.peerId)?.tags).toEqual({ kad: 7 })
      yield* first.stop

      const second = yield* nodeOn(ds)
      const cm2 = second.node.connectionManager
      expect(cm2.isProtected(b.host.peerId, "bootstrap")).toBe(true)
      expect(cm2.isProtected(b.host.peerId, "gone")).toBe(false)
      expect(cm2.tags(b.host.peerId)).toEqual(new Map([["kad", 7]]))
      expect(cm2.tags(c.host.peerId).size).toBe(0)
      expect(cm2.isProtected(c.host.peerId)).toBe(false)

      yield* second.node.host.dial(b.addr)
      yield* second.node.host.dial(c.addr)
      const trimmed = yield* cm2.trim
      expect(trimmed.map((conn) => PeerId.toString(conn.remotePeer))).toEqual([PeerId.toString(c.host.peerId)])
      expect(second.node.host.connections(b.host.peerId)).toHaveLength(1)

      // a change after the restart is written through too
      yield* cm2.unprotect(b.host.peerId, "bootstrap")
      expect(second.node.peerstore.get(b.host.peerId)?.protectedBy).toEqual([])
      yield* second.stop
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
