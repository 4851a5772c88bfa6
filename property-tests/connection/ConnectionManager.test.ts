/**
 * Properties of connection trimming (go-libp2p connmgr model, docs/ARCHITECTURE.md
 * §6: "trimming never closes protected peers and reaches the low watermark"):
 *
 * - the trimming policy never picks a protected peer's connection or one in
 *   its grace period, picks the lowest-valued ones, and picks enough to reach
 *   the target when there are enough candidates;
 * - for any sequence of connects, disconnects, tag changes, protections and
 *   virtual time passing, the connection manager (its trimming fiber under
 *   TestClock) never trims a protected peer, and once things settle the count
 *   is at most the high watermark unless protected or grace-period
 *   connections hold it up; after an explicit trim it is at most the low
 *   watermark unless they do.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { type FakeConnection, fakeConnection, type FakePeer, fakePeer } from "../../spec-tests/support/connection.ts"
import * as Events from "../../spec-tests/support/events.ts"
import * as ConnectionManager from "../../src/connection/ConnectionManager.ts"
import * as PeerId from "../../src/core/PeerId.ts"

describe("connmgr trimming policy (properties)", () => {
  const candidate = fc.record({
    peer: fc.nat({ max: 9 }),
    openedAt: fc.nat({ max: 10_000 }),
    streams: fc.nat({ max: 5 })
  })
  it("selectTrim: never protected or in grace; lowest values first; reaches the target when it can", () =>
    fc.assert(
      fc.property(
        fc.array(candidate, { maxLength: 40 }),
        fc.array(fc.integer({ min: -5, max: 50 }), { minLength: 10, maxLength: 10 }),
        fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
        fc.nat({ max: 40 }),
        fc.nat({ max: 5000 }),
        (raw, values, prot, target, grace) => {
          const now = 10_000
          const conns = raw.map((c, i) => ({ ...c, id: `c${i}`, peer: `p${c.peer}` }))
          const value = (p: string) => values[Number(p.slice(1))]!
          const isProtected = (p: string) => prot[Number(p.slice(1))]!
          const chosen = ConnectionManager.selectTrim(conns, {
            target,
            now,
            gracePeriodMillis: grace,
            value,
            isProtected
          })
          const trimmable = conns.filter((c) => !isProtected(c.peer) && now - c.openedAt >= grace)
          for (const c of chosen) {
            expect(isProtected(c.peer)).toBe(false)
            expect(now - c.openedAt).toBeGreaterThanOrEqual(grace)
          }
          expect(new Set(chosen.map((c) => c.id)).size).toBe(chosen.length)
          expect(chosen.length).toBe(Math.min(Math.max(0, conns.length - target), trimmable.length))
          const maxChosen = Math.max(...chosen.map((c) => value(c.peer)))
          const kept = trimmable.filter((c) => !chosen.includes(c))
          if (chosen.length > 0) { for (const k of kept) expect(value(k.peer)).toBeGreaterThanOrEqual(maxChosen) }
        }
      ),
      { numRuns: 1000 }
    ))
})

type Op =
  | { readonly op: "connect"; readonly peer: number }
  | { readonly op: "disconnect"; readonly conn: number }
  | { readonly op: "tag"; readonly peer: number; readonly value: number }
  | { readonly op: "protect"; readonly peer: number }
  | { readonly op: "unprotect"; readonly peer: number }
  | { readonly op: "advance"; readonly millis: number }
  | { readonly op: "trim" }

const PEERS = 8
const peerIdx = fc.nat({ max: PEERS - 1 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("connect" as const), peer: peerIdx }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("disconnect" as const), conn: fc.nat({ max: 40 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("tag" as const), peer: peerIdx, value: fc.integer({ min: 0, max: 100 }) })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("protect" as const), peer: peerIdx }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("unprotect" as const), peer: peerIdx }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("advance" as const), millis: fc.integer({ min: 0, max: 1500 }) })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("trim" as const) }) }
)

const HIGH = 6
const LOW = 3
const GRACE = 1000

const settle = Effect.gen(function*() {
  for (let i = 0; i < 5; i++) {
    yield* TestClock.adjust(0)
    yield* Effect.yieldNow
  }
})

const run = (ops: ReadonlyArray<Op>, peers: ReadonlyArray<FakePeer>) =>
  Effect.gen(function*() {
    const cm = yield* ConnectionManager.make({ highWater: HIGH, lowWater: LOW, gracePeriod: GRACE, silencePeriod: 0 })
    const events = yield* Events.record(cm.subscribe)
    const conns: Array<FakeConnection> = []
    const protectedPeers = new Set<string>()
    let trims = 0

    const blocked = (now: number) =>
      conns.filter((c) =>
        !c.isClosed() && (protectedPeers.has(PeerId.toString(c.remotePeer)) || now - c.openedAt < GRACE)
      )
        .length
    const open = () => conns.filter((c) => !c.isClosed()).length

    for (const o of ops) {
      switch (o.op) {
        case "connect": {
          const conn = yield* fakeConnection(peers[o.peer]!)
          const scope = yield* Scope.make()
          yield* Scope.provide(cm.track(conn), scope)
          yield* Effect.forkChild(Effect.andThen(conn.closed, Scope.close(scope, Exit.void)))
          conns.push(conn)
          break
        }
        case "disconnect": {
          const c = conns[o.conn]
          if (c !== undefined) yield* c.close
          break
        }
        case "tag":
          yield* cm.tagPeer(peers[o.peer]!.peerId, "t", o.value)
          break
        case "protect":
          protectedPeers.add(PeerId.toString(peers[o.peer]!.peerId))
          yield* cm.protect(peers[o.peer]!.peerId, "p")
          break
        case "unprotect":
          protectedPeers.delete(PeerId.toString(peers[o.peer]!.peerId))
          yield* cm.unprotect(peers[o.peer]!.peerId, "p")
          break
        case "advance":
          yield* TestClock.adjust(o.millis)
          break
        case "trim": {
          yield* cm.trim
          const now = yield* Clock.currentTimeMillis
          // at most the low watermark, unless what is left is protected or young
          expect(open() <= LOW || open() === blocked(now)).toBe(true)
          break
        }
      }
      yield* settle
      const now = yield* Clock.currentTimeMillis
      for (const e of yield* events.drain) {
        if (e._tag !== "PeerTrimmed") continue
        trims++
        // a protected peer is never trimmed
        expect(protectedPeers.has(PeerId.toString(e.peerId))).toBe(false)
      }
      // settled: at most the high watermark, unless protected or young connections hold the count up
      expect(open() <= HIGH || open() === blocked(now)).toBe(true)
      expect(cm.stats().open).toBe(open())
    }
    return trims
  }).pipe(Effect.scoped, Effect.provide(TestClock.layer()))

describe("connmgr under TestClock (properties)", () => {
  it.effect(
    "any sequence of connects, disconnects, tags, protections and time: protected peers are never trimmed; the count settles within the watermarks unless protected or grace-period connections prevent it",
    () =>
      Effect.gen(function*() {
        const peers = yield* Effect.forEach(Array.from({ length: PEERS }), () => fakePeer)
        let trims = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 60, size: "max" }), async (ops) => {
              trims += await Effect.runPromise(run(ops, peers))
            }),
            { numRuns: 200 }
          )
        )
        expect(trims).toBeGreaterThan(0)
      }),
    120_000
  )
})
