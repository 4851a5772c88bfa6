/**
 * The Datastore contract, run against every implementation (Memory, SQLite):
 * each operation, prefix semantics on segment boundaries, batch order, limits,
 * offsets, ordering, keys-only queries, the `Closed` reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import * as Datastore from "../../src/datastore/Datastore.ts"

export type MakeStore = Effect.Effect<Datastore.Datastore["Service"], Datastore.DatastoreError, Scope.Scope>

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)
const k = (s: string) => s as Datastore.Key

const fill = (ds: Datastore.Datastore["Service"], keys: ReadonlyArray<string>) =>
  Effect.forEach(keys, (key) => ds.put(k(key), enc(key)), { discard: true })

const keysOf = (ds: Datastore.Datastore["Service"], q?: Datastore.Query) => Stream.runCollect(ds.keys(q))

export const datastoreCompliance = (name: string, makeStore: MakeStore): void => {
  describe(`${name}: Datastore contract`, () => {
    it.effect("get/put/has/delete: a put value is read back, a deleted one is NotFound", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        expect(yield* ds.has(k("/a"))).toBe(false)
        const missing = yield* Effect.flip(ds.get(k("/a")))
        expect(missing.reason).toBe("NotFound")
        yield* ds.put(k("/a"), enc("one"))
        expect(yield* ds.has(k("/a"))).toBe(true)
        expect(dec(yield* ds.get(k("/a")))).toBe("one")
        yield* ds.put(k("/a"), enc("two"))
        expect(dec(yield* ds.get(k("/a")))).toBe("two")
        yield* ds.delete(k("/a"))
        expect(yield* ds.has(k("/a"))).toBe(false)
        expect((yield* Effect.flip(ds.get(k("/a")))).reason).toBe("NotFound")
        yield* ds.delete(k("/a")) // deleting a missing key succeeds
      }))

    it.effect("batch: operations apply in order, all or nothing as one; long runs of puts and deletes with repeated keys end as a sequential model says (the last write of a key wins)", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        const model = new Map<string, string>()
        let seed = 7
        const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n
        for (let round = 0; round < 6; round++) {
          const ops: Array<Datastore.BatchOp> = []
          // runs of 1..150 puts or deletes over 40 keys: multi-row statements of every size, duplicates inside them
          while (ops.length < 400) {
            const put = rand(3) !== 0
            const run = 1 + rand(150)
            for (let i = 0; i < run; i++) {
              const key = `/k/${rand(40)}`
              if (put) {
                const value = `${round}-${ops.length}`
                ops.push(Datastore.putOp(k(key), enc(value)))
                model.set(key, value)
              } else {
                ops.push(Datastore.deleteOp(k(key)))
                model.delete(key)
              }
            }
          }
          yield* ds.batch(ops)
          const stored = new Map<string, string>()
          yield* Stream.runForEach(
            ds.query({ prefix: k("/k") }),
            ({ key, value }) => Effect.sync(() => void stored.set(key, dec(value)))
          )
          expect(stored).toEqual(model)
        }
      }))

    it.effect("values: empty and binary values round-trip; stored bytes are copies", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        yield* ds.put(k("/empty"), new Uint8Array())
        expect((yield* ds.get(k("/empty"))).length).toBe(0)
        const bin = Uint8Array.from({ length: 256 }, (_, i) => i)
        yield* ds.put(k("/bin"), bin)
        bin[0] = 99 // the caller's array changes after put
        const read = yield* ds.get(k("/bin"))
        expect(Array.from(read)).toEqual(Array.from({ length: 256 }, (_, i) => i))
        read[1] = 99 // so does the array get returned
        expect((yield* ds.get(k("/bin")))[1]).toBe(1)
      }))

    it.effect("values: a Node Buffer (whose slice is a view) is copied too, in and out, by put, batch and query", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        const buf = Buffer.from([1, 2, 3])
        yield* ds.put(k("/buf/a"), buf)
        yield* ds.batch([Datastore.putOp(k("/buf/b"), buf)])
        buf[0] = 99 // the caller's Buffer changes after put and batch
        const read = yield* ds.get(k("/buf/a"))
        expect(Array.from(read)).toEqual([1, 2, 3])
        read[1] = 99
        expect(Array.from(read.slice())).toEqual([1, 99, 3])
        expect(Array.from(yield* ds.get(k("/buf/a")))).toEqual([1, 2, 3])
        const [entry] = yield* Stream.runCollect(ds.query({ prefix: k("/buf"), limit: 1 }))
        entry!.value[2] = 99 // so does a value a query yielded
        for (const key of ["/buf/a", "/buf/b"]) expect(Array.from(yield* ds.get(k(key)))).toEqual([1, 2, 3])
      }))

    it.effect("query by prefix: strictly below it, on segment boundaries, ordered by key", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        yield* fill(ds, ["/peers/b", "/peers", "/peersx/a", "/peers/a/addrs", "/peers/a", "/dht/records/z", "/peers-"])
        expect(yield* keysOf(ds, { prefix: k("/peers") })).toEqual(["/peers/a", "/peers/a/addrs", "/peers/b"])
        expect(yield* keysOf(ds, { prefix: k("/peers/a") })).toEqual(["/peers/a/addrs"])
        expect(yield* keysOf(ds, { prefix: k("/dht") })).toEqual(["/dht/records/z"])
        expect(yield* keysOf(ds, { prefix: k("/nothing") })).toEqual([])
        expect(yield* keysOf(ds)).toEqual([
          "/dht/records/z",
          "/peers",
          "/peers-",
          "/peers/a",
          "/peers/a/addrs",
          "/peers/b",
          "/peersx/a"
        ])
        const entries = yield* Stream.runCollect(ds.query({ prefix: k("/peers") }))
        expect(entries.map((e) => [e.key, dec(e.value)])).toEqual([
          ["/peers/a", "/peers/a"],
          ["/peers/a/addrs", "/peers/a/addrs"],
          ["/peers/b", "/peers/b"]
        ])
      }))

    it.effect("query from the root: every key but / itself", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        yield* fill(ds, ["/", "/a", "/b/c"])
        expect(yield* keysOf(ds, { prefix: Datastore.ROOT })).toEqual(["/a", "/b/c"])
        expect(dec(yield* ds.get(Datastore.ROOT))).toBe("/")
      }))

    it.effect("query limit, offset and order (more keys than one page)", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        const all = Array.from({ length: 600 }, (_, i) => `/n/${String(i).padStart(4, "0")}`)
        yield* ds.batch(all.map((key) => Datastore.putOp(k(key), enc(key))))
        yield* ds.put(k("/o/x"), enc("outside"))
        expect(yield* keysOf(ds, { prefix: k("/n") })).toEqual(all)
        expect(yield* keysOf(ds, { prefix: k("/n"), limit: 3 })).toEqual(all.slice(0, 3))
        expect(yield* keysOf(ds, { prefix: k("/n"), limit: 0 })).toEqual([])
        expect(yield* keysOf(ds, { prefix: k("/n"), offset: 590 })).toEqual(all.slice(590))
        expect(yield* keysOf(ds, { prefix: k("/n"), offset: 250, limit: 300 })).toEqual(all.slice(250, 550))
        expect(yield* keysOf(ds, { prefix: k("/n"), offset: 700 })).toEqual([])
        const desc = [...all].reverse()
        expect(yield* keysOf(ds, { prefix: k("/n"), order: "descending" })).toEqual(desc)
        expect(yield* keysOf(ds, { prefix: k("/n"), order: "descending", offset: 10, limit: 290 })).toEqual(
          desc.slice(10, 300)
        )
        const page = yield* Stream.runCollect(ds.query({ prefix: k("/n"), order: "descending", limit: 2 }))
        expect(page.map((e) => dec(e.value))).toEqual(desc.slice(0, 2))
        // a consumer that stops early reads no further
        expect(yield* Stream.runCollect(Stream.take(ds.keys({ prefix: k("/n") }), 5))).toEqual(all.slice(0, 5))
      }))

    it.effect("query rejects a negative or fractional limit/offset (InvalidQuery)", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        for (const q of [{ limit: -1 }, { offset: -1 }, { limit: 1.5 }]) {
          const e = yield* Effect.flip(Stream.runCollect(ds.query(q)))
          expect(e.reason).toBe("InvalidQuery")
        }
      }))

    it.effect("batch: ops apply in order, all together", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        yield* ds.put(k("/x"), enc("old"))
        yield* ds.batch([
          Datastore.putOp(k("/a"), enc("1")),
          Datastore.deleteOp(k("/a")), // put then delete: absent
          Datastore.deleteOp(k("/b")),
          Datastore.putOp(k("/b"), enc("2")), // delete then put: present
          Datastore.putOp(k("/x"), enc("new")),
          Datastore.putOp(k("/x"), enc("newer")) // the last put wins
        ])
        expect(yield* keysOf(ds)).toEqual(["/b", "/x"])
        expect(dec(yield* ds.get(k("/x")))).toBe("newer")
        yield* ds.batch([]) // an empty batch is a no-op
        expect(yield* keysOf(ds)).toEqual(["/b", "/x"])
      }))

    it.effect("concurrent puts are all applied and all readable once acknowledged", () =>
      Effect.gen(function*() {
        const ds = yield* makeStore
        const keys = Array.from({ length: 200 }, (_, i) => `/c/${i}`)
        yield* Effect.forEach(keys, (key) => ds.put(k(key), enc(key)), { concurrency: "unbounded", discard: true })
        expect((yield* keysOf(ds, { prefix: k("/c") })).length).toBe(200)
        for (const key of keys) expect(yield* ds.has(k(key))).toBe(true)
      }))

    it.effect("after its scope closes every operation fails with Closed", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const ds = yield* Scope.provide(makeStore, scope)
        yield* ds.put(k("/a"), enc("1"))
        yield* Scope.close(scope, Exit.void)
        const errors = yield* Effect.all([
          Effect.flip(ds.get(k("/a"))),
          Effect.flip(ds.has(k("/a"))),
          Effect.flip(ds.put(k("/a"), enc("2"))),
          Effect.flip(ds.delete(k("/a"))),
          Effect.flip(ds.batch([Datastore.deleteOp(k("/a"))])),
          Effect.flip(Stream.runCollect(ds.query())),
          Effect.flip(Stream.runCollect(ds.keys()))
        ])
        expect(errors.map((e) => e.reason)).toEqual(Array(7).fill("Closed"))
      }))
  })
}
