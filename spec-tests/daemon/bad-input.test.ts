/**
 * Bad input on the control socket of our daemon (a separate process): garbage, a bad
 * varint, an oversized request, a request cut off mid-message, a SUBSCRIBE whose client
 * vanishes, 1,000 idle control connections, a stream handler address that refuses the
 * daemon's dial. Each is answered with an error response or a closed connection; the
 * daemon keeps serving other clients, and its open file descriptors (/proc/<pid>/fd) come
 * back to the baseline. Fibers are not observable from outside the process; the fd count
 * covers every socket a leaked fiber would hold.
 */
import { describe, expect, it } from "@effect/vitest"
import { Request, Response } from "@libp2p/daemon-protocol"
import { peerIdFromString } from "@libp2p/peer-id"
import { multiaddr } from "@multiformats/multiaddr"
import { Effect, Schedule } from "effect"
import * as Net from "node:net"
import * as Messages from "../../src/daemon/messages.ts"
import { call, type Daemon, fdCount, ourDaemon } from "./support.ts"

const controlPort = (d: Daemon) => Number(/\/tcp\/(\d+)$/.exec(d.controlAddr)![1])

/** Open a control connection, write `bytes`, and collect what comes back until the daemon closes it. */
const exchange = (d: Daemon, bytes: Uint8Array, options: { readonly destroyAfterWrite?: boolean } = {}) =>
  call(() =>
    new Promise<{ readonly data: Buffer; readonly closedByDaemon: boolean }>((resolve, reject) => {
      const socket = Net.connect(controlPort(d), "127.0.0.1")
      let data = Buffer.alloc(0)
      socket.on("data", (chunk) => void (data = Buffer.concat([data, chunk])))
      socket.on("error", (e) => (options.destroyAfterWrite ? resolve({ data, closedByDaemon: false }) : reject(e)))
      socket.on("end", () => {
        socket.end()
        resolve({ data, closedByDaemon: true })
      })
      socket.write(bytes, () => {
        if (options.destroyAfterWrite === true) {
          socket.destroy()
          resolve({ data, closedByDaemon: false })
        }
      })
    })
  )

/** The first length-prefixed Response in `data`. */
const firstResponse = (data: Buffer) => {
  let len = 0
  let i = 0
  for (; i < 5; i++) {
    len |= (data[i]! & 0x7f) << (7 * i)
    if ((data[i]! & 0x80) === 0) break
  }
  return Response.decode(data.subarray(i + 1, i + 1 + len))
}

const varint = (n: number) => {
  const out: Array<number> = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return Uint8Array.from(out)
}

const frame = (body: Uint8Array) => Uint8Array.from([...varint(body.length), ...body])

const stillServing = (d: Daemon) =>
  Effect.gen(function*() {
    const id = yield* call(() => d.client.identify())
    expect(id.peerId.toString()).toBe(d.peerId)
  })

/** Wait until the daemon's fd count is back to `baseline` (closing sockets takes a moment). */
const fdsBackTo = (d: Daemon, baseline: number) =>
  Effect.gen(function*() {
    const now = yield* fdCount(d.pid)
    if (now > baseline) return yield* Effect.fail(`fds ${now} > baseline ${baseline}`)
  }).pipe(Effect.retry(Schedule.spaced("200 millis")), Effect.timeout("20 seconds"))

describe("daemon control socket under bad input", () => {
  it.live(
    "CONTROL.md framing: garbage, a bad varint, an oversized request, a cut-off request, a vanished subscriber",
    () =>
      Effect.gen(function*() {
        const d = yield* ourDaemon({ args: ["--pubsub", "floodsub"] })
        yield* stillServing(d)
        const baseline = yield* fdCount(d.pid)

        // garbage in a well-formed frame: an error response naming it, then the connection closes
        const garbage = yield* exchange(d, frame(Uint8Array.from([0xff, 0xff, 0xff, 0x07, 0x01, 0x02])))
        expect(garbage.closedByDaemon).toBe(true)
        expect(firstResponse(garbage.data).type).toBe(Response.Type.ERROR)
        expect(firstResponse(garbage.data).error?.msg).toMatch(/^not a daemon request/)
        // a frame whose length is not a varint
        const badVarint = yield* exchange(d, new Uint8Array(11).fill(0xff))
        expect(badVarint.closedByDaemon).toBe(true)
        // an oversized request: refused at its length prefix, nothing buffered
        const oversized = yield* exchange(
          d,
          Uint8Array.from([...varint(Messages.MAX_REQUEST_SIZE + 1), ...new Uint8Array(1024)])
        )
        expect(oversized.closedByDaemon).toBe(true)
        expect(firstResponse(oversized.data).error?.msg).toMatch(/over \d+ bytes/)
        // a request cut off mid-message, then the client disconnects
        yield* exchange(d, Uint8Array.from([...varint(100), 0x08, 0x00]), { destroyAfterWrite: true })
        // an unknown request type (not in the closed proto2 enum): an error response, then closed (go closes)
        const unknown = yield* exchange(d, frame(Uint8Array.from([0x08, 0x63])))
        expect(unknown.closedByDaemon).toBe(true)
        expect(firstResponse(unknown.data).type).toBe(Response.Type.ERROR)
        // SUBSCRIBE, then the client vanishes: the subscription ends with the connection
        const subscribe = Messages.RequestCodec.encode({
          type: Messages.RequestType.PUBSUB,
          pubsub: { type: Messages.PubsubType.SUBSCRIBE, topic: "gone" }
        })
        yield* exchange(d, frame(subscribe), { destroyAfterWrite: true })
        yield* call(async () => {
          const topics = await d.client.pubsub.getTopics()
          if (topics.length > 0) throw new Error(`still subscribed: ${topics}`)
        }).pipe(Effect.retry(Schedule.spaced("200 millis")), Effect.timeout("10 seconds"))

        yield* stillServing(d)
        yield* fdsBackTo(d, baseline)
      }),
    120_000
  )

  it.live(
    "1,000 idle control connections: the daemon keeps serving, fds back to the baseline when they close",
    () =>
      Effect.gen(function*() {
        const d = yield* ourDaemon()
        yield* stillServing(d)
        const baseline = yield* fdCount(d.pid)
        const sockets = yield* call(() =>
          Promise.all(
            Array.from({ length: 1000 }, () =>
              new Promise<Net.Socket>((resolve, reject) => {
                const s = Net.connect(controlPort(d), "127.0.0.1", () => resolve(s))
                s.on("error", reject)
              }))
          )
        )
        yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((s) => s.destroy())))
        // all accepted (each holds an fd in the daemon; the baseline may still count the
        // identify connection, closing as it was read)
        yield* Effect.gen(function*() {
          const now = yield* fdCount(d.pid)
          if (now < baseline + 1000 - 2) return yield* Effect.fail(`fds ${now}`)
        }).pipe(
          Effect.retry(Schedule.spaced("200 millis")),
          Effect.timeout("30 seconds"),
          Effect.tapError(() => Effect.map(fdCount(d.pid), (n) => console.log(`baseline ${baseline}, now ${n}`)))
        )
        yield* stillServing(d)
        for (const s of sockets) s.destroy()
        yield* fdsBackTo(d, baseline)
        yield* stillServing(d)
      }),
    120_000
  )

  it.live(
    "CONTROL.md STREAM_HANDLER at an address that refuses: the stream is reset, both daemons keep serving",
    () =>
      Effect.gen(function*() {
        const [a, b] = yield* Effect.all([ourDaemon(), ourDaemon()], { concurrency: 2 })
        yield* call(() =>
          a.client.connect(peerIdFromString(b.peerId), b.addrs.map((x) => multiaddr(x.replace(/\/p2p\/.*$/, ""))))
        )
        // a port nobody listens on: bind one, note it, close it
        const port = yield* call(() =>
          new Promise<number>((resolve) => {
            const server = Net.createServer().listen(0, "127.0.0.1", () => {
              const p = (server.address() as Net.AddressInfo).port
              server.close(() => resolve(p))
            })
          })
        )
        const baseline = yield* fdCount(b.pid)
        const register = yield* call(async () => {
          const sh = await b.client.send({
            type: Request.Type.STREAM_HANDLER,
            streamHandler: { addr: multiaddr(`/ip4/127.0.0.1/tcp/${port}`).bytes, proto: ["/refused/1.0.0"] }
          })
          const r = await sh.read(Response as never)
          await sh.unwrap().close()
          return r as Response
        })
        expect(register.type).toBe(Response.Type.OK)
        for (let i = 0; i < 3; i++) {
          // the stream opens (b serves the protocol), then b cannot reach its handler and resets it
          const outcome = yield* call(async () => {
            const stream = await a.client.openStream(peerIdFromString(b.peerId), "/refused/1.0.0")
            stream.send(new TextEncoder().encode("anyone?"))
            const chunks = []
            for await (const c of stream) chunks.push(c)
            return chunks.length
          }).pipe(Effect.result)
          expect(outcome._tag === "Failure" || outcome.success === 0).toBe(true)
        }
        yield* stillServing(a)
        yield* stillServing(b)
        yield* fdsBackTo(b, baseline)
      }),
    120_000
  )
})
