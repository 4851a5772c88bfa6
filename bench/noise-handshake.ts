/**
 * Quick measurement (not a test): sequential Noise XX handshakes between two of
 * our nodes over an in-memory Duplex.pair (Ed25519 identities), both ends in
 * this process, so each handshake costs both sides' CPU.
 * Run: npx node bench/noise-handshake.ts
 */
import { Effect } from "effect"
import * as Duplex from "../src/core/Duplex.ts"
import * as Keys from "../src/core/Keys.ts"
import * as Noise from "../src/security/Noise.ts"

const N = Number(process.env.N ?? 2000)

const program = Effect.gen(function*() {
  const ik = yield* Keys.generate("Ed25519")
  const rk = yield* Keys.generate("Ed25519")
  const na = yield* Noise.make()
  const nb = yield* Noise.make()
  const once = Effect.scoped(Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    yield* Effect.all([
      na.secureOutbound(a, { localKey: ik, muxers: ["/yamux/1.0.0"] }),
      nb.secureInbound(b, { localKey: rk, muxers: ["/yamux/1.0.0"] })
    ], { concurrency: 2 })
  }))
  for (let round = 0; round < 3; round++) {
    const start = performance.now()
    const cpu0 = process.cpuUsage()
    for (let i = 0; i < N; i++) yield* once
    const secs = (performance.now() - start) / 1000
    const cpu = process.cpuUsage(cpu0)
    console.log(
      `${N} handshakes in ${secs.toFixed(3)} s: ${(N / secs).toFixed(0)}/s, ${
        (1e6 * secs / N).toFixed(0)
      } µs each (both sides), CPU ${((cpu.user + cpu.system) / N).toFixed(0)} µs each`
    )
  }
})

Effect.runPromise(program)
