/**
 * The ConnectionManager under TestClock with bookkeeping-only connections:
 * the hard cap, watermarks and the trimming fiber, the grace period, tags and
 * decaying tags, protection, the allow list, events. (No libp2p spec defines
 * connection management: the behaviour follows go-libp2p's connmgr, whose
 * terms the test names use, plus js-libp2p's maxConnections.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Schedule, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as Connection from "../../src/connection/Connection.ts"
import * as ConnectionManager from "../../src/connection/ConnectionManager.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { type FakeConnection, fakeConnection, type FakePeer, fakePeer } from "../support/connection.ts"
import * as Events from "../support/events.ts"
import { ma } from "../support/multiaddr.ts"

/** Track a new connection to `peer` in its own scope (closed when the connection closes). */
const connect = (cm: ConnectionManager.ConnectionManager["Service"], peer: FakePeer) =>
  Effect.gen(function*() {
    const conn = yield* fakeConnection(peer)
    const scope = yield* Scope.make()
    yield* Scope.provide(cm.track(conn), scope)
    yield* Effect.forkChild(Effect.andThen(conn.closed, Scope.close(scope, Exit.void)))
    return conn
  })

const trimmedEvents = (cm: ConnectionManager.ConnectionManager["Service"]) =>
  Effect.gen(function*() {
    const recorder = yield* Events.record(cm.subscribe)
    return recorder.drain
  })

const openIds = (conns: ReadonlyArray<Connection.Connection>) => conns.filter((c) => !c.isClosed()).map((c) => c.id)

describe("connmgr: options", () => {
  it("watermarks are kept consistent: low ≤ high ≤ maxConnections", () => {
    const r = ConnectionManager.resolve({ maxConnections: 15 })
    expect([r.lowWater, r.highWater, r.maxConnections]).toEqual([15, 15, 15])
    const s = ConnectionManager.resolve({ lowWater: 30, highWater: 20 })
    expect([s.lowWater, s.highWater, s.maxConnections]).toEqual([20, 20, 300])
    const d = ConnectionManager.resolve()
    expect([d.lowWater, d.highWater, d.maxConnections]).toEqual([160, 192, 300])
  })
})

describe("connmgr: watermarks, grace period, trimming fiber", () => {
  it.effect("past the high watermark, connections out of their grace period are trimmed to the low watermark, lowest value first", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({
        highWater: 4,
        lowWater: 2,
        gracePeriod: "10 seconds",
        silencePeriod: 0
      })
      const events = yield* trimmedEvents(cm)
      const peers = yield* Effect.forEach(Array.from({ length: 6 }), () => fakePeer)
      // values 0..5: peer i is worth i
      yield* Effect.forEach(peers, (p, i) => cm.tagPeer(p.peerId, "worth", i))
      const conns: Array<FakeConnection> = []
      for (const p of peers) conns.push(yield* connect(cm, p))
      yield* TestClock.adjust(0)
      // every connection is in its grace period: nothing is trimmed yet
      expect(openIds(conns)).toHaveLength(6)
      expect(yield* events).toEqual([])
      yield* TestClock.adjust("9999 millis")
      expect(openIds(conns)).toHaveLength(6)
      // the trimming fiber wakes as the grace period ends
      yield* TestClock.adjust("1 millis")
      expect(openIds(conns)).toEqual([conns[4]!.id, conns[5]!.id])
      const trimmed = (yield* events).filter((e) => e._tag === "PeerTrimmed")
      expect(
        trimmed.map((e) =>
          e._tag === "PeerTrimmed" && [PeerId.toString(e.peerId), e.value, e.reason, e.before, e.target]
        )
      )
        .toEqual(peers.slice(0, 4).map((p, i) => [PeerId.toString(p.peerId), i, "HighWatermark", 6, 2]))
      expect(cm.stats().open).toBe(2)
    }))

  it.effect("at or below the high watermark nothing is trimmed, whatever the age", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({ highWater: 4, lowWater: 2, gracePeriod: "1 second", silencePeriod: 0 })
      const conns: Array<FakeConnection> = []
      for (let i = 0; i < 4; i++) conns.push(yield* connect(cm, yield* fakePeer))
      yield* TestClock.adjust("1 hour")
      expect(openIds(conns)).toHaveLength(4)
      // the fifth passes the high watermark: trimmed to 2 (the new one is still in its grace period)
      const fifth = yield* connect(cm, yield* fakePeer)
      yield* TestClock.adjust(0)
      expect(openIds([...conns, fifth])).toHaveLength(2)
      expect(fifth.isClosed()).toBe(false)
    }))

  it.effect("equal values: idle connections before busy ones, then the newest first", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({ highWater: 3, lowWater: 2, gracePeriod: 0, silencePeriod: 0 })
      const a = yield* connect(cm, yield* fakePeer)
      yield* TestClock.adjust("1 second")
      const b = yield* connect(cm, yield* fakePeer)
      yield* TestClock.adjust("1 second")
      const c = yield* connect(cm, yield* fakePeer)
      a.setStreams(3)
      c.setStreams(1)
      yield* TestClock.adjust("1 second")
      const d = yield* connect(cm, yield* fakePeer) // 4 > 3: trim to 2
      d.setStreams(2)
      yield* TestClock.adjust(0)
      // idle b goes first, then c (1 stream) before d (2) and a (3)
      expect(openIds([a, b, c, d])).toEqual([a.id, d.id])
    }))

  it.effect("protected peers are never trimmed, even when the low watermark cannot be reached", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({ highWater: 2, lowWater: 1, gracePeriod: 0, silencePeriod: 0 })
      const peers = yield* Effect.forEach(Array.from({ length: 4 }), () => fakePeer)
      yield* cm.protect(peers[0]!.peerId, "bootstrap")
      yield* cm.protect(peers[1]!.peerId, "bootstrap")
      yield* cm.protect(peers[1]!.peerId, "relay")
      const conns: Array<FakeConnection> = []
      for (const p of peers) conns.push(yield* connect(cm, p))
      yield* TestClock.adjust(0)
      expect(openIds(conns)).toEqual([conns[0]!.id, conns[1]!.id])
      // removing one of two protections keeps the peer protected
      expect(yield* cm.unprotect(peers[1]!.peerId, "relay")).toBe(true)
      expect(cm.isProtected(peers[1]!.peerId)).toBe(true)
      expect(cm.isProtected(peers[1]!.peerId, "relay")).toBe(false)
      expect(yield* cm.unprotect(peers[0]!.peerId, "bootstrap")).toBe(false)
      const trimmed = yield* cm.trim
      expect(trimmed.map((c) => c.id)).toEqual([conns[0]!.id])
      expect(openIds(conns)).toEqual([conns[1]!.id])
    }))

  it.effect("when a peer loses its last protection, the trimming fiber trims it without waiting for a new connection", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({ highWater: 2, lowWater: 1, gracePeriod: 0, silencePeriod: 0 })
      const peers = yield* Effect.forEach(Array.from({ length: 3 }), () => fakePeer)
      yield* Effect.forEach(peers, (p) => cm.protect(p.peerId, "keep"))
      const conns: Array<FakeConnection> = []
      for (const p of peers) conns.push(yield* connect(cm, p))
      yield* TestClock.adjust("1 hour")
      expect(openIds(conns)).toHaveLength(3)
      yield* cm.unprotect(peers[2]!.peerId, "keep")
      yield* TestClock.adjust(0)
      expect(openIds(conns)).toEqual([conns[0]!.id, conns[1]!.id])
    }))

  it.effect("trims are at least the silence period apart", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({
        highWater: 2,
        lowWater: 1,
        gracePeriod: 0,
        silencePeriod: "5 seconds"
      })
      const first = [
        yield* connect(cm, yield* fakePeer),
        yield* connect(cm, yield* fakePeer),
        yield* connect(cm, yield* fakePeer)
      ]
      yield* TestClock.adjust(0)
      expect(openIds(first)).toHaveLength(1)
      const more = [yield* connect(cm, yield* fakePeer), yield* connect(cm, yield* fakePeer)]
      yield* TestClock.adjust("4999 millis")
      expect(openIds([...first, ...more])).toHaveLength(3)
      yield* TestClock.adjust("1 millis")
      expect(openIds([...first, ...more])).toHaveLength(1)
    }))
})

describe("connmgr: tags", () => {
  it.effect("a peer's value is the sum of its tags; upsert and untag change it", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make()
      const p = (yield* fakePeer).peerId
      yield* cm.tagPeer(p, "a", 10)
      yield* cm.tagPeer(p, "b", 5)
      yield* cm.upsertTag(p, "b", (v) => v * 3)
      yield* cm.upsertTag(p, "c", (v) => v + 1)
      expect(cm.value(p)).toBe(26)
      expect(Object.fromEntries(cm.tags(p))).toEqual({ a: 10, b: 15, c: 1 })
      yield* cm.untagPeer(p, "a")
      expect(cm.value(p)).toBe(16)
      yield* cm.untagPeer(p, "b")
      yield* cm.untagPeer(p, "c")
      expect(cm.stats().taggedPeers).toBe(0)
    }))

  it.effect("decaying tags lose value on their schedule and disappear at zero; closing the scope removes them", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make()
      const p = (yield* fakePeer).peerId
      const q = (yield* fakePeer).peerId
      const scope = yield* Scope.make()
      const activity = yield* Scope.provide(
        cm.decayingTag("activity", { interval: "1 second", decay: ConnectionManager.Decay.fixed(1) }),
        scope
      )
      const halving = yield* Scope.provide(
        cm.decayingTag("halving", { interval: "10 seconds", decay: ConnectionManager.Decay.linear(0.5) }),
        scope
      )
      yield* cm.tagPeer(p, "static", 100)
      yield* activity.bump(p, 2)
      yield* activity.bump(p, 1)
      yield* halving.bump(q, 40)
      expect([cm.value(p), cm.value(q)]).toEqual([103, 40])
      yield* TestClock.adjust("1 second")
      expect(activity.value(p)).toBe(2)
      yield* TestClock.adjust("2 seconds")
      expect(activity.value(p)).toBeUndefined()
      expect(cm.value(p)).toBe(100)
      yield* TestClock.adjust("7 seconds")
      expect(cm.value(q)).toBe(20)
      yield* TestClock.adjust("20 seconds")
      expect(cm.value(q)).toBe(5)
      // a second tag of the same name is refused while the first lives
      const dup = yield* Effect.flip(
        cm.decayingTag("halving", { interval: "1 second", decay: ConnectionManager.Decay.none })
      )
      expect(dup.reason).toBe("DuplicateDecayingTag")
      yield* Scope.close(scope, Exit.void)
      expect(cm.value(q)).toBe(0)
      expect(Object.fromEntries(cm.tags(p))).toEqual({ static: 100 })
    }))

  it.effect("bump functions: sum, bounded sum, overwrite; a decaying tag on a custom Schedule", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make()
      const p = (yield* fakePeer).peerId
      const bounded = yield* cm.decayingTag("bounded", {
        interval: "1 hour",
        decay: ConnectionManager.Decay.none,
        bump: ConnectionManager.Bump.sumBounded(0, 10)
      })
      const over = yield* cm.decayingTag("over", {
        interval: "1 hour",
        schedule: Schedule.fixed("3 seconds"),
        decay: ConnectionManager.Decay.fixed(5),
        bump: ConnectionManager.Bump.overwrite
      })
      yield* bounded.bump(p, 7)
      yield* bounded.bump(p, 7)
      expect(bounded.value(p)).toBe(10)
      yield* over.bump(p, 12)
      yield* over.bump(p, 11)
      expect(over.value(p)).toBe(11)
      yield* TestClock.adjust("3 seconds")
      expect(over.value(p)).toBe(6)
      yield* TestClock.adjust("3 seconds")
      expect(over.value(p)).toBe(1)
      yield* TestClock.adjust("3 seconds")
      expect(over.value(p)).toBeUndefined()
      expect(bounded.value(p)).toBe(10)
    }))
})

describe("connmgr: hard cap (maxConnections) and allow list", () => {
  it.effect("slots beyond maxConnections are refused with LimitExceeded and an event; closing a slot's scope frees it", () =>
    Effect.gen(function*() {
      const cm = yield* ConnectionManager.make({
        maxConnections: 2,
        allow: [ma("/ip4/10.0.0.0/ipcidr/8"), ma("/ip6/fd00::1")]
      })
      const events = yield* cm.subscribe
      const public1 = ma("/ip4/1.2.3.4/tcp/1")
      const s1 = yield* Scope.make()
      yield* Scope.provide(cm.reserve("inbound", public1), s1)
      yield* cm.reserve("outbound", public1)
      expect(cm.stats().slots).toBe(2)
      const err = yield* Effect.flip(cm.reserve("inbound", public1))
      expect([err._tag, err.scope, err.resource, err.limit]).toEqual(["LimitExceeded", "system", "connections", 2])
      const event = Option.getOrThrow(yield* Stream.runHead(events))
      expect(event._tag === "ConnectionRefused" && [event.direction, event.reason, event.limit]).toEqual([
        "inbound",
        "MaxConnections",
        2
      ])
      // allow-listed addresses and protected peers (outbound) pass the cap
      yield* cm.reserve("inbound", ma("/ip4/10.1.2.3/tcp/1"))
      yield* cm.reserve("inbound", ma("/ip6/fd00::1/tcp/1"))
      expect((yield* Effect.flip(cm.reserve("inbound", ma("/ip6/fd00::2/tcp/1")))).resource).toBe("connections")
      const friend = (yield* fakePeer).peerId
      yield* cm.protect(friend, "friend")
      yield* cm.reserve("outbound", public1, friend)
      expect(cm.stats().slots).toBe(5)
      expect(cm.isAllowed(ma("/ip4/11.0.0.1/tcp/1"))).toBe(false)
      yield* Scope.close(s1, Exit.void)
      expect(cm.stats().slots).toBe(4)
    }))
})
