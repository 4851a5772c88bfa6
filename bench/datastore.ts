/**
 * Quick measurement (not a test, not in bench/main.ts): datastore puts and gets
 * per second, single and batched, for the Memory store and the SQLite store
 * (synchronous FULL, the default, and NORMAL) on a file in a temp directory.
 * Keys look like the peerstore's (`/peers/<52 chars>/<field>`), values are 256
 * random bytes.
 *
 * - put, sequential: one put at a time, each awaited (one transaction each).
 * - put, 64 concurrent: 64 fibers putting at once (the SQLite writer
 *   group-commits whatever is queued).
 * - put, batch of 256: `batch` with 256 puts (one transaction).
 * - get: sequential gets of keys that exist; query: one prefix scan of everything.
 *
 * Run: npx node bench/datastore.ts   (N=… changes the number of keys, default 5000)
 */
import type { Scope } from "effect"
import { Effect, Stream } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Datastore from "../src/datastore/Datastore.ts"
import * as Memory from "../src/datastore/Memory.ts"
import * as Sqlite from "../src/datastore/Sqlite.ts"

const N = Number(process.env.N ?? 5000)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "datastore-bench-"))
const keys = Array.from(
  { length: N },
  (_, i) =>
    `/peers/${crypto.createHash("sha256").update(String(i)).digest("base64url").slice(0, 43)}/addrs` as Datastore.Key
)
const value = crypto.randomBytes(256)

let quiet = false
const rate = (label: string, ops: number, ms: number) =>
  quiet || console.log(
    `  ${label.padEnd(28)} ${String(Math.round(ops / (ms / 1000))).padStart(9)} ops/s  (${ops} in ${ms.toFixed(0)} ms)`
  )

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const start = performance.now()
    yield* effect
    return performance.now() - start
  })

const run = (
  name: string,
  store: Effect.Effect<Datastore.Datastore["Service"], Datastore.DatastoreError, Scope.Scope>
) =>
  Effect.scoped(Effect.gen(function*() {
    if (!quiet) console.log(name)
    const ds = yield* store
    rate("put, sequential", N, yield* timed(Effect.forEach(keys, (k) => ds.put(k, value), { discard: true })))
    rate(
      "put, 64 concurrent",
      N,
      yield* timed(Effect.forEach(keys, (k) => ds.put(k, value), { concurrency: 64, discard: true }))
    )
    const batches: Array<ReadonlyArray<Datastore.BatchOp>> = []
    for (let i = 0; i < N; i += 256) batches.push(keys.slice(i, i + 256).map((k) => Datastore.putOp(k, value)))
    rate("put, batch of 256", N, yield* timed(Effect.forEach(batches, ds.batch, { discard: true })))
    rate("get, sequential", N, yield* timed(Effect.forEach(keys, (k) => ds.get(k), { discard: true })))
    rate(
      "query /peers (all entries)",
      N,
      yield* timed(Stream.runDrain(ds.query({ prefix: "/peers" as Datastore.Key })))
    )
  }))

const sqlite = (synchronous: "full" | "normal") =>
  Effect.suspend(() => Sqlite.make({ filename: path.join(dir, `${synchronous}-${Date.now()}.sqlite`), synchronous }))

const program = Effect.gen(function*() {
  // warm-up (JIT, Effect's machinery): everything once, unreported
  quiet = true
  yield* run("warm-up", Memory.make)
  yield* run("warm-up", sqlite("normal"))
  quiet = false
  console.log(`${N} keys, 256-byte values, load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  yield* run("Memory", Memory.make)
  yield* run("SQLite, synchronous=FULL (default)", sqlite("full"))
  yield* run("SQLite, synchronous=NORMAL", sqlite("normal"))
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
}).pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))))

Effect.runPromise(program)
