/**
 * Keep-alive scheduling for muxer sessions (no spec: it serves the yamux
 * session's keep-alive pings, libp2p yamux spec §Ping, the way go-yamux's
 * `keepalive` loop does, but for every session at once).
 *
 * One fiber per `Clock` serves every session of the process that has
 * keep-alive enabled (an idle session holds no fiber and no timer of its
 * own): it sleeps until the earliest session deadline, then ticks the sessions
 * whose deadline has come (the session decides: ping, or check the pong). It
 * is woken early when a session needs it sooner, ends as soon as no session is
 * left, and the next session starts it again. Sessions are kept per Clock so
 * that a `TestClock` drives its own sessions only.
 *
 * Measured when it replaced a fiber per session (heap-per-conn, 300 idle
 * connections): the per-session fiber and its timer cost ~1.15 KiB per
 * connection; this costs a Set entry and a heap entry.
 *
 * Deadlines are kept in a binary min-heap, so a wake-up costs O(log n) per
 * session due instead of a scan of every session (with thousands of
 * connections and spread-out deadlines the scan made keep-alive O(n²) per
 * interval; a 150-node Kad simulation spent 8 % of its CPU in it). The heap
 * is lazy: a session has one live entry (`scheduled`); a later deadline is
 * not pushed (the earlier entry, when due, finds the session not due yet and
 * reschedules it), an earlier one is pushed and the old entry is skipped
 * when it comes up, as are the entries of sessions that left.
 *
 * @internal
 */
import { type Clock, Duration, Effect } from "effect"
import type { Resume } from "./wakeups.ts"

/** What the scheduler needs of a session. */
export interface Member {
  /** monotonic nanos at which the session's `keepAliveTick` is due */
  readonly kaDeadline: number
  /** false once the session has ended (then its deadline no longer counts) */
  readonly isOpen: boolean
  /** The deadline has come: act, and move `kaDeadline` on (or end the session and leave). */
  keepAliveTick(now: number): void
  /** Wake the scheduler's fiber, deferred like the session's own wake-ups. */
  wake(resume: Resume | undefined): void
}

const keepers = new WeakMap<Clock.Clock, KeepAlive>()

/** The scheduler of `clock` (created on first use). */
export const forClock = (clock: Clock.Clock): KeepAlive => {
  let keeper = keepers.get(clock)
  if (keeper === undefined) {
    keeper = new KeepAlive(clock)
    keepers.set(clock, keeper)
  }
  return keeper
}

export class KeepAlive {
  readonly clock: Clock.Clock
  readonly sessions = new Set<Member>()
  /** the deadline of each session's live heap entry */
  readonly scheduled = new Map<Member, number>()
  /** min-heap of [deadline, session] by deadline; entries not matching `scheduled` are stale */
  readonly heap: Array<readonly [number, Member]> = []
  running = false
  /** monotonic nanos at which the fiber wakes up next (while it sleeps) */
  wakeAt = Infinity
  wakeUp: Resume | undefined = undefined

  constructor(clock: Clock.Clock) {
    this.clock = clock
  }

  /** Add a session (its `kaDeadline` set), starting the fiber (detached) if it is not running. */
  join(session: Member): Effect.Effect<void> {
    if (!this.add(session)) return Effect.void
    return Effect.asVoid(Effect.forkDetach(Effect.suspend(() => this.loop())))
  }

  /** Add a session; true when the fiber must be started. */
  add(session: Member): boolean {
    this.sessions.add(session)
    this.schedule(session, session.kaDeadline)
    if (!this.running) return (this.running = true)
    this.wakeIfSooner(session, session.kaDeadline)
    return false
  }

  remove(session: Member): void {
    if (!this.sessions.delete(session)) return
    this.scheduled.delete(session)
    if (this.sessions.size === 0) {
      this.heap.length = 0
      this.wakeIfSooner(session, -Infinity)
    }
  }

  /** A session's deadline moved: schedule it, and wake the fiber early if it comes before its wake-up. */
  poke(session: Member, deadline: number): void {
    if (!this.sessions.has(session)) return
    this.schedule(session, deadline)
    this.wakeIfSooner(session, deadline)
  }

  /** Push an entry when `deadline` is earlier than the session's live one (or it has none). */
  schedule(session: Member, deadline: number): void {
    const current = this.scheduled.get(session)
    if (current !== undefined && current <= deadline) return
    this.scheduled.set(session, deadline)
    push(this.heap, [deadline, session])
  }

  /** Wake the fiber early if `deadline` comes before its wake-up (deferred like the session's wake-ups). */
  wakeIfSooner(session: Member, deadline: number): void {
    if (deadline >= this.wakeAt) return
    const w = this.wakeUp
    this.wakeUp = undefined
    this.wakeAt = Infinity
    session.wake(w)
  }

  /** The deadline of the earliest live entry (stale ones at the top are dropped). */
  nextDeadline(): number {
    const heap = this.heap
    while (heap.length > 0) {
      const [deadline, session] = heap[0]!
      if (this.scheduled.get(session) === deadline) return deadline
      pop(heap)
    }
    return Infinity
  }

  loop(): Effect.Effect<void> {
    const now = Number(this.clock.monotonicTimeNanosUnsafe())
    while (this.nextDeadline() <= now) {
      const [, session] = pop(this.heap)!
      this.scheduled.delete(session)
      if (!session.isOpen) continue
      if (session.kaDeadline <= now) session.keepAliveTick(now)
      if (session.isOpen && this.sessions.has(session)) this.schedule(session, session.kaDeadline)
    }
    if (this.sessions.size === 0) {
      this.running = false
      this.heap.length = 0
      this.scheduled.clear()
      keepers.delete(this.clock)
      return Effect.void
    }
    const next = this.nextDeadline()
    this.wakeAt = next
    const wait = Effect.callback<void>((resume) => {
      this.wakeUp = resume
      return Effect.sync(() => {
        if (this.wakeUp === resume) this.wakeUp = undefined
      })
    })
    const sleep = next === Infinity
      ? wait
      : Effect.asVoid(Effect.timeoutOption(wait, Duration.nanos(BigInt(Math.ceil(next - now)))))
    return Effect.flatMap(sleep, () => {
      this.wakeUp = undefined
      this.wakeAt = Infinity
      return this.loop()
    })
  }
}

// ---- a binary min-heap of [deadline, session] -------------------------------

const push = (heap: Array<readonly [number, Member]>, entry: readonly [number, Member]): void => {
  heap.push(entry)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (heap[parent]![0] <= entry[0]) break
    heap[i] = heap[parent]!
    i = parent
  }
  heap[i] = entry
}

const pop = (heap: Array<readonly [number, Member]>): readonly [number, Member] | undefined => {
  const top = heap[0]
  const last = heap.pop()
  if (top === undefined || last === undefined || heap.length === 0) return top
  let i = 0
  for (;;) {
    const l = 2 * i + 1
    if (l >= heap.length) break
    const r = l + 1
    const c = r < heap.length && heap[r]![0] < heap[l]![0] ? r : l
    if (heap[c]![0] >= last[0]) break
    heap[i] = heap[c]!
    i = c
  }
  heap[i] = last
  return top
}
