/**
 * The SQLite `Datastore`: one file, through `@effect/sql-sqlite-node`
 * (Effect's SQL client on `node:sqlite`, no native addon). The node's
 * `datastore.sqlite`.
 *
 * **Schema.** One table, `datastore (key TEXT PRIMARY KEY, value BLOB) STRICT,
 * WITHOUT ROWID`: the rows are stored in key order, so a prefix query is one
 * range scan (`key > prefix/ AND key < prefix0`, `Datastore.descendantPrefix`).
 * It is created and changed by effect/sql's `Migrator` (table
 * `datastore_migrations`); a file whose migrations are newer than this code
 * knows is refused (reason `Foreign`) rather than read with the wrong schema.
 *
 * **Opening** never writes to a file that is not ours. In order:
 * 1. `PRAGMA locking_mode = EXCLUSIVE`, then `BEGIN EXCLUSIVE`: SQLite takes a
 *    POSIX lock on the file and, in this mode, keeps it until the connection
 *    closes. A second opener — another process, or another store in this one
 *    (SQLite tracks locks per inode) — fails at once with reason `Locked`
 *    (after `lockTimeout`, default 0). The operating system drops the lock when
 *    the process dies, `kill -9` included, so there is no stale lock file to
 *    clean up (a pid lock file would need a liveness check, and pids are
 *    reused). The cost: nothing else can read the file while the node runs
 *    (kubo's `repo.lock` has the same effect).
 * 2. Inside that transaction, before anything is written: a file that is not
 *    a database (SQLite's `NOTADB`) is `Corrupt`; a database whose
 *    `application_id` is not ours (`lp2p`), or is unset on a database that
 *    already has tables, is `Foreign`; an empty or new file gets our
 *    `application_id`. Then `PRAGMA quick_check` (or `integrity_check`, option
 *    `integrityCheck`): anything but `ok` is `Corrupt`. Each error names the file.
 * 3. `journal_mode = WAL` (in exclusive mode WAL needs no `-shm` file), the
 *    `synchronous` level, the migrations.
 *
 * **Durability: `synchronous = FULL` by default.** A write is acknowledged
 * (its Effect succeeds) after its transaction has committed. With WAL, `NORMAL`
 * already survives `kill -9` — the commit is in the WAL through `write(2)`
 * before it is acknowledged, and the kernel keeps it whatever becomes of the
 * process — but an OS crash or power loss can drop the last commits, because
 * `NORMAL` syncs the WAL only at checkpoints. `FULL` syncs the WAL at every
 * commit, so an acknowledged write survives power loss too: that is what an
 * operator reads "acknowledged" to mean. The fsync cost is paid per
 * transaction, not per write, because writes are group-committed (below);
 * `bench/store.ts` (`npm run bench -- --only=store`) measures FULL. Pass `synchronous: "normal"` for a
 * store that only needs to survive the process.
 *
 * **One writer, batched transactions.** Every write (`put`, `delete`, `batch`)
 * is a request on a bounded queue (`maxPendingWrites`, default 1,024;
 * `put` waits when it is full). One fiber takes whatever requests are waiting
 * and commits them in one transaction, then acknowledges each: under load, N
 * concurrent puts cost one commit and one fsync, and a single put alone is not
 * delayed. Each request is all-or-nothing; when a group's transaction fails, its
 * requests are retried one per transaction, so a request fails only for its own
 * fault. Reads share the one connection (the client serializes it), so
 * they see only committed writes, and a put that succeeded is seen by the next
 * get.
 *
 * **Queries** read in pages of `pageSize` rows (default 256) by key ranges
 * (keyset pagination: the next page starts after the last key seen; SQL
 * `OFFSET` serves only the query's own `offset`, on the first page), so a
 * long query holds no transaction
 * while its consumer is slow; each page is consistent, and a write made while
 * the stream is consumed is seen by later pages if its key is beyond the
 * cursor. Each key is yielded at most once, in order.
 *
 * When the scope closes, writes already queued are committed, later ones fail
 * with reason `Closed`, and the connection closes (SQLite checkpoints the WAL).
 *
 * @since 0.2.0
 */
import { SqliteClient } from "@effect/sql-sqlite-node"
import type { Cause, Scope } from "effect"
import { Deferred, Duration, Effect, Fiber, Layer, Option, Queue, Stream } from "effect"
import * as Reactivity from "effect/reactivity/Reactivity"
import * as Migrator from "effect/sql/Migrator"
import * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import {
  type BatchOp,
  checkQuery,
  closed,
  Datastore,
  DatastoreError,
  type DatastoreErrorReason,
  descendantPrefix,
  type Entry,
  type Key,
  notFound,
  type Query
} from "./Datastore.ts"

export interface SqliteOptions {
  /** The database file (created if missing; its directory must exist). */
  readonly filename: string
  /** `full` (default: an acknowledged write survives power loss) or `normal` (survives the process only). */
  readonly synchronous?: "full" | "normal" | undefined
  /** On open: `quick` (default, `PRAGMA quick_check`), `full` (`integrity_check`) or `none`. */
  readonly integrityCheck?: "quick" | "full" | "none" | undefined
  /** How long to wait for another holder of the file before `Locked`. Default 0 (refuse at once). */
  readonly lockTimeout?: Duration.Input | undefined
  /** Writes waiting for the writer before `put` waits too. Default 1,024. */
  readonly maxPendingWrites?: number | undefined
  /** Rows read per query page. Default 256. */
  readonly pageSize?: number | undefined
}

/** The defaults of `SqliteOptions`. */
export const defaults = {
  synchronous: "full",
  integrityCheck: "quick",
  lockTimeout: Duration.zero,
  maxPendingWrites: 1024,
  pageSize: 256
} as const

/** `PRAGMA application_id` of our files: "lp2p" in ASCII. */
export const APPLICATION_ID = 0x6c703270

const MIGRATIONS_TABLE = "datastore_migrations"

/** The schema, one migration per change: never edit a shipped one, add the next. */
const MIGRATIONS: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "1_datastore": Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(
      "CREATE TABLE datastore (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) STRICT, WITHOUT ROWID"
    ).raw)
}
const LATEST_MIGRATION = Object.keys(MIGRATIONS).length

// --- errors ------------------------------------------------------------------

/** SQLite's primary result code behind a SqlError (`errcode & 0xff`), if any. */
const sqliteCode = (e: SqlError): number | undefined => {
  const cause: unknown = e.reason.cause
  if (typeof cause !== "object" || cause === null) return undefined
  const code = (cause as { readonly errcode?: unknown }).errcode ?? (cause as { readonly errno?: unknown }).errno
  return typeof code === "number" ? code & 0xff : undefined
}

const SQLITE_BUSY = 5
const SQLITE_LOCKED = 6
const SQLITE_CORRUPT = 11
const SQLITE_NOTADB = 26

const reasonOf = (e: SqlError): DatastoreErrorReason => {
  switch (sqliteCode(e)) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "Locked"
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return "Corrupt"
    default:
      return "Io"
  }
}

const describe: Record<DatastoreErrorReason, string> = {
  NotFound: "not found",
  InvalidKey: "invalid key",
  InvalidQuery: "invalid query",
  Closed: "closed",
  Corrupt: "is not a valid datastore file (corrupt, or not a SQLite database); it was left as it is",
  Foreign: "belongs to another program; it was left as it is",
  Locked: "is in use by another process (or another store in this one)",
  Io: "could not be read or written"
}

const fileError = (
  path: string,
  reason: DatastoreErrorReason,
  detail: string,
  cause?: unknown
): DatastoreError =>
  new DatastoreError({
    reason,
    path,
    message: `datastore ${path} ${describe[reason]}: ${detail}`,
    ...(cause === undefined ? {} : { cause })
  })

const fromSql = (path: string, what: string) => (e: SqlError): DatastoreError =>
  fileError(path, reasonOf(e), `${what}: ${e.message}`, e)

// --- opening -----------------------------------------------------------------

interface Row {
  readonly [column: string]: unknown
}

/**
 * Steps 1 and 2 of the module doc, in one exclusive transaction: take the lock,
 * recognise the file (ours, new, or refused), check its integrity.
 */
const claim = (
  sql: SqlClient.SqlClient,
  path: string,
  integrityCheck: "quick" | "full" | "none"
): Effect.Effect<void, DatastoreError> => {
  const run = (text: string, what: string) =>
    Effect.mapError(sql.unsafe<Row>(text).withoutTransform, fromSql(path, what))
  const inside = Effect.gen(function*() {
    const [app] = yield* run("PRAGMA application_id", "reading its header")
    const appId = Number(app?.["application_id"] ?? 0)
    if (appId !== APPLICATION_ID) {
      const tables = yield* run("SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'", "reading its schema")
      if (appId !== 0 || tables.length > 0) {
        return yield* fileError(
          path,
          "Foreign",
          `application_id ${appId} (ours is ${APPLICATION_ID}), tables ${
            tables.map((t) => String(t["name"])).join(", ") || "none"
          }`
        )
      }
      yield* run(`PRAGMA application_id = ${APPLICATION_ID}`, "marking it as ours")
    }
    if (integrityCheck !== "none") {
      const pragma = integrityCheck === "quick" ? "quick_check" : "integrity_check"
      const rows = yield* run(`PRAGMA ${pragma}(10)`, "checking its integrity")
      const problems = rows.map((r) => String(Object.values(r)[0]))
      if (problems.length !== 1 || problems[0] !== "ok") {
        return yield* fileError(path, "Corrupt", `${pragma}: ${problems.join("; ")}`)
      }
    }
  })
  return Effect.gen(function*() {
    yield* run("PRAGMA locking_mode = EXCLUSIVE", "setting its locking mode")
    yield* run("BEGIN EXCLUSIVE", "locking it")
    yield* inside.pipe(
      Effect.onError(() => Effect.ignore(sql.unsafe("ROLLBACK").raw)),
      Effect.andThen(run("COMMIT", "committing its header"))
    )
  })
}

/** Step 3: WAL, durability level, migrations; refuses a schema newer than this code. */
const prepare = (
  sql: SqlClient.SqlClient,
  path: string,
  synchronous: "full" | "normal"
): Effect.Effect<void, DatastoreError> =>
  Effect.gen(function*() {
    const [mode] = yield* Effect.mapError(
      sql.unsafe<Row>("PRAGMA journal_mode = WAL").withoutTransform,
      fromSql(path, "switching to WAL")
    )
    if (mode?.["journal_mode"] !== "wal") {
      return yield* fileError(path, "Io", `journal_mode is ${String(mode?.["journal_mode"])}, not wal`)
    }
    yield* Effect.mapError(
      sql.unsafe(`PRAGMA synchronous = ${synchronous === "full" ? "FULL" : "NORMAL"}`).raw,
      fromSql(path, "setting synchronous")
    )
    yield* Migrator.make({})({ loader: Migrator.fromRecord(MIGRATIONS), table: MIGRATIONS_TABLE }).pipe(
      Effect.provideService(SqlClient.SqlClient, sql),
      Effect.mapError((e) =>
        e._tag === "SqlError" ? fromSql(path, "migrating its schema")(e) : fileError(path, "Io", e.message, e)
      )
    )
    const [latest] = yield* Effect.mapError(
      sql.unsafe<Row>(`SELECT max(migration_id) AS id FROM ${MIGRATIONS_TABLE}`).withoutTransform,
      fromSql(path, "reading its schema version")
    )
    const version = Number(latest?.["id"] ?? 0)
    if (version > LATEST_MIGRATION) {
      return yield* fileError(
        path,
        "Foreign",
        `its schema version ${version} is newer than this program's (${LATEST_MIGRATION})`
      )
    }
  })

// --- the store ---------------------------------------------------------------

interface WriteRequest {
  readonly ops: ReadonlyArray<BatchOp>
  readonly done: Deferred.Deferred<void, DatastoreError>
}

/**
 * Row counts of one statement: a run of puts (or deletes) is written as
 * statements of these many rows, largest first, so a group of n operations is
 * about n/64 statements (each an Effect, a prepared-statement cache lookup and
 * a call into SQLite) and only these four texts are ever prepared.
 */
const CHUNKS = [64, 16, 4, 1] as const
const upsertText = (rows: number) =>
  `INSERT INTO datastore (key, value) VALUES ${Array(rows).fill("(?, ?)").join(", ")} ` +
  "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
const deleteText = (rows: number) => `DELETE FROM datastore WHERE key IN (${Array(rows).fill("?").join(", ")})`
const UPSERTS = new Map(CHUNKS.map((n) => [n, upsertText(n)]))
const DELETES = new Map(CHUNKS.map((n) => [n, deleteText(n)]))

interface WriteStatement {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

/**
 * The statements that apply `requests`' operations in order: each run of
 * consecutive puts (or deletes) becomes multi-row statements. Within one
 * statement SQLite applies the rows in order, so of two puts of one key the
 * later wins, as it would one statement per operation; a put and a delete of
 * one key are never in one statement.
 */
const statements = (requests: ReadonlyArray<WriteRequest>): Array<WriteStatement> => {
  const ops: Array<BatchOp> = []
  for (const r of requests) for (const op of r.ops) ops.push(op)
  const out: Array<WriteStatement> = []
  let i = 0
  while (i < ops.length) {
    const tag = ops[i]!._tag
    let end = i
    while (end < ops.length && ops[end]!._tag === tag) end++
    while (i < end) {
      const rows = CHUNKS.find((n) => n <= end - i)!
      const params: Array<unknown> = []
      for (let k = i; k < i + rows; k++) {
        const op = ops[k]!
        if (op._tag === "Put") params.push(op.key, op.value)
        else params.push(op.key)
      }
      out.push({ text: (tag === "Put" ? UPSERTS : DELETES).get(rows)!, params })
      i += rows
    }
  }
  return out
}

export const make = (
  options: SqliteOptions
): Effect.Effect<Datastore["Service"], DatastoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const path = options.filename
    const pageSize = Math.max(1, options.pageSize ?? defaults.pageSize)
    const sql = yield* SqliteClient.make({
      filename: path,
      disableWAL: true, // switched on in `prepare`, after the file is known to be ours
      busyTimeout: options.lockTimeout ?? defaults.lockTimeout
    }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
      Effect.mapError(fromSql(path, "opening it"))
    )
    yield* claim(sql, path, options.integrityCheck ?? defaults.integrityCheck)
    yield* prepare(sql, path, options.synchronous ?? defaults.synchronous)

    // the writer: one fiber, one transaction per group of waiting requests
    let isClosed = false
    const queue = yield* Queue.bounded<WriteRequest, Cause.Done>(
      Math.max(1, options.maxPendingWrites ?? defaults.maxPendingWrites)
    )
    const commit = (requests: ReadonlyArray<WriteRequest>) => {
      const sts = statements(requests)
      // one statement is a transaction of its own (SQLite's autocommit, with the same commit
      // and fsync): a single put or delete, or a run of up to 64, skips BEGIN and COMMIT
      const run = sts.length === 1
        ? Effect.asVoid(sql.unsafe(sts[0]!.text, sts[0]!.params).raw)
        : sql.withTransaction(Effect.forEach(sts, (st) => sql.unsafe(st.text, st.params).raw, { discard: true }))
      return run.pipe(Effect.mapError(fromSql(path, "writing")))
    }
    // a failed group is retried one request per transaction, so a request fails only for its own fault
    const commitEach = (requests: ReadonlyArray<WriteRequest>): Effect.Effect<void> =>
      Effect.flatMap(Effect.exit(commit(requests)), (exit) =>
        exit._tag === "Failure" && requests.length > 1
          ? Effect.forEach(requests, (r) => commitEach([r]), { discard: true })
          : Effect.forEach(requests, (r) => Deferred.done(r.done, exit), { discard: true }))
    const writer = yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.takeAll(queue), commitEach)).pipe(
        Effect.catchTag("Done", () => Effect.void)
      )
    )
    // runs before the connection closes (finalizers run in reverse): drain, then stop
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        isClosed = true
        yield* Queue.end(queue)
        yield* Fiber.await(writer)
      })
    )

    const write = (ops: ReadonlyArray<BatchOp>): Effect.Effect<void, DatastoreError> =>
      Effect.suspend(() => {
        if (isClosed) return Effect.fail(closed())
        if (ops.length === 0) return Effect.void
        return Effect.flatMap(
          Deferred.make<void, DatastoreError>(),
          (done) =>
            Effect.flatMap(
              Queue.offer(queue, { ops, done }),
              (accepted) => accepted ? Deferred.await(done) : Effect.fail(closed())
            )
        )
      })

    const read = <A extends Row>(text: string, params: ReadonlyArray<unknown>) =>
      Effect.suspend(() =>
        isClosed
          ? Effect.fail(closed())
          : Effect.mapError(sql.unsafe<A>(text, params).withoutTransform, fromSql(path, "reading"))
      )

    const range = <A>(
      q: Query,
      columns: string,
      toA: (row: Row) => A,
      keyOf: (a: A) => string
    ): Stream.Stream<A, DatastoreError> =>
      Stream.unwrap(Effect.map(checkQuery(q), () => {
        const lo = descendantPrefix(q.prefix ?? ("/" as Key))
        const hi = lo.slice(0, -1) + "0"
        const descending = q.order === "descending"
        const order = descending ? "DESC" : "ASC"
        const text = `SELECT ${columns} FROM datastore WHERE key > ? AND key < ? ORDER BY key ${order} LIMIT ? OFFSET ?`
        interface Cursor {
          readonly lo: string
          readonly hi: string
          readonly remaining: number
          readonly offset: number
        }
        const start: Cursor = { lo, hi, remaining: q.limit ?? Number.MAX_SAFE_INTEGER, offset: q.offset ?? 0 }
        return Stream.paginate(start, (c: Cursor) => {
          if (c.remaining === 0) return Effect.succeed([[], Option.none<Cursor>()] as const)
          const n = Math.min(pageSize, c.remaining)
          return Effect.map(read(text, [c.lo, c.hi, n, c.offset]), (rows) => {
            const page = rows.map(toA)
            const last = page.at(-1)
            if (page.length < n || last === undefined) return [page, Option.none<Cursor>()] as const
            const k = keyOf(last)
            const next: Cursor = descending
              ? { lo: c.lo, hi: k, remaining: c.remaining - n, offset: 0 }
              : { lo: k, hi: c.hi, remaining: c.remaining - n, offset: 0 }
            return [page, Option.some(next)] as const
          })
        })
      }))

    return Datastore.of({
      get: (k) =>
        Effect.flatMap(
          read("SELECT value FROM datastore WHERE key = ?", [k]),
          ([row]) => row === undefined ? Effect.fail(notFound(k)) : Effect.succeed(row["value"] as Uint8Array)
        ),
      has: (k) => Effect.map(read("SELECT 1 AS one FROM datastore WHERE key = ?", [k]), (rows) => rows.length > 0),
      put: (k, value) => write([{ _tag: "Put", key: k, value }]),
      delete: (k) => write([{ _tag: "Delete", key: k }]),
      batch: write,
      query: (q = {}) =>
        range(
          q,
          "key, value",
          (row): Entry => ({ key: row["key"] as Key, value: row["value"] as Uint8Array }),
          (e) => e.key
        ),
      keys: (q = {}) => range(q, "key", (row) => row["key"] as Key, (k) => k)
    })
  })

/** A SQLite datastore on `options.filename`, closed (and unlocked) when its scope closes. */
export const layer = (options: SqliteOptions): Layer.Layer<Datastore, DatastoreError> =>
  Layer.effect(Datastore, make(options))
