/**
 * Scope-bound synchronous releases: the per-connection (and per-stream)
 * bookkeeping of the ResourceManager, the ConnectionManager, the Upgrader and
 * the Host — counters, set memberships, event publication — is given back
 * when the scope it was taken in closes, through ONE scope finalizer per scope
 * that runs every {@link Releasable} added to that scope, last added first.
 *
 * Not a libp2p spec: this is how the connections spec §Connection limits
 * bookkeeping stays cheap for an idle connection (one small object per
 * reservation, one finalizer per scope, instead of an `acquireRelease` closure
 * and fiber context each).
 *
 * Guarantees: a releasable is added in the same synchronous step as the
 * reservation it undoes (no interruption point between them), runs exactly
 * once when the scope closes (whatever the exit: success, failure,
 * interruption), and runs at once when the scope is already closed. All the
 * releases of a scope run at the position of the first one added, in reverse
 * order of addition.
 *
 * @since 0.1.0
 */
import { Effect, type Exit, Scope } from "effect"

/** Something given back synchronously, once per time it was added. */
export interface Releasable {
  readonly release: () => void
}

/** The releases of one scope; its `finalize` is the scope's one finalizer for them. */
class Releases {
  readonly scope: Scope.Scope
  /** undefined once released */
  items: Array<Releasable> | undefined
  readonly finalize: (exit: Exit.Exit<unknown, unknown>) => Effect.Effect<void>
  constructor(scope: Scope.Scope, first: Releasable) {
    this.scope = scope
    this.items = [first]
    this.finalize = () => {
      this.releaseAll()
      return Effect.void
    }
  }
  releaseAll(): void {
    const items = this.items
    if (items === undefined) return
    this.items = undefined
    lists.delete(this.scope)
    for (let i = items.length - 1; i >= 0; i--) items[i]!.release()
  }
}

const lists = new WeakMap<Scope.Scope, Releases>()

/**
 * `items` with `item` appended, in a new array of exactly that length (a
 * push-grown or spread-built array keeps spare room: ~17 slots).
 */
export const append = <A>(items: ReadonlyArray<A>, item: A): Array<A> => {
  const n = items.length
  const out = new Array<A>(n + 1)
  for (let i = 0; i < n; i++) out[i] = items[i]!
  out[n] = item
  return out
}

/**
 * Add `r` to `scope`'s releases, registering the scope's one finalizer on the
 * first (release it at once if the scope is closed). Works at CALL time: call
 * it in the synchronous step that made the reservation `r` undoes, and run the
 * Effect it returns right after, uninterruptibly (see {@link acquire}).
 */
export const addNow = (scope: Scope.Scope, r: Releasable): Effect.Effect<void> => {
  if (scope.state._tag === "Closed") {
    r.release()
    return Effect.void
  }
  const list = lists.get(scope)
  if (list !== undefined && list.items !== undefined) {
    // few per scope: an exact-size copy (a push-grown array keeps room for 17)
    if (list.items.length < 16) list.items = append(list.items, r)
    else list.items.push(r)
    return Effect.void
  }
  const fresh = new Releases(scope, r)
  lists.set(scope, fresh)
  // registers at once on an open scope; runs `finalize` at once on a closed one
  return Scope.addFinalizerExit(scope, fresh.finalize)
}

/** A refused reservation, for {@link acquire}. */
export class Fail<E> {
  readonly error: E
  constructor(error: E) {
    this.error = error
  }
}

/**
 * `reserve()` (synchronous: the Releasable that undoes it, or a {@link Fail})
 * with its release added to the current scope, atomically (uninterruptible).
 */
export const acquire = <R extends Releasable, E = never>(
  reserve: () => R | Fail<E>
): Effect.Effect<R, E, Scope.Scope> =>
  Effect.uninterruptible(Effect.flatMap(Effect.scope, (scope) => {
    const r = reserve()
    if (r instanceof Fail) return Effect.fail(r.error)
    return Effect.as(addNow(scope, r), r)
  }))
