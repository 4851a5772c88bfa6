/**
 * Quick measurement (not a test): throughput of the Noise secured Duplex over
 * an in-memory Duplex.pair, 64 MiB one way, for a few write batch shapes.
 * Run: npx node bench/noise-throughput.ts
 */
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as Duplex from "../src/core/Duplex.ts"
import * as Keys from "../src/core/Keys.ts"
import * as Noise from "../src/security/Noise.ts"

const TOTAL = 64 * 1024 * 1024

const measure = (label: string, chunkSize: number, chunksPerWrite: number, secured: boolean) =>
  Effect.scoped(Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    let w: Duplex.Duplex = a
    let r: Duplex.Duplex = b
    if (secured) {
      const ik = yield* Keys.generate("Ed25519")
      const rk = yield* Keys.generate("Ed25519")
      const na = yield* Noise.make()
      const nb = yield* Noise.make()
      const [ci, cr] = yield* Effect.all([
        na.secureOutbound(a, { localKey: ik }),
        nb.secureInbound(b, { localKey: rk })
      ], { concurrency: 2 })
      w = ci.duplex
      r = cr.duplex
    }
    const chunk = new Uint8Array(chunkSize).fill(7)
    const batch = Array.from({ length: chunksPerWrite }, () => chunk)
    const perWrite = chunkSize * chunksPerWrite
    const writes = Math.ceil(TOTAL / perWrite)
    const start = performance.now()
    const cpu0 = process.cpuUsage()
    const writer = Effect.gen(function*() {
      for (let i = 0; i < writes; i++) yield* w.write(batch)
      yield* w.closeWrite
    })
    const reader = Effect.gen(function*() {
      let n = 0
      while (true) {
        const got = yield* r.read
        if (got.length === 0) return n
        n += Duplex.byteLength(got)
      }
    })
    const [, n] = yield* Effect.all([writer, reader], { concurrency: 2 })
    const secs = (performance.now() - start) / 1000
    const cpu = process.cpuUsage(cpu0)
    const cpuSecs = (cpu.user + cpu.system) / 1e6
    console.log(
      `${label.padEnd(44)} ${(n / 1048576).toFixed(0)} MiB in ${secs.toFixed(3)} s = ${
        (n * 8 / secs / 1e9).toFixed(2)
      } Gbit/s (${(n / secs / 1048576).toFixed(0)} MiB/s); CPU ${cpuSecs.toFixed(3)} s = ${
        (n / cpuSecs / 1048576).toFixed(0)
      } MiB per CPU-s`
    )
  }))

/** The bound: node:crypto alone encrypting then decrypting 64 MiB in 65519-byte messages on this thread. */
const cryptoOnly = () => {
  const key = crypto.createSecretKey(crypto.randomBytes(32))
  const iv = Buffer.alloc(12)
  const pt = crypto.randomBytes(65519)
  const n = Math.ceil(TOTAL / 65519)
  const start = performance.now()
  const cpu0 = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const c = crypto.createCipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 })
    const ct = c.update(pt)
    c.final()
    const tag = c.getAuthTag()
    const d = crypto.createDecipheriv("chacha20-poly1305", key, iv, { authTagLength: 16 })
    d.setAuthTag(tag)
    d.update(ct)
    d.final()
  }
  const secs = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpu0)
  const cpuSecs = (cpu.user + cpu.system) / 1e6
  console.log(`CPU ${cpuSecs.toFixed(3)} s = ${(TOTAL / cpuSecs / 1048576).toFixed(0)} MiB per CPU-s`)
  console.log(
    `${"bound: node:crypto enc+dec only".padEnd(44)} 64 MiB in ${secs.toFixed(3)} s = ${
      (TOTAL * 8 / secs / 1e9).toFixed(2)
    } Gbit/s (${(TOTAL / secs / 1048576).toFixed(0)} MiB/s)`
  )
}

const program = Effect.gen(function*() {
  for (let round = 0; round < Number(process.env.ROUNDS ?? 2); round++) {
    cryptoOnly()
    yield* measure("raw pair, 64 KiB chunks, 1 per write", 65536, 1, false)
    yield* measure("noise, 64 KiB chunks, 1 per write", 65536, 1, true)
    yield* measure("noise, 64 KiB chunks, 16 per write", 65536, 16, true)
    yield* measure("noise, 65519 B chunks, 1 per write", 65519, 1, true)
    yield* measure("noise, 1 MiB chunks, 1 per write", 1048576, 1, true)
    yield* measure("noise, 1 KiB chunks, 64 per write", 1024, 64, true)
  }
})

Effect.runPromise(program)
