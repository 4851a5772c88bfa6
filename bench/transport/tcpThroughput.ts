/**
 * One-way loopback throughput through the TCP transport's Duplex (Tcp.make:
 * dial + listen), against raw node:net in the same process as the bound.
 * Usage: npx node bench/transport/tcpThroughput.ts [MiB] [rounds]
 */
import { Deferred, Effect, Result } from "effect"
import * as Net from "node:net"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Tcp from "../../src/transport/Tcp.ts"

const MiB = Number(process.argv[2] ?? "256")
const rounds = Number(process.argv[3] ?? "3")
const total = MiB * 1024 * 1024
const piece = new Uint8Array(64 * 1024).fill(1)
const batch = Array.from({ length: 16 }, () => piece)
const batchBytes = 16 * piece.byteLength

let cpu0 = process.cpuUsage()
const start = () => {
  cpu0 = process.cpuUsage()
  return performance.now()
}
const report = (name: string, t0: number, n: number) => {
  const ms = performance.now() - t0
  const cpu = process.cpuUsage(cpu0)
  const cpuS = (cpu.user + cpu.system) / 1e6
  console.log(
    `${name.padEnd(22)} ${MiB} MiB in ${ms.toFixed(0).padStart(5)} ms = ${
      ((n * 8) / (ms / 1000) / 1e9).toFixed(2)
    } Gbit/s, ` +
      `${(cpuS / (n / 2 ** 30)).toFixed(2)} CPU s/GiB (both ends, one process)`
  )
}

const listenAddr = Multiaddr.fromString("/ip4/127.0.0.1/tcp/0")
if (Result.isFailure(listenAddr)) throw listenAddr.failure

const viaTransport = Effect.scoped(Effect.gen(function*() {
  const tcp = Tcp.make()
  const done = yield* Deferred.make<number>()
  const listener = yield* tcp.listen(listenAddr.success, (conn) =>
    Effect.gen(function*() {
      let n = 0
      let reads = 0
      while (true) {
        const chunks = yield* conn.duplex.read
        if (chunks.length === 0) break
        reads++
        for (const c of chunks) n += c.byteLength
      }
      console.log(`  ${reads} reads, ${(n / reads / 1024).toFixed(0)} KiB per read on average`)
      yield* Deferred.succeed(done, n)
    }).pipe(Effect.ignore))
  const conn = yield* tcp.dial(listener.addrs[0]!)
  const t0 = start()
  for (let sent = 0; sent < total; sent += batchBytes) yield* conn.duplex.write(batch)
  yield* conn.duplex.closeWrite
  report("Tcp transport Duplex", t0, yield* Deferred.await(done))
}))

const rawNet = Effect.promise(() =>
  new Promise<void>((resolve) => {
    const server = Net.createServer((s) => {
      let n = 0
      s.on("data", (d: Buffer) => (n += d.byteLength))
      s.on("end", () => {
        report("raw node:net", t0, n)
        s.destroy()
        server.close()
        resolve()
      })
    })
    let t0 = 0
    server.listen(0, "127.0.0.1", () => {
      const c = Net.createConnection({
        port: (server.address() as Net.AddressInfo).port,
        host: "127.0.0.1",
        noDelay: true
      })
      c.on("connect", () => {
        t0 = start()
        let sent = 0
        const pump = () => {
          while (sent < total) {
            c.cork()
            let ok = true
            for (const p of batch) ok = c.write(p)
            c.uncork()
            sent += batchBytes
            if (!ok) return void c.once("drain", pump)
          }
          c.end()
        }
        pump()
      })
    })
  })
)

Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < rounds; i++) {
    yield* viaTransport
    yield* rawNet
  }
})).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
