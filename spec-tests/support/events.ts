/**
 * Record the events of a service's `subscribe` (Host, Identify,
 * ConnectionManager, Registrar) from now on, in the current scope.
 */
import { Effect, type Scope, Stream } from "effect"

export interface Recorder<A> {
  /** Everything received so far (appended as it comes). */
  readonly seen: ReadonlyArray<A>
  /** Let the recorder catch up with what has been published, then hand over (and forget) what came since the last drain. */
  readonly drain: Effect.Effect<Array<A>>
}

export const record = <A>(
  subscribe: Effect.Effect<Stream.Stream<A>, never, Scope.Scope>
): Effect.Effect<Recorder<A>, never, Scope.Scope> =>
  Effect.gen(function*() {
    // subscribed once this returns: nothing published from here on is missed
    const events = yield* subscribe
    const seen: Array<A> = []
    let drained = 0
    yield* Effect.forkScoped(Stream.runForEach(events, (a) => Effect.sync(() => void seen.push(a))))
    const drain = Effect.gen(function*() {
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow
      const fresh = seen.slice(drained)
      drained = seen.length
      return fresh
    })
    return { seen, drain }
  })
