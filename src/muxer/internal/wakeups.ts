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
 * `Wakeups` is a class (two fields, the deferred list allocated on first use,
 * behaviour on the prototype) so that it costs a session almost no heap: the
 * yamux session extends it (its state lives in the session object itself),
 * the mplex session holds one instance. Parking needs no session state:
 * `waitOn` / `waitIn` are plain functions.
 *
 * @internal
 */
import { Effect } from "effect"

export type Resume = (effect: Effect.Effect<void>) => void

export class Wakeups {
  /**
   * Wake-ups are being deferred (inside `atomically`). A hot path that cannot
   * afford a closure may set it itself and call `flushWakes` in a `finally`.
   */
  deferring = false
  /** the wake-ups deferred meanwhile (allocated on first use) */
  deferred: Array<Resume> | undefined = undefined

  /** Wake one parked fiber (deferred while inside `atomically`). */
  wake(resume: Resume | undefined): void {
    if (resume === undefined) return
    if (this.deferring) (this.deferred ??= []).push(resume)
    else resume(Effect.void)
  }

  /** Wake and remove every fiber parked in `waiters` (a list allocated on first use may be absent). */
  wakeAll(waiters: Array<Resume> | undefined): void {
    if (waiters === undefined || waiters.length === 0) return
    const all = waiters.splice(0, waiters.length)
    for (const w of all) this.wake(w)
  }

  /** Stop deferring and fire the deferred wake-ups (and those they cause meanwhile). */
  flushWakes(): void {
    this.deferring = false
    const deferred = this.deferred
    if (deferred === undefined) return
    while (deferred.length > 0) {
      const all = deferred.splice(0, deferred.length)
      for (const w of all) w(Effect.void)
    }
  }

  /** Run a synchronous state change with wake-ups deferred to its end. */
  atomically<A>(f: () => A): A {
    if (this.deferring) return f()
    this.deferring = true
    try {
      return f()
    } finally {
      this.flushWakes()
    }
  }
}

/** Remove `resume` from `list` (if there is a list and it is in it). */
export const removeFrom = (list: Array<Resume> | undefined, resume: Resume): void => {
  if (list === undefined) return
  const i = list.indexOf(resume)
  if (i >= 0) list.splice(i, 1)
}

/** Park until woken: `register` stores the resume, `unregister` drops it on interruption. */
export const waitOn = (
  register: (resume: Resume) => void,
  unregister: (resume: Resume) => void
): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    register(resume)
    return Effect.sync(() => unregister(resume))
  })

/** Park in a list of waiters (removed on interruption). */
export const waitIn = (list: Array<Resume>): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    list.push(resume)
    return Effect.sync(() => removeFrom(list, resume))
  })
