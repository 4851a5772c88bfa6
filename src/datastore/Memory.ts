/**
 * The in-memory `Datastore`: for tests and simulations, and the reference the
 * SQLite store is property-tested against (`property-tests/datastore`).
 *
 * The values live in a `Map`; the keys also in an array kept sorted. A key
 * added is only noted (`added`); the sorted array takes it in before the next
 * query or removal reads it: a few by binary search and splice, more by one
 * sort and merge. So a run of puts of new keys costs a map write each, not a
 * splice each (a splice is a memmove of the array: with one per new key, puts
 * of 5,000 new keys ran at a third of today's rate; `bench/store.ts`). A removal settles the added keys, then
 * splices. Values are copied in (into shared slabs, `Arena`) and out (a new
 * array per get or query entry). A get is a map lookup; a query finds its range by binary search and copies that range's
 * entries (up to `offset + limit`) before yielding any: it is a snapshot,
 * unaffected by writes made while it is consumed. A batch is applied in one
 * synchronous step, after every value has been copied, so no other fiber sees
 * it half done. Keys are ASCII (`Datastore.ts`), so JS string order is
 * SQLite's byte order.
 *
 * Costs: get and put O(1), query O(log n + k) plus the settling of keys added
 * since the last one (at most O(n + m log m) for m added keys; a splice each
 * while m ≤ 8), removing a key O(n) for the splice (a memmove: about 50 µs at
 * 100,000 keys).
 * Bounded by nothing but the caller: it holds what it is given. After its
 * scope closes every operation fails with reason `Closed` and the entries are
 * dropped.
 *
 * An immutable `Trie` (effect's ternary search tree) was tried first: snapshots
 * for free, but gets and scans were 2-5× slower than the SQLite store's.
 *
 * @since 0.2.0
 */
import type { Scope } from "effect"
import { Effect, Layer, Stream } from "effect"
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

/** The index of the first key in `sorted` that is `>= k` (`strict`: `> k`). */
const lowerBound = (sorted: ReadonlyArray<string>, k: string, strict: boolean): number => {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const m = sorted[mid]!
    if (m < k || (strict && m === k)) lo = mid + 1
    else hi = mid
  }
  return lo
}

interface State {
  readonly values: Map<string, Uint8Array>
  arena: Arena
  /** Every key but those in `added`, in order. */
  sorted: Array<string>
  /** Keys added since `sorted` was last brought up to date, in no order (each once, each in `values`). */
  added: Array<string>
}

/**
 * A plain `Uint8Array` with `v`'s bytes. Not `v.slice()`: a Node `Buffer` is
 * a `Uint8Array` whose `slice` is a view on the same memory, so a Buffer put
 * was stored uncopied. The constructor is also the fastest copy measured
 * (1.24M/s for 256 bytes kept, against 1.1M/s for `slice` or `set`): most of
 * a copy is the allocation of its ArrayBuffer.
 */
const copy = (v: Uint8Array): Uint8Array => new Uint8Array(v)

// --- the arena: where stored values live -------------------------------------

/** Values shorter than this are stored in shared slabs; longer ones get their own buffer. */
const SLAB_VALUE_LIMIT = 4096
const SLAB_BYTES = 64 * 1024

/**
 * The stored copies of values shorter than `SLAB_VALUE_LIMIT`: views on
 * 64 KiB slabs, filled in order and never written again. A view costs no
 * ArrayBuffer of its own, which is most of a copy's cost (a copy into a slab
 * runs at 4.8M/s for 256 bytes, a `new Uint8Array` at 1.7M/s). A slab lives
 * while a value (or a query's snapshot) still views it, so overwritten and
 * removed values leave garbage: when the slabs hold more than twice the live
 * bytes (plus four slabs), the live values are copied into new slabs, which
 * bounds the slabs at 2× the live bytes plus 256 KiB. That compaction is
 * O(live bytes) and comes only after at least as many bytes were written
 * since the last one.
 */
interface Arena {
  slab: ArrayBuffer
  used: number
  /** Bytes of every slab allocated since the last compaction. */
  slabBytes: number
  /** Bytes of the values stored in slabs. */
  liveBytes: number
}

const newArena = (): Arena => ({ slab: new ArrayBuffer(SLAB_BYTES), used: 0, slabBytes: SLAB_BYTES, liveBytes: 0 })

const inSlab = (v: Uint8Array): boolean => v.length < SLAB_VALUE_LIMIT

/** A stored copy of `v` (the arena's, or its own buffer). */
const store = (a: Arena, v: Uint8Array): Uint8Array => {
  if (!inSlab(v)) return copy(v)
  if (a.used + v.length > SLAB_BYTES) {
    a.slab = new ArrayBuffer(SLAB_BYTES)
    a.used = 0
    a.slabBytes += SLAB_BYTES
  }
  const c = new Uint8Array(a.slab, a.used, v.length)
  c.set(v)
  a.used += v.length
  a.liveBytes += v.length
  return c
}

/** Up to this many added keys are spliced in one by one; more are sorted and merged in one pass. */
const SPLICE_AT_MOST = 8

/** Brings `sorted` up to date with `added` (before a query or a removal reads it). */
const settle = (s: State): void => {
  const added = s.added
  if (added.length === 0) return
  s.added = []
  if (added.length <= SPLICE_AT_MOST) {
    for (const k of added) s.sorted.splice(lowerBound(s.sorted, k, false), 0, k)
    return
  }
  added.sort()
  const old = s.sorted
  const merged = new Array<string>(old.length + added.length)
  let i = 0
  let j = 0
  let o = 0
  while (i < old.length && j < added.length) merged[o++] = old[i]! < added[j]! ? old[i++]! : added[j++]!
  while (i < old.length) merged[o++] = old[i++]!
  while (j < added.length) merged[o++] = added[j++]!
  s.sorted = merged
}

export const make: Effect.Effect<Datastore["Service"], never, Scope.Scope> = Effect.gen(function*() {
  let state: State | undefined = { values: new Map(), arena: newArena(), sorted: [], added: [] }
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      state = undefined
    })
  )

  /** `f` on the open state, as one step (`Closed` after the scope). */
  const open = <A>(f: (s: State) => Effect.Effect<A, DatastoreError>): Effect.Effect<A, DatastoreError> =>
    Effect.suspend(() => state === undefined ? Effect.fail(closed()) : f(state))

  /** Copies the live values into new slabs once the old ones are mostly garbage (see `Arena`). */
  const compact = (s: State) => {
    if (s.arena.slabBytes <= 2 * s.arena.liveBytes + 4 * SLAB_BYTES) return
    const fresh = newArena()
    for (const [k, v] of s.values) if (inSlab(v)) s.values.set(k, store(fresh, v))
    s.arena = fresh
  }
  const forget = (s: State, old: Uint8Array) => {
    if (inSlab(old)) s.arena.liveBytes -= old.length
  }
  const put = (s: State, k: string, stored: Uint8Array) => {
    const old = s.values.get(k)
    if (old === undefined) s.added.push(k)
    else forget(s, old)
    s.values.set(k, stored)
  }
  const remove = (s: State, k: string) => {
    const old = s.values.get(k)
    if (old === undefined) return
    settle(s)
    forget(s, old)
    s.values.delete(k)
    s.sorted.splice(lowerBound(s.sorted, k, false), 1)
  }

  /** The snapshot of a query's entries (after offset and limit), in its order. */
  const select = (q: Query) =>
    open((s) => {
      settle(s)
      const lo = descendantPrefix(q.prefix ?? ROOT)
      const start = lowerBound(s.sorted, lo, true) // the root "/" itself is not below the root
      const end = lowerBound(s.sorted, lo.slice(0, -1) + "0", false)
      const offset = q.offset ?? 0
      const count = Math.max(0, Math.min(end - start - offset, q.limit ?? Number.MAX_SAFE_INTEGER))
      const keys = q.order === "descending"
        ? s.sorted.slice(end - offset - count, end - offset).reverse()
        : s.sorted.slice(start + offset, start + offset + count)
      return Effect.succeed(keys.map((k) => [k as Key, s.values.get(k)!] as const))
    })

  const range = (q: Query): Stream.Stream<readonly [Key, Uint8Array], DatastoreError> =>
    Stream.unwrap(Effect.map(Effect.andThen(checkQuery(q), select(q)), Stream.fromIterable))

  return Datastore.of({
    get: (k) =>
      open((s) => {
        const v = s.values.get(k)
        return v === undefined ? Effect.fail(notFound(k)) : Effect.succeed(copy(v))
      }),
    has: (k) => open((s) => Effect.succeed(s.values.has(k))),
    put: (k, value) =>
      open((s) => {
        put(s, k, store(s.arena, value))
        compact(s)
        return Effect.void
      }),
    delete: (k) =>
      open((s) => {
        remove(s, k)
        compact(s)
        return Effect.void
      }),
    batch: (ops) =>
      open((s) => {
        const copies = ops.map((op: BatchOp) => op._tag === "Put" ? store(s.arena, op.value) : undefined)
        ops.forEach((op, i) => op._tag === "Put" ? put(s, op.key, copies[i]!) : remove(s, op.key))
        compact(s)
        return Effect.void
      }),
    query: (q = {}) => Stream.map(range(q), ([key, value]): Entry => ({ key, value: copy(value) })),
    keys: (q = {}) => Stream.map(range(q), ([key]) => key)
  })
})

/** A Memory datastore, empty when built, dropped when its scope closes. */
export const layer: Layer.Layer<Datastore> = Layer.effect(Datastore, make)
