/**
 * One-way loopback throughput through the WebSocket transport's Duplex
 * (WebSocket.make: dial + listen, /ws), client → server (masked frames) and
 * server → client, against the plain `ws` library in the same process as the
 * bound. Batches of 16 × 64 KiB chunks (one corked write, one message each).
 * Usage: npx node bench/transport/wsThroughput.ts [MiB] [rounds]
 */
import { Deferred, Effect, Result } from "effect"
import { WebSocket as WsClient, WebSocketServer } from "ws"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import * as WebSocket from "../../src/transport/WebSocket.ts"

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
    `${name.padEnd(28)} ${MiB} MiB in ${ms.toFixed(0).padStart(5)} ms = ${
      ((n * 8) / (ms / 1000) / 1e9).toFixed(2)
    } Gbit/s, ` +
      `${(cpuS / (n / 2 ** 30)).toFixed(2)} CPU s/GiB (both ends, one process)`
  )
}

const listenAddr = Multiaddr.fromString("/ip4/127.0.0.1/tcp/0/ws")
if (Result.isFailure(listenAddr)) throw listenAddr.failure

const sink = (conn: Transport.RawConnection) =>
  Effect.gen(function*() {
    let n = 0
    while (true) {
      const chunks = yield* conn.duplex.read
      if (chunks.length === 0) break
      for (const c of chunks) n += c.byteLength
    }
    return n
  })

const pump = (conn: Transport.RawConnection) =>
  Effect.gen(function*() {
    for (let sent = 0; sent < total; sent += batchBytes) yield* conn.duplex.write(batch)
    yield* conn.duplex.closeWrite
  })

const viaTransport = (direction: "dialer→listener" | "listener→dialer") =>
  Effect.scoped(Effect.gen(function*() {
    const ws = WebSocket.make()
    const done = yield* Deferred.make<number>()
    const listener = yield* ws.listen(listenAddr.success, (conn) =>
      (direction === "dialer→listener"
        ? Effect.flatMap(sink(conn), (n) => Deferred.succeed(done, n))
        : pump(conn)).pipe(Effect.ignore))
    const conn = yield* ws.dial(listener.addrs[0]!)
    const t0 = start()
    if (direction === "dialer→listener") yield* pump(conn)
    else yield* Deferred.succeed(done, yield* sink(conn))
    report(`ws transport ${direction}`, t0, yield* Deferred.await(done))
  }))

const rawWs = Effect.promise(() =>
  new Promise<void>((resolve) => {
    const server: WebSocketServer = new WebSocketServer(
      { host: "127.0.0.1", port: 0, perMessageDeflate: false },
      () => {
        const port = (server.address() as { port: number }).port
        let n = 0
        let t0 = 0
        server.on("connection", (s) => {
          s.on("message", (d: Buffer) => {
            n += d.byteLength
          })
          s.on("close", () => {
            report("raw ws client→server", t0, n)
            server.close()
            resolve()
          })
        })
        const client = new WsClient(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false })
        client.on("open", () => {
          t0 = start()
          let sent = 0
          const more = () => {
            while (sent < total) {
              for (const c of batch) client.send(c)
              sent += batchBytes
              if (client.bufferedAmount > 4 * 1024 * 1024) {
                setImmediate(more)
                return
              }
            }
            client.close()
          }
          more()
        })
      }
    )
  })
)

for (let r = 0; r < rounds; r++) {
  await Effect.runPromise(viaTransport("dialer→listener"))
  await Effect.runPromise(viaTransport("listener→dialer"))
  await Effect.runPromise(rawWs)
}
