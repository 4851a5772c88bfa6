/**
 * Helpers for tests of a StreamMuxer (src/muxer/StreamMuxer.ts): sessions over
 * an in-memory pair, an echo server, and whole-stream round trips. Used by the
 * compliance suite (spec-tests/muxer/compliance.ts) and the per-muxer tests.
 */
import { Effect, Exit, Fiber, Scope } from "effect"
import * as Net from "node:net"
import * as Duplex from "../../src/core/Duplex.ts"
import type { MuxedSession, MuxedStream, StreamMuxer } from "../../src/muxer/StreamMuxer.ts"
import * as SocketDuplex from "../../src/transport/SocketDuplex.ts"
import { KiB, MiB } from "./bytes.ts"

/** Something that makes two connected Duplexes in the current scope. */
export type PairMaker = () => Effect.Effect<readonly [Duplex.Duplex, Duplex.Duplex], never, Scope.Scope>

/**
 * The two ends of a real loopback TCP connection, as socket duplexes (which
 * are Duplex.Pollable: a muxer over them reads without a fiber). Both sockets
 * are destroyed when the scope closes.
 */
export const socketPair: PairMaker = () =>
  Effect.acquireRelease(
    Effect.callback<readonly [SocketDuplex.SocketDuplex, SocketDuplex.SocketDuplex]>((resume) => {
      const options = { maxBufferedBytes: 1024 * 1024, closeTimeout: "1 second" as const }
      const server = Net.createServer({ allowHalfOpen: true })
      server.once("connection", (accepted) => {
        server.close()
        resume(Effect.succeed([SocketDuplex.make(client, options), SocketDuplex.make(accepted, options)]))
      })
      let client: Net.Socket
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as Net.AddressInfo
        client = Net.connect({ port, host: "127.0.0.1", allowHalfOpen: true, noDelay: true })
      })
    }),
    ([a, b]) => Effect.all([a.close, b.close], { discard: true })
  ).pipe(Effect.map(([a, b]) => [a.duplex, b.duplex] as const))

/** Two sessions of `muxer` over an in-memory pair (or `pair`'s): `client` outbound, `server` inbound. */
export const sessionPair = (muxer: StreamMuxer, pair: PairMaker = () => Duplex.pair()) =>
  Effect.gen(function*() {
    const [a, b] = yield* pair()
    const client = yield* muxer.create(a, { direction: "outbound" })
    const server = yield* muxer.create(b, { direction: "inbound" })
    return { client, server }
  })

/** Echo every byte of a stream back, then half-close. */
export const echoStream = (s: MuxedStream) =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* s.read
      if (chunks.length === 0) break
      yield* s.write(chunks)
    }
    yield* s.closeWrite
  })

/** Accept streams forever and echo each (each stream lives in its own scope). */
export const serveEcho = (session: MuxedSession) =>
  Effect.forkChild(
    Effect.gen(function*() {
      while (true) {
        const scope = yield* Scope.make()
        const s = yield* Scope.provide(session.accept, scope)
        yield* Effect.forkChild(echoStream(s).pipe(Effect.ignore, Effect.ensuring(Scope.close(scope, Exit.void))))
      }
    }).pipe(Effect.ignore)
  )

/** Everything a stream delivers until EOF (at most `max` bytes). */
export const readAllBytes = (s: MuxedStream, max = 64 * MiB) => Duplex.readAll(s, max)

/** Write `data` in pieces from a forked fiber, half-close, and read everything back. */
export const roundTrip = (s: MuxedStream, data: Uint8Array, piece = 64 * KiB) =>
  Effect.gen(function*() {
    const writer = yield* Effect.forkChild(Effect.gen(function*() {
      for (let at = 0; at < data.byteLength; at += piece) yield* s.write([data.subarray(at, at + piece)])
      yield* s.closeWrite
    }))
    const back = yield* readAllBytes(s, data.byteLength + 1)
    yield* Fiber.join(writer)
    return back
  })

/**
 * Relay `from` → `to`, re-cutting the byte stream at the sizes `cuts` yields (cycled).
 * `onRead` sees each batch as read, `onDelivered` once it was written on.
 */
export const rechunkRelay = (
  from: Duplex.Duplex,
  to: Duplex.Duplex,
  cuts: ReadonlyArray<number>,
  onRead: (chunk: Uint8Array) => void,
  onDelivered: (chunk: Uint8Array) => void = () => {}
) =>
  Effect.gen(function*() {
    let k = 0
    while (true) {
      const batch = yield* from.read
      if (batch.length === 0) return yield* to.closeWrite
      const bytes = Duplex.concat(batch)
      onRead(bytes)
      const out: Array<Uint8Array> = []
      for (let at = 0; at < bytes.byteLength;) {
        const n = Math.min(cuts[k++ % cuts.length]!, bytes.byteLength - at)
        out.push(bytes.slice(at, at + n))
        at += n
      }
      yield* to.write(out)
      onDelivered(bytes)
    }
  }).pipe(Effect.ignore)

/**
 * Write `data` in writes of the sizes `writes` yields (cycled), each split into two
 * chunks to exercise multi-chunk batches, then half-close.
 */
export const writeInPieces = (s: MuxedStream, data: Uint8Array, writes: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    let at = 0
    let w = 0
    while (at < data.byteLength) {
      const n = Math.max(1, Math.min(writes[w++ % writes.length]!, data.byteLength - at))
      const mid = at + (n >> 1)
      yield* s.write([data.subarray(at, mid), data.subarray(mid, at + n)])
      at += n
    }
    yield* s.closeWrite
  })
