/**
 * Wake-up machinery for muxer sessions (no spec: implementation support for
 * the StreamMuxer contract's single-threaded session design, docs/ARCHITECTURE.md
 * §3): fibers that wait on session state (a stream's reader, a writer waiting
 * for the outbox to drain, `accept`, the session's writer fiber) park as a
 * `Resume` callback, and state changes wake them.
 *
 * While a batch of received bytes is being parsed, wake-ups are deferred and
 * fired once the whole batch is done (`atomically`), so a woken fiber — which
 * Effect may resume synchronously — always sees a consistent state, and many
 * frames for one stream cost one wake-up.
 *
 * Used by the mplex session (`../mplex/session.ts`); the yamux session carries
 * its own copy of the same pattern.
 *
 * @internal
 */
import { Effect } from "effect"

export type Resume = (effect: Effect.Effect<void>) => void

export interface Wakeups {
  /** Wake one parked fiber (deferred while inside `atomically`). */
  readonly wake: (resume: Resume | undefined) => void
  /** Wake and remove every fiber parked in `waiters`. */
  readonly wakeAll: (waiters: Array<Resume>) => void
  /** Run a synchronous state change with wake-ups deferred to its end. */
  readonly atomically: <A>(f: () => A) => A
  /** Park until woken: `register` stores the resume, `unregister` drops it on interruption. */
  readonly waitOn: (register: (resume: Resume) => void, unregister: (resume: Resume) => void) => Effect.Effect<void>
  /** Park in a list of waiters (removed on interruption). */
  readonly waitIn: (list: Array<Resume>) => Effect.Effect<void>
}

export const make = (): Wakeups => {
  let deferring = false
  const deferred: Array<Resume> = []
  const wake = (resume: Resume | undefined): void => {
    if (resume === undefined) return
    if (deferring) deferred.push(resume)
    else resume(Effect.void)
  }
  const wakeAll = (waiters: Array<Resume>): void => {
    if (waiters.length === 0) return
    const all = waiters.splice(0, waiters.length)
    for (const w of all) wake(w)
  }
  const flush = (): void => {
    deferring = false
    while (deferred.length > 0) {
      const all = deferred.splice(0, deferred.length)
      for (const w of all) w(Effect.void)
    }
  }
  const atomically = <A>(f: () => A): A => {
    if (deferring) return f()
    deferring = true
    try {
      return f()
    } finally {
      flush()
    }
  }
  const waitOn = (register: (resume: Resume) => void, unregister: (resume: Resume) => void): Effect.Effect<void> =>
    Effect.callback<void>((resume) => {
      register(resume)
      return Effect.sync(() => unregister(resume))
    })
  const waitIn = (list: Array<Resume>): Effect.Effect<void> =>
    waitOn((r) => list.push(r), (r) => {
      const i = list.indexOf(r)
      if (i >= 0) list.splice(i, 1)
    })
  return { wake, wakeAll, atomically, waitOn, waitIn }
}
