/**
 * The keep-alive scheduler shared by the yamux sessions of one Clock
 * (src/muxer/internal/keepAlive.ts; yamux spec §Ping, go-yamux's keepalive
 * loop): under TestClock, every session is ticked when its deadline comes —
 * not before, never missed — with deadlines spread over the interval, moved
 * later (a pong), moved earlier (a poke), and sessions leaving.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import * as KeepAlive from "../../src/muxer/internal/keepAlive.ts"

const MS = 1_000_000 // nanos

class Fake implements KeepAlive.Member {
  kaDeadline: number
  isOpen = true
  readonly ticks: Array<number> = []
  readonly interval: number
  constructor(deadline: number, interval: number) {
    this.kaDeadline = deadline
    this.interval = interval
  }
  keepAliveTick(now: number): void {
    this.ticks.push(now)
    this.kaDeadline = now + this.interval
  }
  wake(resume: ((effect: Effect.Effect<void>) => void) | undefined): void {
    resume?.(Effect.void)
  }
}

const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

describe("keep-alive scheduler (one fiber per Clock, a heap of deadlines)", () => {
  it.effect("200 sessions with spread deadlines are each ticked at their deadline, once per interval", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const keeper = KeepAlive.forClock(clock)
      const now = Number(clock.monotonicTimeNanosUnsafe())
      const sessions = Array.from({ length: 200 }, (_, i) => new Fake(now + (i % 50) * 10 * MS + MS, 1000 * MS))
      for (const s of sessions) yield* keeper.join(s)
      yield* settle
      expect(sessions.every((s) => s.ticks.length === 0)).toBe(true)
      // 3 intervals, 10 ms at a time
      for (let t = 0; t < 300; t++) {
        yield* TestClock.adjust("10 millis")
        yield* settle
      }
      for (const [i, s] of sessions.entries()) {
        const first = now + (i % 50) * 10 * MS + MS
        // ticked when due (at the 10 ms step after the deadline), every 1,000 ms after
        expect(s.ticks.length).toBe(3)
        expect(s.ticks[0]! - first).toBeGreaterThanOrEqual(0)
        expect(s.ticks[0]! - first).toBeLessThan(10 * MS)
        expect(s.ticks[1]! - s.ticks[0]!).toBeGreaterThanOrEqual(1000 * MS)
        expect(s.ticks[1]! - s.ticks[0]!).toBeLessThan(1010 * MS)
      }
      for (const s of sessions) {
        s.isOpen = false
        keeper.remove(s)
      }
      expect(keeper.sessions.size).toBe(0)
    }))

  it.effect("a deadline moved later is not ticked early; one poked earlier is ticked then; a removed session never", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.Clock
      const keeper = KeepAlive.forClock(clock)
      const now = Number(clock.monotonicTimeNanosUnsafe())
      const later = new Fake(now + 100 * MS, 10_000 * MS)
      const earlier = new Fake(now + 5_000 * MS, 10_000 * MS)
      const gone = new Fake(now + 100 * MS, 10_000 * MS)
      for (const s of [later, earlier, gone]) yield* keeper.join(s)
      yield* settle
      later.kaDeadline = now + 300 * MS // a pong moved it on (no poke needed for a later deadline)
      keeper.poke(later, later.kaDeadline)
      earlier.kaDeadline = now + 200 * MS
      keeper.poke(earlier, earlier.kaDeadline)
      gone.isOpen = false
      keeper.remove(gone)
      yield* TestClock.adjust("150 millis")
      yield* settle
      expect([later.ticks.length, earlier.ticks.length, gone.ticks.length]).toEqual([0, 0, 0])
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect([later.ticks.length, earlier.ticks.length]).toEqual([0, 1])
      yield* TestClock.adjust("100 millis")
      yield* settle
      expect([later.ticks.length, earlier.ticks.length, gone.ticks.length]).toEqual([1, 1, 0])
      for (const s of [later, earlier]) {
        s.isOpen = false
        keeper.remove(s)
      }
    }))
})
