/**
 * Datastore: the node's key/value contract over hierarchical keys (`/peers/…`,
 * `/dht/records/…`, `/dht/providers/…`), after go-datastore (`Datastore`,
 * `Batching`, `query.Query`, `Key`). Two implementations: `datastore/Memory.ts`
 * (tests, simulation) and `datastore/Sqlite.ts` (the node's file).
 *
 * **Own contract, not effect's `KeyValueStore`.** `effect/persistence/KeyValueStore`
 * was checked (4.1.0, `layerSql`): it has `get`/`set`/`remove`/`has`,
 * `clearPrefix` and `keys` — an unordered snapshot of *every* key, with no
 * values, no limit, no range and no stream — and no batch: `layerSql` runs each
 * call as its own statement, so a peer's record and its addresses cannot change
 * together. Its `KeyValueStoreError` has no reason to tell "missing" from "disk
 * full" from "locked by another process". What the node needs is exactly what
 * it lacks: ordered prefix queries streamed with a limit (a routing table or a
 * provider set is read one prefix at a time), all-or-nothing batches, and typed
 * reasons. Wrapping it would still leave the SQLite layer to write its own
 * range scans and transactions, so the wrapper would add nothing but a layer
 * to step through; the contract is ours, and an adapter to `KeyValueStore` is
 * a few lines if an Effect module ever asks for one.
 *
 * **Keys** (go-datastore `Key`): a leading `/`, segments separated by `/`, no
 * empty segment (so no `//` and no trailing `/`, except the root `/` itself),
 * no `.` or `..` segment. Characters are printable ASCII (`!`…`~`): binary
 * names (multihashes, CIDs) are encoded by the caller, as go-libp2p-kad-dht
 * does with base32. The ASCII rule gives one order everywhere — SQLite's
 * `BINARY` collation compares UTF-8 bytes while JS compares UTF-16 units, and
 * the two disagree above U+FFFF — so `query` is ordered the same by every
 * implementation. Prefixes work on segment boundaries: `/a` is an ancestor of
 * `/a/b` but not of `/ab`, and a query by prefix `/a` yields the keys strictly
 * below it (`/a/b`, `/a/b/c`), never `/a` itself (go-datastore `query.Query.Prefix`).
 *
 * **Values** are bytes; an implementation copies them in and out, so a caller
 * mutating its array after `put` (or the array `get` returned) changes nothing
 * stored.
 *
 * **Errors**: one `DatastoreError` with a `reason`, the key or file it concerns
 * in `message`, the file in `path` where one is involved, and the lower error
 * in `cause`.
 *
 * @since 0.2.0
 */
import type { Brand, Stream } from "effect"
import { Context, Effect, Schema } from "effect"

// --- keys ------------------------------------------------------------------

/** A validated hierarchical key (see the module doc). */
export type Key = string & Brand.Brand<"effect-libp2p/datastore/Key">

/** The root key `/`: a query by it yields every key but `/`. */
export const ROOT = "/" as Key

const SEGMENT = /^[!-.0-~]+$/ // printable ASCII without "/"

/** Why `s` is not a valid key, or `undefined` when it is one. */
export const invalidKeyReason = (s: string): string | undefined => {
  if (s === "/") return undefined
  if (!s.startsWith("/")) return "a key starts with /"
  const segments = s.slice(1).split("/")
  for (const segment of segments) {
    if (segment.length === 0) return "a key has no empty segment (no // and no trailing /)"
    if (segment === "." || segment === "..") return "a key has no . or .. segment"
    if (!SEGMENT.test(segment)) return "a key is printable ASCII (! to ~)"
  }
  return undefined
}

export const isKey = (s: string): s is Key => invalidKeyReason(s) === undefined

/** Validates `s` as a key. */
export const key = (s: string): Effect.Effect<Key, DatastoreError> => {
  const why = invalidKeyReason(s)
  return why === undefined
    ? Effect.succeed(s as Key)
    : Effect.fail(new DatastoreError({ reason: "InvalidKey", message: `invalid key ${JSON.stringify(s)}: ${why}` }))
}

/** The key below `parent` named by `segments` (each one validated as a segment). */
export const child = (parent: Key, ...segments: ReadonlyArray<string>): Effect.Effect<Key, DatastoreError> =>
  key((parent === ROOT ? "" : parent) + "/" + segments.join("/"))

/** The segments of a key (`/a/b` → `["a", "b"]`; the root has none). */
export const segments = (k: Key): ReadonlyArray<string> => k === ROOT ? [] : k.slice(1).split("/")

/** The parent of a key (the root is its own parent). */
export const parent = (k: Key): Key => {
  const i = k.lastIndexOf("/")
  return (i <= 0 ? ROOT : k.slice(0, i)) as Key
}

/** The last segment of a key (`""` for the root). */
export const name = (k: Key): string => k.slice(k.lastIndexOf("/") + 1)

/** `ancestor` is a strict ancestor of `k`, on segment boundaries (`/a` of `/a/b`, not of `/ab`). */
export const isAncestor = (ancestor: Key, k: Key): boolean =>
  ancestor === ROOT ? k !== ROOT : k.length > ancestor.length && k.startsWith(ancestor) && k[ancestor.length] === "/"

/**
 * The string every strict descendant of `prefix` starts with: `prefix + "/"`,
 * or `/` for the root (whose descendants are every key but `/`).
 * In byte order the descendants are exactly the keys `k` with
 * `lo < k < hi`, `lo = descendantPrefix(prefix)` and `hi` = `lo` with its
 * last `/` raised to `0` (the next ASCII character).
 */
export const descendantPrefix = (prefix: Key): string => prefix === ROOT ? "/" : prefix + "/"

// --- data ------------------------------------------------------------------

export interface Entry {
  readonly key: Key
  readonly value: Uint8Array
}

/** A prefix query (go-datastore `query.Query`, without filters: callers filter the stream). */
export interface Query {
  /** Yield only the keys strictly below this one. Default: the root, so every key but `/`. */
  readonly prefix?: Key | undefined
  /** At most this many entries (an integer ≥ 0). Default: no limit. */
  readonly limit?: number | undefined
  /** Skip this many entries first (an integer ≥ 0). Default: 0. */
  readonly offset?: number | undefined
  /** By key, ascending (the default) or descending. */
  readonly order?: "ascending" | "descending" | undefined
}

/** One write of a batch. */
export type BatchOp =
  | { readonly _tag: "Put"; readonly key: Key; readonly value: Uint8Array }
  | { readonly _tag: "Delete"; readonly key: Key }

export const putOp = (key: Key, value: Uint8Array): BatchOp => ({ _tag: "Put", key, value })
export const deleteOp = (key: Key): BatchOp => ({ _tag: "Delete", key })

// --- errors ----------------------------------------------------------------

export const DatastoreErrorReason = Schema.Literals([
  /** `get` of a key that is not stored. */
  "NotFound",
  /** An invalid key string, or an invalid query (negative limit…). */
  "InvalidKey",
  "InvalidQuery",
  /** The store's scope has closed. */
  "Closed",
  /** The file is not a database, or fails its integrity check. */
  "Corrupt",
  /** The file is a database of another program (or of a newer version of this one). */
  "Foreign",
  /** Another connection (another process, or another store in this one) holds the file. */
  "Locked",
  /** The operating system refused (missing directory, permissions, disk full…). */
  "Io"
])
export type DatastoreErrorReason = typeof DatastoreErrorReason.Type

export class DatastoreError extends Schema.TaggedError<DatastoreError>()("DatastoreError", {
  reason: DatastoreErrorReason,
  message: Schema.String,
  /** The file concerned, for the errors of a file-backed store. */
  path: Schema.optional(Schema.String),
  cause: Schema.optional(Schema.Defect())
}) {}

export const notFound = (k: Key): DatastoreError =>
  new DatastoreError({ reason: "NotFound", message: `no value for key ${k}` })

export const closed = (): DatastoreError => new DatastoreError({ reason: "Closed", message: "the datastore is closed" })

/** Checks `limit` and `offset` (integers ≥ 0, or absent). */
export const checkQuery = (q: Query): Effect.Effect<void, DatastoreError> => {
  for (const [name, n] of [["limit", q.limit], ["offset", q.offset]] as const) {
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= 0)) {
      return Effect.fail(
        new DatastoreError({ reason: "InvalidQuery", message: `query ${name} must be an integer >= 0, got ${n}` })
      )
    }
  }
  return Effect.void
}

// --- the service -----------------------------------------------------------

export class Datastore extends Context.Service<Datastore, {
  /** The value of `key`; fails with reason `NotFound` when there is none. */
  readonly get: (key: Key) => Effect.Effect<Uint8Array, DatastoreError>
  readonly has: (key: Key) => Effect.Effect<boolean, DatastoreError>
  /** Stores `value` at `key`; once this succeeds the write is durable (as the implementation defines it). */
  readonly put: (key: Key, value: Uint8Array) => Effect.Effect<void, DatastoreError>
  /** Removes `key`; removing a missing key succeeds. */
  readonly delete: (key: Key) => Effect.Effect<void, DatastoreError>
  /** Applies every op, in order, all or nothing. */
  readonly batch: (ops: ReadonlyArray<BatchOp>) => Effect.Effect<void, DatastoreError>
  /** The entries strictly below `query.prefix`, ordered by key. */
  readonly query: (query?: Query) => Stream.Stream<Entry, DatastoreError>
  /** `query` without the values (keys-only: the implementation does not read them). */
  readonly keys: (query?: Query) => Stream.Stream<Key, DatastoreError>
}>()("effect-libp2p/Datastore") {}
