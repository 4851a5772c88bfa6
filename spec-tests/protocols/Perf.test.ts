/**
 * The perf protocol (`/perf/1.0.0`, libp2p perf spec §Protocol) between our
 * own nodes, over TCP (+ Noise + Yamux) and over the memory transport:
 * exact byte counts on both sides, the wire format checked against hand-made
 * peers (so that our client and our server are not only checked against each
 * other), a malformed request (the stream ends inside the 8-byte size) and a
 * client that walks away from a huge (2^64 - 1 bytes) download.
 *
 * Throughput for the 10 MiB case goes to stderr; nothing asserts on speed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Perf from "../../src/protocols/perf/Perf.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { eventually, watchedNode } from "../support/attacker.ts"
import { memoryNode, tcpNode, type TestNode } from "../support/node.ts"

const MiB = 1024 * 1024

const CASES: ReadonlyArray<readonly [number, number]> = [
  [0, 0],
  [1, 1],
  [MiB, 0],
  [0, MiB],
  [10 * MiB, 10 * MiB]
]

const gbps = (bytes: number, seconds: number) => seconds > 0 ? ((bytes * 8) / seconds / 1e9).toFixed(2) : "∞"

/** Run every case client → server, checking the client's result and the server's own counts. */
const runCases = (label: string, client: TestNode, server: TestNode) =>
  Effect.gen(function*() {
    for (const [up, down] of CASES) {
      const before = server.perf.stats()
      const r = yield* client.perf.perf(server.addr, { uploadBytes: up, downloadBytes: down })
      expect(r.uploadBytes).toBe(up)
      expect(r.downloadBytes).toBe(down)
      expect(r.seconds).toBeGreaterThanOrEqual(0)
      expect(r.uploadSeconds + r.downloadSeconds).toBeCloseTo(r.seconds, 6)
      // the server's handler finishes right after its close reaches us
      const settled = yield* eventually(Effect.sync(() => server.perf.stats().completed === before.completed + 1))
      expect(settled).toBe(true)
      const after = server.perf.stats()
      expect(after.uploadBytes - before.uploadBytes).toBe(up)
      expect(after.downloadBytes - before.downloadBytes).toBe(down)
      expect(after.failed).toBe(before.failed)
      expect(after.active).toBe(0)
      if (up === 10 * MiB) {
        process.stderr.write(
          `[perf ${label}] 10 MiB up + 10 MiB down in ${r.seconds.toFixed(3)} s ` +
            `(up ${gbps(up, r.uploadSeconds)} Gbit/s, down ${gbps(down, r.downloadSeconds)} Gbit/s)\n`
        )
      }
    }
  })

describe("perf spec §Protocol between our nodes", () => {
  it.live("perf spec §Protocol over TCP: byte counts exact for (0,0), (1,1), (1 MiB,0), (0,1 MiB), (10 MiB,10 MiB)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([tcpNode(), tcpNode()])
      yield* runCases("tcp", a, b)
      // and the other way on the same connection
      yield* runCases("tcp, reverse", b, a)
    }))

  it.live("perf spec §Protocol over the memory transport: byte counts exact for the same cases", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([memoryNode(), memoryNode()])
      yield* runCases("memory", a, b)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("perf spec §Protocol on a given connection (perfOn): the streams open on that connection, byte counts exact", () =>
    Effect.gen(function*() {
      const [client, server] = yield* Effect.all([tcpNode(), tcpNode()])
      const conn = yield* client.host.dial(server.addr)
      const before = conn.bytes()?.written ?? 0
      const r = yield* Perf.perfOn(conn, { uploadBytes: MiB, downloadBytes: MiB + 3 })
      expect(r).toMatchObject({ uploadBytes: MiB, downloadBytes: MiB + 3 })
      // the upload went out on `conn` itself
      expect((conn.bytes()?.written ?? 0) - before).toBeGreaterThanOrEqual(MiB)
      expect(conn.bytes()?.read ?? 0).toBeGreaterThanOrEqual(MiB + 3)
      // a bad size fails before any stream is opened
      const bad = yield* Effect.flip(Perf.perfOn(conn, { uploadBytes: -1, downloadBytes: 0 }))
      expect(bad).toMatchObject({ _tag: "PerfError", reason: "InvalidSize" })
    }))

  it.live("perf spec §Protocol, server: a hand-made client's big-endian u64 is honoured; the upload is read to EOF first [perf:protocol:3] [perf:protocol:2]", () =>
    Effect.gen(function*() {
      const [client, server] = yield* Effect.all([tcpNode(), tcpNode()])
      // 0x0000_0000_0001_0203 = 66051 bytes asked for; upload 5 bytes after the header, in two writes
      const answer = yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* client.host.newStream(server.addr, [Perf.PROTOCOL])
        yield* stream.write([Uint8Array.of(0, 0, 0, 0, 0, 1, 2), Uint8Array.of(3, 9, 9)])
        yield* stream.write([Uint8Array.of(9, 9, 9)])
        yield* stream.closeWrite
        return yield* Duplex.readAll(stream, MiB)
      }))
      expect(answer.byteLength).toBe(0x010203)
      const settled = yield* eventually(Effect.sync(() => server.perf.stats().completed === 1))
      expect(settled).toBe(true)
      expect(server.perf.stats().uploadBytes).toBe(5)
      expect(server.perf.stats().downloadBytes).toBe(0x010203)
    }))

  it.live("perf spec §Protocol, client: writes the size as a big-endian u64, then the upload, closes, then reads to EOF", () =>
    Effect.gen(function*() {
      const [client, server] = yield* Effect.all([tcpNode(), tcpNode()])
      const seen: Array<{ header: string; upload: number }> = []
      // a hand-made server on another protocol id: reads everything, then answers
      yield* server.registrar.handle("/test/perf-check/1.0.0", (stream) =>
        Effect.gen(function*() {
          const all = yield* Duplex.readAll(stream, 4 * MiB)
          const header = Buffer.from(all.subarray(0, 8)).toString("hex")
          seen.push({ header, upload: all.byteLength - 8 })
          const size = Number(new DataView(all.buffer, all.byteOffset, 8).getBigUint64(0, false))
          yield* stream.write([new Uint8Array(size).fill(7)])
          yield* stream.closeWrite
        }))
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* client.host.newStream(server.addr, ["/test/perf-check/1.0.0"])
        return yield* Perf.exchange(stream, { uploadBytes: 3 * MiB + 17, downloadBytes: 258 }, 0n)
      }))
      expect(seen).toEqual([{ header: "0000000000000102", upload: 3 * MiB + 17 }])
      expect(result.downloadBytes).toBe(258)
      expect(result.uploadBytes).toBe(3 * MiB + 17)
    }))

  it.live("perf spec §Protocol, client: a server that sends fewer or more bytes than asked is a typed PerfError", () =>
    Effect.gen(function*() {
      const [client, server] = yield* Effect.all([tcpNode(), tcpNode()])
      const answering = (extra: number) => (stream: Duplex.Duplex) =>
        Effect.gen(function*() {
          const all = yield* Duplex.readAll(stream, MiB)
          const size = Number(new DataView(all.buffer, all.byteOffset, 8).getBigUint64(0, false))
          if (size + extra > 0) yield* stream.write([new Uint8Array(size + extra)])
          yield* stream.closeWrite
        })
      yield* server.registrar.handle("/test/short/1.0.0", answering(-1))
      yield* server.registrar.handle("/test/long/1.0.0", answering(1))
      const attempt = (protocol: string) =>
        Effect.scoped(Effect.gen(function*() {
          const stream = yield* client.host.newStream(server.addr, [protocol])
          return yield* Perf.exchange(stream, { uploadBytes: 10, downloadBytes: 1000 }, 0n)
        })).pipe(Effect.flip)
      const short = yield* attempt("/test/short/1.0.0")
      const long = yield* attempt("/test/long/1.0.0")
      expect(short._tag === "PerfError" && short.reason).toBe("ShortDownload")
      expect(long._tag === "PerfError" && long.reason).toBe("LongDownload")
    }))

  it.live("perf client: sizes that are negative, fractional or beyond 2^53 fail with PerfError InvalidSize before any stream", () =>
    Effect.gen(function*() {
      const [client, server] = yield* Effect.all([tcpNode(), tcpNode()])
      for (const [up, down] of [[-1, 0], [0, 1.5], [2 ** 53, 0], [0, Number.NaN]] as const) {
        const e = yield* Effect.flip(client.perf.perf(server.addr, { uploadBytes: up, downloadBytes: down }))
        expect(e._tag === "PerfError" && e.reason).toBe("InvalidSize")
      }
      expect(client.host.connections()).toHaveLength(0)
    }))

  it.live("perf spec §Protocol, server: a request that ends inside the 8-byte size is reset with a typed PerfError logged; the node carries on", () =>
    Effect.gen(function*() {
      const server = yield* watchedNode()
      const client = yield* tcpNode()
      for (const n of [0, 3, 7]) {
        const outcome = yield* Effect.scoped(Effect.gen(function*() {
          const stream = yield* client.host.newStream(server.addr, [Perf.PROTOCOL], { lazy: false })
          if (n > 0) yield* stream.write([new Uint8Array(n).fill(0xff)])
          yield* stream.closeWrite
          return yield* Effect.exit(Duplex.readAll(stream, MiB))
        }))
        // the server resets the stream: our read fails with Reset (never a clean EOF with data)
        expect(Exit.isFailure(outcome)).toBe(true)
        if (Exit.isFailure(outcome)) {
          const e = outcome.cause.reasons[0]
          expect(e?._tag === "Fail" && e.error.reason).toBe("Reset")
        }
        const logged = yield* eventually(
          Effect.sync(() =>
            server.failures().filter((f) => f.tag === "PerfError" && f.reason === "ShortHeader").length ===
            [0, 3, 7].indexOf(n) + 1
          )
        )
        expect(logged).toBe(true)
      }
      expect(server.perf.stats()).toMatchObject({ active: 0, completed: 0, failed: 3 })
      expect(server.defects()).toEqual([])
      // still healthy: same connection pings and runs a good perf exchange
      expect(client.host.connections()).toHaveLength(1)
      expect(yield* client.ping.ping(server.addr)).toHaveLength(1)
      const r = yield* client.perf.perf(server.addr, { uploadBytes: 100, downloadBytes: 100 })
      expect(r.downloadBytes).toBe(100)
    }))

  it.live("perf spec §Protocol, server: a 2^64 - 1 byte download stops when the client resets the stream or hangs up (nothing left running) [perf:single-connection-throughput:1]", () =>
    Effect.gen(function*() {
      const server = yield* watchedNode()
      const client = yield* tcpNode()
      /** Ask for everything, read `atLeast` bytes of it, then walk away with `leave`. */
      const hugeDownload = (atLeast: number, leave: (stream: Duplex.Duplex) => Effect.Effect<void>) =>
        Effect.scoped(Effect.gen(function*() {
          const stream = yield* client.host.newStream(server.addr, [Perf.PROTOCOL])
          yield* stream.write([Perf.encodeHeader(Perf.MAX_U64), new Uint8Array(1000)])
          yield* stream.closeWrite
          let got = 0
          while (got < atLeast) {
            const chunks = yield* stream.read
            expect(chunks.length).toBeGreaterThan(0)
            got += Duplex.byteLength(chunks)
          }
          expect(server.perf.stats().active).toBe(1)
          yield* leave(stream)
          return got
        }))

      // 1. the client resets the stream
      const got = yield* hugeDownload(8 * MiB, (s) => s.reset)
      expect(got).toBeGreaterThanOrEqual(8 * MiB)
      const stopped = yield* eventually(Effect.sync(() => server.perf.stats().active === 0))
      expect(stopped).toBe(true)
      expect(server.perf.stats()).toMatchObject({ completed: 0, failed: 1 })
      expect(server.failures().some((f) => f.tag === "PerfError" && f.reason === "Stream")).toBe(true)
      // the connection is fine and has no stream left on the server side
      expect(yield* client.ping.ping(server.addr)).toHaveLength(1)
      const conn = server.host.connections()[0]!
      expect(yield* eventually(Effect.sync(() => conn.streamCount() === 0))).toBe(true)

      // 2. the client hangs up the whole connection mid-download
      yield* hugeDownload(2 * MiB, () => client.host.hangUp(server.host.peerId))
      const stoppedAgain = yield* eventually(Effect.sync(() => server.perf.stats().active === 0))
      expect(stoppedAgain).toBe(true)
      expect(server.perf.stats()).toMatchObject({ completed: 0, failed: 2 })
      expect(yield* eventually(Effect.sync(() => server.host.connections().length === 0))).toBe(true)
      expect(server.defects()).toEqual([])

      // a fresh exchange still works
      const r = yield* client.perf.perf(server.addr, { uploadBytes: MiB, downloadBytes: MiB })
      expect(r.downloadBytes).toBe(MiB)
    }))
})
