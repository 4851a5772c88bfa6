/**
 * Issue 18 §1 (the PeerDiscovery contract) and §2 (bootstrap), in process on
 * the memory transport: the hub cleans, bounds and deduplicates what sources
 * announce; the consumer feeds the peer store and dials while below its
 * connection target; bootstrap peers are announced, dialed and redialed on
 * an exponential backoff (TestClock) only while the node has too few peers.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { ConnectionManager } from "../../src/connection/ConnectionManager.ts"
import { Identity } from "../../src/core/Identity.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Bootstrap from "../../src/discovery/Bootstrap.ts"
import * as PeerDiscovery from "../../src/discovery/PeerDiscovery.ts"
import { Host } from "../../src/host/Host.ts"
import * as KeepConnected from "../../src/host/KeepConnected.ts"
import { Peerstore } from "../../src/host/Peerstore.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { runCli } from "../cli/support.ts"
import { ma } from "../support/multiaddr.ts"
import { memoryNode, type TestNode } from "../support/node.ts"

/** The node's services as a Layer, so discovery layers can be built on it. */
const nodeLayer = (n: TestNode) =>
  Layer.mergeAll(
    Layer.succeed(Identity, n.identity),
    Layer.succeed(Host, n.host),
    Layer.succeed(Peerstore, n.peerstore),
    Layer.succeed(ConnectionManager, n.connectionManager)
  )

const hubOf = (n: TestNode, options?: PeerDiscovery.PeerDiscoveryOptions) =>
  PeerDiscovery.make(options).pipe(Effect.provideService(Identity, n.identity))

const p2p = (addr: Multiaddr.Multiaddr, peer: PeerId.PeerId) =>
  Multiaddr.encapsulate(addr, ma(`/p2p/${PeerId.toString(peer)}`))

/** Yield to other fibers until `cond` holds (no clock involved; fails after 2,000 turns). */
const settle = (cond: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2000 && !cond(); i++) yield* Effect.yieldNow
    expect(cond()).toBe(true)
  })

describe("PeerDiscovery (issue 18 §1)", () => {
  it.effect("§1 contract: announcements are cleaned (self, foreign /p2p ids, caps) and deduplicated per source", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const c = yield* memoryNode()
      const hub = yield* hubOf(a, { maxAddrsPerPeer: 2 })
      const got: Array<PeerDiscovery.DiscoveredPeer> = []
      const stream = yield* hub.subscribe
      yield* Effect.forkScoped(Stream.runForEach(stream, (p) => Effect.sync(() => void got.push(p))))
      // ourselves: dropped
      yield* hub.announce({ peerId: a.host.peerId, addrs: [a.addr], source: "test" })
      // b, with one address naming c (spoofed), one naming b, one bare, one too many
      yield* hub.announce({
        peerId: b.host.peerId,
        addrs: [
          p2p(ma("/memory/1"), c.host.peerId),
          p2p(ma("/memory/2"), b.host.peerId),
          ma("/memory/3"),
          ma("/memory/4")
        ],
        source: "test"
      })
      // the same again: deduplicated; from another source: emitted
      yield* hub.announce({ peerId: b.host.peerId, addrs: [ma("/memory/2"), ma("/memory/3")], source: "test" })
      yield* hub.announce({ peerId: b.host.peerId, addrs: [ma("/memory/2")], source: "other" })
      // no address left: dropped
      yield* hub.announce({ peerId: c.host.peerId, addrs: [p2p(ma("/memory/5"), b.host.peerId)], source: "test" })
      yield* settle(() => got.length >= 2)
      yield* Effect.yieldNow
      expect(got.map((p) => [PeerId.toString(p.peerId), p.source, p.addrs.map(Multiaddr.toString)])).toEqual([
        [PeerId.toString(b.host.peerId), "test", ["/memory/2", "/memory/3"]],
        [PeerId.toString(b.host.peerId), "other", ["/memory/2"]]
      ])
      // a change of addresses is news
      yield* hub.announce({ peerId: b.host.peerId, addrs: [ma("/memory/9")], source: "test" })
      yield* settle(() => got.length === 3)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§1 contract: several sources registered at once all reach every subscriber", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const c = yield* memoryNode()
      const hub = yield* hubOf(a)
      const s1 = yield* hub.subscribe
      const s2 = yield* hub.subscribe
      const f1 = yield* Effect.forkScoped(Stream.runCollect(Stream.take(s1, 2)))
      const f2 = yield* Effect.forkScoped(Stream.runCollect(Stream.take(s2, 2)))
      yield* hub.register(Stream.make({ peerId: b.host.peerId, addrs: [b.addr], source: "mdns" }))
      yield* hub.register(Stream.make({ peerId: c.host.peerId, addrs: [c.addr], source: "rendezvous" }))
      const sources = (ps: ReadonlyArray<PeerDiscovery.DiscoveredPeer>) => ps.map((p) => p.source).sort()
      expect(sources(yield* Fiber.join(f1))).toEqual(["mdns", "rendezvous"])
      expect(sources(yield* Fiber.join(f2))).toEqual(["mdns", "rendezvous"])
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§1 consumer: a discovered peer goes to the peer store (routing TTL) and is dialed while below the target", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const c = yield* memoryNode()
      const hub = yield* hubOf(a)
      yield* PeerDiscovery.connect({ minConnections: 1 }).pipe(
        Effect.provide(Layer.merge(nodeLayer(a), Layer.succeed(PeerDiscovery.PeerDiscovery, hub)))
      )
      yield* hub.announce({ peerId: b.host.peerId, addrs: [b.addr], source: "test" })
      yield* settle(() => a.host.connections(b.host.peerId).length === 1)
      const entry = a.peerstore.get(b.host.peerId)?.addrEntries.find((e) =>
        Multiaddr.equals(e.addr, Multiaddr.decapsulateCode(b.addr, Multiaddr.codes.p2p))
      )
      expect(entry).toBeDefined()
      // at the target (1 peer): c is stored, not dialed
      yield* hub.announce({ peerId: c.host.peerId, addrs: [c.addr], source: "test" })
      yield* settle(() => a.peerstore.get(c.host.peerId) !== undefined)
      // as many turns as b's dial was given: a dial of c would have completed in them
      for (let i = 0; i < 2000; i++) yield* Effect.yieldNow
      expect(a.host.connections(c.host.peerId)).toEqual([])
      expect(c.host.connections(a.host.peerId)).toEqual([])
      expect(a.peerstore.get(c.host.peerId)!.addrEntries[0]!.source).toBe("routing")
    }).pipe(Effect.provide(Memory.layerNetwork)))
})

describe("Bootstrap (issue 18 §2)", () => {
  it.effect("§2: an address without /p2p/<id> is a DiscoveryError (Config)", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Bootstrap.parsePeers([ma("/memory/1")]))
      expect(error._tag).toBe("DiscoveryError")
      expect(error.reason).toBe("Config")
    }))

  it.live(
    "§2 CLI: node --bootstrap without /p2p/<id> is a usage error (exit 2), not a node that never finds its peer",
    () =>
      Effect.gen(function*() {
        const run = yield* runCli(["node", "--ephemeral", "--bootstrap", "/ip4/127.0.0.1/tcp/1", "--json"])
        expect(run.exit.code).toBe(2)
        expect(run.lines[0]?.["error"]).toMatchObject({ _tag: "UsageError" })
      }),
    60_000
  )

  it.effect("§2: bootstrap peers are announced (source bootstrap), dialed at start, protected", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const hub = yield* hubOf(a)
      const got: Array<PeerDiscovery.DiscoveredPeer> = []
      const stream = yield* hub.subscribe
      yield* Effect.forkScoped(Stream.runForEach(stream, (p) => Effect.sync(() => void got.push(p))))
      yield* Bootstrap.start({ peers: [b.addr] }).pipe(
        Effect.provide(Layer.merge(nodeLayer(a), Layer.succeed(PeerDiscovery.PeerDiscovery, hub)))
      )
      yield* settle(() => a.host.connections(b.host.peerId).length === 1 && got.length === 1)
      expect(got[0]!.source).toBe("bootstrap")
      expect(PeerId.equals(got[0]!.peerId, b.host.peerId)).toBe(true)
      yield* settle(() => a.connectionManager.isProtected(b.host.peerId, KeepConnected.TAG))
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§2: a bootstrap peer that drops the connection is dialed again at once (no wait for checkInterval)", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      yield* Bootstrap.start({ peers: [b.addr], checkInterval: "1 hour" }).pipe(Effect.provide(nodeLayer(a)))
      yield* settle(() => b.host.connections(a.host.peerId).length === 1)
      const first = a.host.connections(b.host.peerId)[0]!
      yield* b.host.hangUp(a.host.peerId)
      yield* settle(() => a.host.connections(b.host.peerId).some((c) => c.id !== first.id && !c.isClosed()))
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§2: a failed dial is retried on an exponential backoff with jitter (1 s, 2 s, 4 s … capped)", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const gone = p2p(ma("/memory/999999"), b.host.peerId)
      const failures: Array<number> = []
      yield* Bootstrap.start({
        peers: [gone],
        initialBackoff: "1 second",
        maxBackoff: "8 seconds",
        onDialFailure: () => Effect.map(Clock.currentTimeMillis, (t) => void failures.push(t))
      }).pipe(Effect.provide(nodeLayer(a)))
      yield* settle(() => failures.length === 1)
      for (let i = 0; i < 400 && failures.length < 7; i++) {
        yield* TestClock.adjust("100 millis")
        yield* Effect.yieldNow
      }
      // delays 1, 2, 4, 8, 8, 8 s, each jittered to 0.8–1.2× (the clock moved in 100 ms steps)
      const gaps = failures.slice(1).map((t, i) => t - failures[i]!)
      expect(gaps).toHaveLength(6)
      for (const [i, d] of [1, 2, 4, 8, 8, 8].entries()) {
        expect(gaps[i]!).toBeGreaterThanOrEqual(d * 800)
        expect(gaps[i]!).toBeLessThanOrEqual(d * 1200 + 100)
      }
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("§2: no dial while the node has minConnections peers; dialing resumes when it drops below", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const c = yield* memoryNode()
      yield* a.host.dial(c.addr)
      let failures = 0
      const gone = p2p(ma("/memory/999998"), b.host.peerId)
      yield* Bootstrap.start({
        peers: [gone],
        minConnections: 1,
        checkInterval: "10 seconds",
        onDialFailure: () => Effect.sync(() => void failures++)
      }).pipe(Effect.provide(nodeLayer(a)))
      yield* TestClock.adjust("30 seconds")
      yield* Effect.yieldNow
      expect(failures).toBe(0)
      yield* a.host.hangUp(c.host.peerId)
      yield* TestClock.adjust("10 seconds")
      yield* settle(() => failures >= 1)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
