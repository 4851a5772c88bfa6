import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { DatabaseSync } from "node:sqlite"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as Sqlite from "../../src/datastore/Sqlite.ts"
import { startWriter } from "../support/crashChild.ts"
import { datastoreCompliance } from "./compliance.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "datastore-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let counter = 0
const freshFile = () => path.join(dir, `store-${process.pid}-${counter++}.sqlite`)

const k = (s: string) => s as Datastore.Key
const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** The bytes of every file of the store (the database and any -wal/-journal beside it). */
const snapshot = (file: string): Record<string, string> =>
  Object.fromEntries(
    fs.readdirSync(path.dirname(file))
      .filter((f) => f.startsWith(path.basename(file)))
      .map((f) => [f, fs.readFileSync(path.join(path.dirname(file), f)).toString("hex")])
  )

/** Opens `file`, expecting a failure with `reason`; checks the error names the file and nothing was written. */
const refuses = (file: string, reason: Datastore.DatastoreErrorReason) =>
  Effect.gen(function*() {
    const before = snapshot(file)
    const e = yield* Effect.flip(Effect.scoped(Sqlite.make({ filename: file })))
    expect(e.reason).toBe(reason)
    expect(e.path).toBe(file)
    expect(e.message).toContain(file)
    expect(snapshot(file)).toEqual(before)
    return e
  })

datastoreCompliance("SQLite", Effect.suspend(() => Sqlite.make({ filename: freshFile() })))

describe("SQLite datastore: the file", () => {
  it.effect("writes survive closing and reopening", () =>
    Effect.gen(function*() {
      const file = freshFile()
      yield* Effect.scoped(Effect.gen(function*() {
        const ds = yield* Sqlite.make({ filename: file })
        yield* ds.put(k("/peers/a"), enc("A"))
        yield* ds.batch([Datastore.putOp(k("/peers/b"), enc("B")), Datastore.putOp(k("/dht/records/r"), enc("R"))])
        yield* ds.delete(k("/peers/b"))
      }))
      const ds = yield* Sqlite.make({ filename: file })
      expect(yield* Stream.runCollect(ds.keys())).toEqual(["/dht/records/r", "/peers/a"])
      expect(dec(yield* ds.get(k("/peers/a")))).toBe("A")
    }))

  it.effect("a file of ours is marked with our application_id, in WAL mode", () =>
    Effect.gen(function*() {
      const file = freshFile()
      yield* Effect.scoped(Sqlite.make({ filename: file }))
      const db = new DatabaseSync(file, { readOnly: true })
      try {
        expect(db.prepare("PRAGMA application_id").get()).toEqual({ application_id: Sqlite.APPLICATION_ID })
        expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" })
      } finally {
        db.close()
      }
    }))

  it.effect("an empty existing file is taken as a new store", () =>
    Effect.gen(function*() {
      const file = freshFile()
      fs.writeFileSync(file, "")
      const ds = yield* Sqlite.make({ filename: file })
      yield* ds.put(k("/a"), enc("1"))
      expect(yield* ds.has(k("/a"))).toBe(true)
    }))

  it.effect("a file that is not a database: Corrupt, naming the file, left unchanged", () =>
    Effect.gen(function*() {
      const file = freshFile()
      fs.writeFileSync(file, Buffer.alloc(8192, "this is not a database "))
      yield* refuses(file, "Corrupt")
    }))

  it.effect("a datastore file with a damaged page: Corrupt (integrity check), left unchanged", () =>
    Effect.gen(function*() {
      const file = freshFile()
      yield* Effect.scoped(Effect.gen(function*() {
        const ds = yield* Sqlite.make({ filename: file })
        yield* ds.batch(
          Array.from(
            { length: 3000 },
            (_, i) => Datastore.putOp(k(`/p/${String(i).padStart(5, "0")}`), new Uint8Array(200).fill(i & 0xff))
          )
        )
      }))
      expect(fs.existsSync(`${file}-wal`)).toBe(false) // checkpointed on close
      const size = fs.statSync(file).size
      expect(size).toBeGreaterThan(40 * 4096)
      const fd = fs.openSync(file, "r+")
      fs.writeSync(fd, Buffer.alloc(4096 * 4, 0xab), 0, 4096 * 4, 4096 * 20) // pages 21-24: garbage
      fs.closeSync(fd)
      yield* refuses(file, "Corrupt")
    }))

  it.effect("another program's SQLite database: Foreign, naming the file, left unchanged", () =>
    Effect.gen(function*() {
      const file = freshFile()
      const db = new DatabaseSync(file)
      db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO accounts VALUES (1, 'x')")
      db.close()
      const e = yield* refuses(file, "Foreign")
      expect(e.message).toContain("accounts")
      // the same with an application_id that is not ours, and no tables
      const other = freshFile()
      const db2 = new DatabaseSync(other)
      db2.exec("PRAGMA application_id = 42")
      db2.close()
      yield* refuses(other, "Foreign")
    }))

  it.effect("a datastore written by a newer schema version: Foreign", () =>
    Effect.gen(function*() {
      const file = freshFile()
      yield* Effect.scoped(Sqlite.make({ filename: file }))
      const db = new DatabaseSync(file)
      db.exec("INSERT INTO datastore_migrations (migration_id, name) VALUES (99, 'from_the_future')")
      db.close()
      const e = yield* Effect.flip(Effect.scoped(Sqlite.make({ filename: file })))
      expect(e.reason).toBe("Foreign")
      expect(e.message).toContain("99")
    }))

  it.effect("a file in a missing directory: Io, naming the file", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "no-such-dir", "store.sqlite")
      const e = yield* Effect.flip(Effect.scoped(Sqlite.make({ filename: file })))
      expect(e.reason).toBe("Io")
      expect(e.message).toContain(file)
      expect(fs.existsSync(path.dirname(file))).toBe(false)
    }))

  it.effect("a path that is a directory: Io, naming it, left as it is", () =>
    Effect.gen(function*() {
      const file = fs.mkdtempSync(path.join(dir, "a-directory-"))
      const e = yield* Effect.flip(Effect.scoped(Sqlite.make({ filename: file })))
      expect(e.reason).toBe("Io")
      expect(e.message).toContain(file)
      expect(fs.readdirSync(file)).toEqual([])
    }))

  it.effect("a second opener in the same process: Locked until the first closes", () =>
    Effect.gen(function*() {
      const file = freshFile()
      const scope = yield* Scope.make()
      const first = yield* Scope.provide(Sqlite.make({ filename: file }), scope)
      yield* first.put(k("/a"), enc("1"))
      const e = yield* Effect.flip(Effect.scoped(Sqlite.make({ filename: file })))
      expect(e.reason).toBe("Locked")
      expect(e.message).toContain(file)
      expect(dec(yield* first.get(k("/a")))).toBe("1") // the first is unharmed
      yield* Scope.close(scope, Exit.void)
      const second = yield* Sqlite.make({ filename: file })
      expect(dec(yield* second.get(k("/a")))).toBe("1")
    }))

  it.effect("closing commits the writes already queued; each put either succeeded and is stored, or failed Closed", () =>
    Effect.gen(function*() {
      const file = freshFile()
      const scope = yield* Scope.make()
      const ds = yield* Scope.provide(Sqlite.make({ filename: file }), scope)
      const keys = Array.from({ length: 100 }, (_, i) => k(`/q/${i}`))
      const fibers = yield* Effect.forEach(keys, (key) => Effect.forkDetach(Effect.exit(ds.put(key, enc("v")))))
      yield* Effect.yieldNow
      yield* Scope.close(scope, Exit.void)
      const exits = yield* Effect.forEach(fibers, Fiber.join)
      const reopened = yield* Sqlite.make({ filename: file })
      let stored = 0
      for (const [i, exit] of exits.entries()) {
        const has = yield* reopened.has(keys[i]!)
        if (Exit.isSuccess(exit)) expect(has, keys[i]).toBe(true)
        else expect(Exit.findErrorOption(exit).pipe((e) => e._tag === "Some" && e.value.reason)).toBe("Closed")
        if (has) stored++
      }
      expect(stored).toBeGreaterThan(0)
    }))

  it.effect("a failing batch changes nothing, and does not fail writes committed beside it", () =>
    Effect.gen(function*() {
      const ds = yield* Sqlite.make({ filename: freshFile() })
      // a value that is not bytes, smuggled past the types: the STRICT table refuses it mid-batch
      const bad = [Datastore.putOp(k("/b/1"), enc("1")), Datastore.putOp(k("/b/2"), "text" as unknown as Uint8Array)]
      const [batch, good] = yield* Effect.all([Effect.exit(ds.batch(bad)), Effect.exit(ds.put(k("/g"), enc("ok")))], {
        concurrency: "unbounded"
      })
      expect(Exit.isFailure(batch)).toBe(true)
      expect(Exit.isSuccess(good)).toBe(true)
      expect(yield* Stream.runCollect(ds.keys())).toEqual(["/g"])
    }))

  it.effect("synchronous = normal opens and stores too", () =>
    Effect.gen(function*() {
      const ds = yield* Sqlite.make({ filename: freshFile(), synchronous: "normal", integrityCheck: "full" })
      yield* ds.put(k("/a"), enc("1"))
      expect(yield* ds.has(k("/a"))).toBe(true)
    }))
})

describe("SQLite datastore: crash safety (issue 12 §4)", () => {
  for (const synchronous of ["full", "normal"] as const) {
    it.live(
      `kill -9 while writing loses no acknowledged write (synchronous=${synchronous}); the lock dies with the process`,
      () =>
        Effect.gen(function*() {
          const file = freshFile()
          const writer = yield* startWriter(path.join(import.meta.dirname, "crashWriter.ts"), [file, synchronous], 400)

          // while the writer holds the file, a second process (this one) is refused
          const locked = yield* Effect.flip(Effect.scoped(Sqlite.make({ filename: file })))
          expect(locked.reason).toBe("Locked")

          const killed = yield* writer.kill
          expect(killed.signal).toBe("SIGKILL")
          expect(killed.first.startsWith("ready ")).toBe(true)
          // every complete line is an acknowledged batch
          const acked = killed.acked.map(Number)
          expect(acked.length).toBeGreaterThanOrEqual(400)

          const ds = yield* Sqlite.make({ filename: file, integrityCheck: "full" }) // the lock is gone
          for (const n of acked) {
            expect(yield* ds.has(k(`/crash/${n}/a`)), `acknowledged /crash/${n}/a`).toBe(true)
            expect(yield* ds.has(k(`/crash/${n}/b`)), `acknowledged /crash/${n}/b`).toBe(true)
          }
          // every batch is all or nothing, acknowledged or not
          const keys = yield* Stream.runCollect(ds.keys({ prefix: k("/crash") }))
          const counts = new Map<string, number>()
          for (const key of keys) {
            const n = Datastore.segments(key)[1]!
            counts.set(n, (counts.get(n) ?? 0) + 1)
          }
          for (const [n, c] of counts) expect(c, `batch ${n}`).toBe(2)
          expect(counts.size).toBeGreaterThanOrEqual(acked.length)
        }),
      120_000
    )
  }
})
