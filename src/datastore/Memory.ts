/**
 * The in-memory `Datastore`: for tests and simulations, and the reference the
 * SQLite store is property-tested against (`property-tests/datastore`).
 *
 * The entries live in an immutable `Trie` (effect's ternary search tree,
 * iterated in key order) held in one variable: a write builds the next trie and
 * swaps it in, so a batch is all-or-nothing by construction (it is built in
 * full, then swapped), and a query iterates the trie it started on — a
 * snapshot, unaffected by writes made while it is consumed. Keys are ASCII
 * (`Datastore.ts`), so the trie's code-unit order is SQLite's byte order.
 *
 * Bounded by nothing but the caller: it holds what it is given. After its
 * scope closes every operation fails with reason `Closed` and the entries are
 * dropped.
 *
 * @since 0.2.0
 */
import type { Scope } from "effect"
import { Effect, Layer, Option, Stream, Trie } from "effect"
import {
  type BatchOp,
  checkQuery,
  closed,
  Datastore,
  type DatastoreError,
  descendantPrefix,
  type Entry,
  type Key,
  notFound,
  type Query,
  ROOT
} from "./Datastore.ts"

export const make: Effect.Effect<Datastore["Service"], never, Scope.Scope> = Effect.gen(function*() {
  let trie: Trie.Trie<Uint8Array> | undefined = Trie.empty<Uint8Array>()
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      trie = undefined
    })
  )

  const open = <A>(f: (t: Trie.Trie<Uint8Array>) => A): Effect.Effect<A, DatastoreError> =>
    Effect.suspend(() => trie === undefined ? Effect.fail(closed()) : Effect.succeed(f(trie)))

  const apply = (t: Trie.Trie<Uint8Array>, op: BatchOp): Trie.Trie<Uint8Array> =>
    op._tag === "Put" ? Trie.insert(t, op.key, op.value.slice()) : Trie.remove(t, op.key)

  const write = (f: (t: Trie.Trie<Uint8Array>) => Trie.Trie<Uint8Array>) =>
    open((t) => {
      trie = f(t)
    })

  const range = (q: Query): Stream.Stream<readonly [string, Uint8Array], DatastoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      yield* checkQuery(q)
      const prefix = q.prefix ?? ROOT
      const entries = yield* open((t) => Trie.entriesWithPrefix(t, descendantPrefix(prefix)))
      // the root's descendants are every key but "/" itself
      const below = prefix === ROOT ? filterIterable(entries, ([k]) => k !== ROOT) : entries
      const ordered = q.order === "descending" ? Array.from(below).reverse() : below
      const s = Stream.fromIterable(ordered).pipe(Stream.drop(q.offset ?? 0))
      return q.limit === undefined ? s : Stream.take(s, q.limit)
    }))

  return Datastore.of({
    get: (k) =>
      Effect.flatMap(
        open((t) => Trie.get(t, k)),
        Option.match({ onNone: () => Effect.fail(notFound(k)), onSome: (v) => Effect.succeed(v.slice()) })
      ),
    has: (k) => open((t) => Trie.has(t, k)),
    put: (k, value) => write((t) => Trie.insert(t, k, value.slice())),
    delete: (k) => write((t) => Trie.remove(t, k)),
    batch: (ops) => write((t) => ops.reduce(apply, t)),
    query: (q = {}) => Stream.map(range(q), ([key, value]): Entry => ({ key: key as Key, value: value.slice() })),
    keys: (q = {}) => Stream.map(range(q), ([key]) => key as Key)
  })
})

/** A Memory datastore, empty when built, dropped when its scope closes. */
export const layer: Layer.Layer<Datastore> = Layer.effect(Datastore, make)

function* filterIterable<A>(it: Iterable<A>, keep: (a: A) => boolean): IterableIterator<A> {
  for (const a of it) if (keep(a)) yield a
}
