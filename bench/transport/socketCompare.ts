/**
 * Loopback throughput: our flowing-mode node:net Duplex (src/transport/internal/socketDuplex.ts)
 * against effect's socket (NodeSocket / NodeSocketServer, paused-mode `read()` pulls).
 * Usage: npx node bench/transport/socketCompare.ts [MiB]
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Deferred, Effect, Fiber } from "effect"
import * as Net from "node:net"
import * as SocketDuplex from "../../src/transport/SocketDuplex.ts"

const MiB = Number(process.argv[2] ?? "256")
const total = MiB * 1024 * 1024
const chunk = new Uint8Array(64 * 1024).fill(7)
const batch = [chunk, chunk, chunk, chunk] as const
const opts = { maxBufferedBytes: 4 * 1024 * 1024, closeTimeout: "1 second" } as const

let cpu0 = process.cpuUsage()
const start = () => {
  cpu0 = process.cpuUsage()
  return performance.now()
}
const report = (name: string, ms: number) => {
  const cpu = process.cpuUsage(cpu0)
  const cpuS = (cpu.user + cpu.system) / 1e6
  console.error(
    `${name}: ${MiB} MiB in ${ms.toFixed(0)} ms = ${((total * 8) / (ms / 1000) / 1e9).toFixed(2)} Gbit/s, ` +
      `${(cpuS / (total / 2 ** 30)).toFixed(2)} CPU s/GiB (both ends)`
  )
}

const ours = Effect.gen(function*() {
  const done = yield* Deferred.make<number>()
  const server = Net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => {
    const d = SocketDuplex.make(s, opts)
    Effect.runFork(Effect.gen(function*() {
      let n = 0
      while (true) {
        const b = yield* d.duplex.read
        if (b.length === 0) break
        for (const c of b) n += c.byteLength
      }
      yield* Deferred.succeed(done, n)
      yield* d.close
    }))
  })
  yield* Effect.callback<void>((r) => void server.listen(0, "127.0.0.1", () => r(Effect.void)))
  const port = (server.address() as Net.AddressInfo).port
  const d = yield* Effect.callback<SocketDuplex.SocketDuplex>((r) => {
    const s = Net.createConnection({ host: "127.0.0.1", port, noDelay: true, allowHalfOpen: true })
    s.once("connect", () => r(Effect.succeed(SocketDuplex.make(s, opts))))
  })
  const t0 = start()
  let sent = 0
  while (sent < total) {
    yield* d.duplex.write(batch)
    sent += 4 * chunk.byteLength
  }
  yield* d.duplex.closeWrite
  const n = yield* Deferred.await(done)
  report(`ours (flowing node:net), received ${n}`, performance.now() - t0)
  yield* d.close
  server.close()
})

const effectSocket = Effect.scoped(Effect.gen(function*() {
  const done = yield* Deferred.make<number>()
  const server = yield* NodeSocketServer.make({ host: "127.0.0.1", port: 0, allowHalfOpen: true })
  const port = server.address._tag === "UnixPathAddress" ? 0 : server.address.port
  yield* Effect.forkScoped(server.run((socket) =>
    Effect.gen(function*() {
      const { pull } = yield* socket.reader
      let n = 0
      yield* Effect.gen(function*() {
        while (true) for (const c of yield* pull) n += typeof c === "string" ? c.length : c.byteLength
      }).pipe(Effect.ignore)
      yield* Deferred.succeed(done, n)
    }).pipe(Effect.scoped, Effect.ignore)
  ))
  const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port, noDelay: true })
  const readerFiber = yield* Effect.forkScoped(Effect.scoped(Effect.andThen(socket.reader, Effect.never)))
  const t0 = start()
  yield* Effect.scoped(Effect.gen(function*() {
    const writer = yield* socket.writer
    let sent = 0
    while (sent < total) {
      yield* writer.writeAll(batch)
      sent += 4 * chunk.byteLength
    }
  }))
  const n = yield* Deferred.await(done)
  report(`effect socket (paused read()), received ${n}`, performance.now() - t0)
  yield* Fiber.interrupt(readerFiber)
}))

Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < 4; i++) {
    if (process.argv[3] !== "effect") yield* ours
    yield* effectSocket
  }
})).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
