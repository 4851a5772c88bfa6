/**
 * The Peerstore (src/host/Peerstore.ts): what it keeps about a peer, address
 * TTLs (go-libp2p peerstore: connected, recently connected, routing), signed
 * peer records (RFC 0003: only a newer seq replaces one), eviction, and the
 * Datastore-backed layer: every field survives a reopen, writes are
 * coalesced, a bad record is skipped.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as MemoryStore from "../../src/datastore/Memory.ts"
import * as Sqlite from "../../src/datastore/Sqlite.ts"
import * as Peerstore from "../../src/host/Peerstore.ts"
import { startWriter } from "../support/crashChild.ts"

const ma = (s: string) => Multiaddr.fromString(s).pipe((r) => (r._tag === "Success" ? r.success : undefined!))
const newPeer = Effect.map(Keys.generate("Ed25519"), (k) => ({ id: PeerId.fromPrivateKey(k), key: k.publicKey }))
const A1 = ma("/ip4/10.0.0.1/tcp/4001")
const A2 = ma("/ip4/10.0.0.2/tcp/4001")
const A3 = ma("/ip4/10.0.0.3/tcp/4001")
const strs = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => addrs.map(Multiaddr.toString).sort()

/** A peer store on `ds`, open in its own scope (closed, and so flushed, by `close`). */
const openOn = (ds: Datastore.Datastore["Service"], options: Peerstore.PeerstoreOptions = {}) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const store = yield* Peerstore.makeDatastore(options).pipe(
      Effect.provideService(Datastore.Datastore, ds),
      Scope.provide(scope)
    )
    return { store, close: Scope.close(scope, Exit.void) }
  })

describe("Peerstore", () => {
  it.effect("merge keeps keys, protocols, versions; addresses are added", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory()
      const p = yield* newPeer
      yield* ps.merge(p.id, { addrs: [A1], protocols: ["/a"], agentVersion: "x/1", publicKey: p.key })
      const info = yield* ps.merge(p.id, { addrs: [A2, A1], protocolVersion: "ipfs/0.1.0" })
      expect(strs(info.addrs)).toEqual(strs([A1, A2]))
      expect(info.protocols).toEqual(["/a"])
      expect(info.agentVersion).toBe("x/1")
      expect(info.protocolVersion).toBe("ipfs/0.1.0")
      expect(info.publicKey !== undefined && Keys.equals(info.publicKey, p.key)).toBe(true)
    }))

  it.effect("RFC 0003: only a newer signed record replaces the certified addresses [rfc0003:address-record-format:1] [rfc0003:address-record-format:2] [rfc0003:peer-store-apis:1] [rfc0003:peer-store-apis:2] [rfc0003:peer-store-apis:3]", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory()
      const p = yield* newPeer
      yield* ps.merge(p.id, { addrs: [A1] })
      expect(yield* ps.certify(p.id, 5n, [A2], Uint8Array.of(5))).toBe(true)
      expect(strs(ps.get(p.id)!.addrs)).toEqual(strs([A2]))
      expect(yield* ps.certify(p.id, 5n, [A3], Uint8Array.of(6))).toBe(false)
      expect(yield* ps.certify(p.id, 4n, [A3], Uint8Array.of(4))).toBe(false)
      expect(ps.get(p.id)!.signedRecord).toEqual(Uint8Array.of(5))
      expect(yield* ps.certify(p.id, 6n, [A3], Uint8Array.of(6))).toBe(true)
      expect(strs(ps.get(p.id)!.addrs)).toEqual(strs([A3]))
      expect(ps.get(p.id)!.recordSeq).toBe(6n)
    }))

  it.effect("TTLs: connected addresses last while connected, then recentlyConnectedTtl; routing ones routingTtl", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory({ recentlyConnectedTtl: "10 minutes", routingTtl: "1 hour" })
      const p = yield* newPeer
      yield* ps.connected(p.id, { addr: A1 })
      yield* ps.merge(p.id, { addrs: [A2] })
      yield* ps.merge(p.id, { addrs: [A3], addrSource: "routing" })
      yield* TestClock.adjust("2 hours")
      // connected: A1, A2 still there; the routing address expired
      expect(strs(ps.get(p.id)!.addrs)).toEqual(strs([A1, A2]))
      yield* ps.disconnected(p.id)
      expect(ps.get(p.id)!.connected).toBe(false)
      yield* TestClock.adjust("9 minutes")
      expect(strs(ps.get(p.id)!.addrs)).toEqual(strs([A1, A2]))
      yield* TestClock.adjust("2 minutes")
      expect(ps.get(p.id)!.addrs).toEqual([])
      // the peer itself is remembered
      expect(ps.get(p.id)).toBeDefined()
    }))

  it.effect("cap: the least recently seen peer is evicted, never a connected or protected one", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory({ maxPeers: 3 })
      const [a, b, c, d, e] = yield* Effect.all([newPeer, newPeer, newPeer, newPeer, newPeer])
      yield* ps.connected(a!.id, {})
      yield* TestClock.adjust("1 second")
      yield* ps.protect(b!.id, "keep")
      yield* TestClock.adjust("1 second")
      yield* ps.merge(c!.id, { addrs: [A1] })
      yield* TestClock.adjust("1 second")
      yield* ps.merge(d!.id, { addrs: [A2] }) // evicts c: a is connected, b protected
      expect(ps.size()).toBe(3)
      expect(ps.get(c!.id)).toBeUndefined()
      expect(ps.get(a!.id)).toBeDefined()
      expect(ps.get(b!.id)).toBeDefined()
      yield* ps.merge(e!.id, {}) // evicts d
      expect(ps.get(d!.id)).toBeUndefined()
      expect(ps.size()).toBe(3)
    }))

  it.effect("tags and metadata are kept per peer", () =>
    Effect.gen(function*() {
      const ps = yield* Peerstore.makeMemory()
      const p = yield* newPeer
      yield* ps.merge(p.id, {})
      yield* ps.tag(p.id, "kad", 5)
      yield* ps.tag(p.id, "other", 1)
      yield* ps.tag(p.id, "other", undefined)
      yield* ps.setMetadata(p.id, "note", Uint8Array.of(1, 2))
      expect(ps.get(p.id)!.tags).toEqual({ kad: 5 })
      expect(ps.get(p.id)!.metadata).toEqual({ note: Uint8Array.of(1, 2) })
    }))
})

describe("Peerstore on a Datastore", () => {
  it.effect("every field survives a reopen", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryStore.make
      const p = yield* newPeer
      const first = yield* openOn(ds)
      yield* first.store.connected(p.id, { publicKey: p.key, addr: A1 })
      yield* first.store.merge(p.id, { addrs: [A2], protocols: ["/ipfs/ping/1.0.0"], agentVersion: "js/1" })
      yield* first.store.certify(p.id, 7n, [A3], Uint8Array.of(9, 9))
      yield* first.store.tag(p.id, "kad", 3)
      yield* first.store.setMetadata(p.id, "m", Uint8Array.of(1))
      yield* first.store.protect(p.id, "keep")
      yield* first.close
      const second = yield* openOn(ds)
      const info = second.store.get(p.id)!
      expect(info).toBeDefined()
      expect(strs(info.addrs)).toEqual(strs([A1, A3]))
      expect(info.connected).toBe(false)
      expect(info.protocols).toEqual(["/ipfs/ping/1.0.0"])
      expect(info.agentVersion).toBe("js/1")
      expect(info.recordSeq).toBe(7n)
      expect(info.signedRecord).toEqual(Uint8Array.of(9, 9))
      expect(info.tags).toEqual({ kad: 3 })
      expect(info.metadata).toEqual({ m: Uint8Array.of(1) })
      expect(info.protectedBy).toEqual(["keep"])
      expect(info.publicKey !== undefined && Keys.equals(info.publicKey, p.key)).toBe(true)
      // a loaded record still refuses an older seq
      expect(yield* second.store.certify(p.id, 7n, [A2])).toBe(false)
      // and a removal is written through
      yield* second.store.remove(p.id)
      yield* second.close
      const third = yield* openOn(ds)
      expect(third.store.get(p.id)).toBeUndefined()
      yield* third.close
    }))

  it.effect("writes go through without waiting for the store: one peer changed many times is written once", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryStore.make
      let batches = 0
      let puts = 0
      const counting: Datastore.Datastore["Service"] = {
        ...ds,
        batch: (ops) =>
          Effect.suspend(() => {
            batches++
            puts += ops.length
            return ds.batch(ops)
          })
      }
      const { store, close } = yield* openOn(counting)
      const p = yield* newPeer
      for (let i = 0; i < 100; i++) yield* store.merge(p.id, { protocols: [`/p/${i}`] })
      yield* close
      expect(puts).toBeLessThanOrEqual(2)
      expect(batches).toBeGreaterThanOrEqual(1)
      const again = yield* openOn(ds)
      expect(again.store.get(p.id)!.protocols).toEqual(["/p/99"])
      yield* again.close
    }))

  it.effect("the load keeps the maxPeers most recently seen", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryStore.make
      const peers = yield* Effect.all([newPeer, newPeer, newPeer, newPeer])
      const first = yield* openOn(ds)
      for (const p of peers) {
        yield* first.store.merge(p.id, { addrs: [A1] })
        yield* TestClock.adjust("1 second")
      }
      yield* first.close
      const second = yield* openOn(ds, { maxPeers: 2 })
      expect(second.store.size()).toBe(2)
      expect(second.store.get(peers[3]!.id)).toBeDefined()
      expect(second.store.get(peers[2]!.id)).toBeDefined()
      expect(second.store.get(peers[0]!.id)).toBeUndefined()
      yield* second.close
    }))

  it.effect("a record that does not decode is skipped and left in the store", () =>
    Effect.gen(function*() {
      const ds = yield* MemoryStore.make
      const p = yield* newPeer
      const bad = yield* Datastore.child(Peerstore.PREFIX, PeerId.toString(p.id))
      yield* ds.put(bad, new TextEncoder().encode("{not json"))
      const { store, close } = yield* openOn(ds)
      expect(store.size()).toBe(0)
      yield* close
      expect(new TextDecoder().decode(yield* ds.get(bad))).toBe("{not json")
    }))

  it.effect("on SQLite: peers written before the scope closes are there after a reopen", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peerstore-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const file = path.join(dir, "datastore.sqlite")
      const peers = yield* Effect.forEach(Array.from({ length: 50 }), () => newPeer)
      yield* Effect.scoped(
        Effect.gen(function*() {
          const ps = yield* Peerstore.Peerstore
          for (const p of peers) yield* ps.merge(p.id, { addrs: [A1], publicKey: p.key })
        }).pipe(Effect.provide(Peerstore.layerDatastore().pipe(Layer.provide(Sqlite.layer({ filename: file })))))
      )
      const count = yield* Effect.scoped(
        Effect.gen(function*() {
          const ds = yield* Datastore.Datastore
          return yield* Stream.runCount(ds.keys({ prefix: Peerstore.PREFIX }))
        }).pipe(Effect.provide(Sqlite.layer({ filename: file })))
      )
      expect(count).toBe(50)
    }))

  it.live(
    "kill -9 while the peer store writes: every peer whose flush returned is there after a reopen",
    () =>
      Effect.gen(function*() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "peerstore-crash-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
        const file = path.join(dir, "datastore.sqlite")
        const writer = yield* startWriter(path.join(import.meta.dirname, "peerstoreCrashWriter.ts"), [file], 200)
        const { acked, first, signal } = yield* writer.kill
        expect(signal).toBe("SIGKILL")
        expect(first).toBe("ready")
        expect(acked.length).toBeGreaterThanOrEqual(200)
        yield* Effect.scoped(
          Effect.gen(function*() {
            const ps = yield* Peerstore.Peerstore
            for (const id of acked) {
              const peer = PeerId.fromString(id)
              expect(peer._tag).toBe("Success")
              const info = peer._tag === "Success" ? ps.get(peer.success) : undefined
              expect(info?.addrs.map(Multiaddr.toString), `acknowledged ${id}`).toEqual(["/ip4/10.1.2.3/tcp/4001"])
              expect(info?.protocols).toEqual(["/ipfs/ping/1.0.0"])
            }
          }).pipe(
            Effect.provide(
              Peerstore.layerDatastore().pipe(Layer.provide(Sqlite.layer({ filename: file, integrityCheck: "full" })))
            )
          )
        )
      }),
    90_000
  )
})
