/**
 * `npm run sim -- <scenario> [--nodes N] [--seed S] [--misbehaving F] [--misbehaviour invalid|silent]`
 *
 * Large simulations on the memory transport under TestClock, reproducible
 * from the seed; the same code runs small in `npm test`.
 *
 *   dht        Kad-DHT (spec-tests/protocols/kad/simulation.ts): lookups must
 *              return exactly the true k closest peers; a value and a provider
 *              are found across the network. Default 1,000 nodes, 100 lookups.
 *              `--latency MS`: every write of the lookup phase arrives MS
 *              later in virtual time; each lookup's virtual duration is
 *              reported (`lookupMillis`).
 *   gossipsub  Gossipsub v1.1 with the score function and a fraction of
 *              misbehaving peers (spec-tests/protocols/pubsub/simulation.ts).
 *              Default 1,000 nodes, 10 % misbehaving; `--misbehaviour
 *              invalid` (default: they publish invalid messages) or `silent`
 *              (they receive but never forward).
 *
 * Prints one JSON line with the result, the wall and CPU time and the heap;
 * exits 1 when the scenario's property does not hold.
 */
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { kadSimulation } from "../spec-tests/protocols/kad/simulation.ts"
import { gossipsubSimulation } from "../spec-tests/protocols/pubsub/simulation.ts"
import * as Memory from "../src/transport/Memory.ts"

const args = process.argv.slice(2)
const scenario = args[0]
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`)
  const v = i >= 0 ? Number(args[i + 1]) : fallback
  if (!Number.isFinite(v)) {
    process.stderr.write(`sim: --${name} needs a number\n`)
    process.exit(2)
  }
  return v
}

const measure = <A, E>(run: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const start = process.hrtime.bigint()
    const cpu = process.cpuUsage()
    const result = yield* run
    const used = process.cpuUsage(cpu)
    return {
      scenario,
      ...result,
      wallSeconds: Number(process.hrtime.bigint() - start) / 1e9,
      cpuSeconds: (used.user + used.system) / 1e6,
      heapMiB: Math.round(process.memoryUsage().heapUsed / 1048576)
    }
  })

const main = (): Effect.Effect<{ readonly r: object; readonly ok: boolean }, unknown> => {
  const seed = flag("seed", 7)
  if (scenario === "dht") {
    const nodes = flag("nodes", 1000)
    const lookups = flag("lookups", 100)
    const latencyMillis = flag("latency", 0)
    return measure(
      kadSimulation({ nodes, seed, lookups, latencyMillis }).pipe(
        Effect.scoped,
        Effect.provide(Memory.layerNetworkWith({ latency: latencyMillis > 0 })),
        Effect.provide(TestClock.layer())
      )
    ).pipe(Effect.map((r) => ({ r, ok: r.exact === r.lookups && r.valueFound && r.providerFound })))
  }
  if (scenario === "gossipsub") {
    const nodes = flag("nodes", 1000)
    const misbehaving = flag("misbehaving", 0.1)
    const rounds = flag("rounds", 10)
    const i = args.indexOf("--misbehaviour")
    const misbehaviour = i >= 0 ? args[i + 1] : "invalid"
    if (misbehaviour !== "invalid" && misbehaviour !== "silent") {
      process.stderr.write("sim: --misbehaviour needs invalid or silent\n")
      process.exit(2)
    }
    return measure(
      gossipsubSimulation({ nodes, seed, misbehaving, rounds, misbehaviour }).pipe(
        Effect.scoped,
        Effect.provide(Memory.layerNetwork)
      )
    ).pipe(Effect.map((r) => ({
      r,
      ok: r.delivery >= 0.999 && r.invalidDelivered === 0 && (misbehaviour === "silent" || r.graylisted === 1)
    })))
  }
  process.stderr.write(
    "usage: npm run sim -- dht|gossipsub [--nodes N] [--seed S] [--lookups L] [--latency MS] [--misbehaving F] [--misbehaviour invalid|silent] [--rounds R]\n"
  )
  process.exit(2)
}

Effect.runPromise(main()).then(
  ({ r, ok }) => {
    process.stdout.write(`${JSON.stringify(r)}\n`)
    process.exit(ok ? 0 : 1)
  },
  (e) => {
    process.stderr.write(`sim: ${String(e)}\n`)
    process.exit(1)
  }
)
