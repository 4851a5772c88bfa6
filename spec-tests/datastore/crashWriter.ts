/**
 * Child process of the crash test (`Sqlite.test.ts`): opens the SQLite
 * datastore at argv[2] (synchronous level argv[3]) and writes until it is killed — 4 fibers, each writing
 * pairs of keys in one batch (`/crash/<n>/a`, `/crash/<n>/b`) — and prints
 * `<n>` on stdout once the batch is acknowledged. Stdout to a pipe is
 * synchronous on Linux, so a printed number was acknowledged before the kill.
 * Prints `ready <pid>` once the store is open.
 */
import { Effect } from "effect"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as Sqlite from "../../src/datastore/Sqlite.ts"

const file = process.argv[2]!
const synchronous = process.argv[3] === "normal" ? "normal" : "full"
const value = new Uint8Array(512).fill(7)

const program = Effect.gen(function*() {
  const ds = yield* Sqlite.make({ filename: file, synchronous })
  process.stdout.write(`ready ${process.pid}\n`)
  let next = 0
  const writer = Effect.forever(Effect.gen(function*() {
    const n = next++
    yield* ds.batch([
      Datastore.putOp(`/crash/${n}/a` as Datastore.Key, value),
      Datastore.putOp(`/crash/${n}/b` as Datastore.Key, value)
    ])
    process.stdout.write(`${n}\n`)
  }))
  yield* Effect.all([writer, writer, writer, writer], { concurrency: "unbounded" })
})

Effect.runPromise(Effect.scoped(program)).catch((e: unknown) => {
  process.stderr.write(`crashWriter: ${String(e)}\n`)
  process.exit(2)
})
