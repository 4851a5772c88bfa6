/**
 * The SQLite and Memory datastores agree on any sequence of operations: each
 * operation's result (value, or error reason) is the same on both, and so is
 * the final content, also across closing and reopening the SQLite file. Keys are drawn from a few short segments so that puts
 * overwrite, deletes hit, and prefixes nest and share characters (`/a`, `/a-`,
 * `/ab`, `/a/b`), which is where prefix and ordering bugs live.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as Memory from "../../src/datastore/Memory.ts"
import * as Sqlite from "../../src/datastore/Sqlite.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "datastore-prop-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let counter = 0

const segment = fc.constantFrom("a", "b", "ab", "a-", "a.b", "~")
const keyOfDepth = (maxLength: number): fc.Arbitrary<Datastore.Key> =>
  fc.array(segment, { minLength: 0, maxLength, size: "max" }).map((s) => ("/" + s.join("/")) as Datastore.Key)
const key = keyOfDepth(3)
const value = fc.uint8Array({ maxLength: 8 })
const query: fc.Arbitrary<Datastore.Query> = fc.record(
  {
    prefix: fc.option(fc.oneof({ weight: 3, arbitrary: keyOfDepth(1) }, keyOfDepth(2)), { nil: undefined, freq: 5 }),
    limit: fc.option(fc.integer({ min: -1, max: 6 }), { nil: undefined }),
    offset: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
    order: fc.option(fc.constantFrom("ascending" as const, "descending" as const), { nil: undefined })
  },
  { requiredKeys: [] }
)
const batchOp: fc.Arbitrary<Datastore.BatchOp> = fc.oneof(
  fc.tuple(key, value).map(([k, v]) => Datastore.putOp(k, v)),
  key.map(Datastore.deleteOp)
)

type Op =
  | { readonly op: "put"; readonly key: Datastore.Key; readonly value: Uint8Array }
  | { readonly op: "delete" | "get" | "has"; readonly key: Datastore.Key }
  | { readonly op: "batch"; readonly ops: ReadonlyArray<Datastore.BatchOp> }
  | { readonly op: "query" | "keys"; readonly query: Datastore.Query }
  | { readonly op: "reopen" }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("put" as const), key, value }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("delete" as const, "get" as const, "has" as const), key }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("batch" as const), ops: fc.array(batchOp, { maxLength: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("query" as const, "keys" as const), query }) },
  { weight: 1, arbitrary: fc.constant({ op: "reopen" as const }) }
)

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** One operation's observable outcome, comparable across stores. */
const run = (ds: Datastore.Datastore["Service"], o: Op): Effect.Effect<unknown> => {
  const outcome: Effect.Effect<unknown, Datastore.DatastoreError> = (() => {
    switch (o.op) {
      case "put":
        return ds.put(o.key, o.value)
      case "delete":
        return ds.delete(o.key)
      case "get":
        return Effect.map(ds.get(o.key), hex)
      case "has":
        return ds.has(o.key)
      case "batch":
        return ds.batch(o.ops)
      case "query":
        return Effect.map(Stream.runCollect(ds.query(o.query)), (es) => es.map((e) => [e.key, hex(e.value)]))
      case "keys":
        return Stream.runCollect(ds.keys(o.query))
      case "reopen":
        return Effect.void // done by the caller, on the SQLite store only
    }
  })()
  return Effect.map(Effect.exit(outcome), (exit) =>
    Exit.isSuccess(exit)
      ? { ok: exit.value ?? null }
      : { error: Exit.findErrorOption(exit).pipe((e) => e._tag === "Some" ? e.value.reason : "defect") })
}

const everything = (ds: Datastore.Datastore["Service"]) =>
  Effect.map(Stream.runCollect(ds.query()), (es) => es.map((e) => [e.key, hex(e.value)]))

describe("Datastore: SQLite and Memory agree", () => {
  it("on any sequence of operations (results, errors and final content)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 1, maxLength: 40, size: "max" }),
        (ops) =>
          Effect.runPromise(Effect.scoped(Effect.gen(function*() {
            const memory = yield* Memory.make
            const filename = path.join(dir, `p-${counter++}.sqlite`)
            // several pages per query, so the keyset pagination is exercised
            const open = Effect.flatMap(
              Scope.make(),
              (scope) =>
                Effect.map(Scope.provide(Sqlite.make({ filename, pageSize: 2 }), scope), (ds) => [ds, scope] as const)
            )
            let [sqlite, scope] = yield* open
            yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
            for (const o of ops) {
              if (o.op === "reopen") {
                // what was acknowledged is what the file holds after a close and a reopen
                yield* Scope.close(scope, Exit.void)
                ;[sqlite, scope] = yield* open
              }
              const [m, s] = [yield* run(memory, o), yield* run(sqlite, o)]
              expect(s, JSON.stringify(o)).toEqual(m)
            }
            expect(yield* everything(sqlite)).toEqual(yield* everything(memory))
          })))
      ),
      { numRuns: 40 }
    )
  }, 120_000)
})
