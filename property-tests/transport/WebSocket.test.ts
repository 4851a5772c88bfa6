/**
 * Properties of the WebSocket transport's byte stream over real loopback
 * sockets: the libp2p websockets spec carries the raw libp2p byte stream in
 * binary messages, so message boundaries must not show — whatever the write
 * batching (joined into ~64 KiB messages, cut at 1 MiB), the read-buffer bound
 * and the reader's pace, each side reads exactly the bytes the other wrote, in
 * order (connections spec §Definitions: a reliable bidirectional channel with
 * backpressure); and the closing handshake (RFC 6455 §7.1.2) ends the stream
 * after every byte written before it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Result } from "effect"
import fc from "fast-check"
import { fillBatches } from "../../spec-tests/support/bytes.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as WebSocket from "../../src/transport/WebSocket.ts"

const loopback = Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0/ws"))

/** Read exactly `n` bytes, sleeping `lagMs` before each read so that several messages pile up into one batch. */
const readLagging = (d: Duplex.Duplex, n: number, lagMs: number) =>
  Effect.gen(function*() {
    const all: Array<Uint8Array> = []
    let have = 0
    while (have < n) {
      if (lagMs > 0) yield* Effect.sleep(lagMs)
      const chunks = yield* d.read
      if (Duplex.isEOF(chunks)) break
      for (const c of chunks) {
        all.push(c)
        have += c.byteLength
      }
    }
    return Duplex.concat(all)
  })

/** Batch shapes as chunk lengths (0 included: empty chunks and empty batches are legal writes; one size over 1 MiB). */
const shapeArb = fc.array(
  fc.array(
    fc.oneof(
      { arbitrary: fc.nat(300), weight: 4 },
      { arbitrary: fc.nat(200_000), weight: 2 },
      { arbitrary: fc.constant(1_100_000), weight: 1 }
    ),
    { maxLength: 6 }
  ),
  { maxLength: 8 }
)

describe("WebSocket byte stream properties", () => {
  it.live(
    "whatever the batching, the read-buffer bound and the reader's pace, each side reads exactly the bytes the other wrote, in order; the dialer's closeWrite then ends both directions (EOF)",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            shapeArb,
            shapeArb,
            fc.integer({ min: 1, max: 256 * 1024 }),
            fc.constantFrom(0, 0, 1, 3),
            (upShape, downShape, maxBufferedBytes, lagMs) =>
              Effect.runPromise(Effect.scoped(Effect.gen(function*() {
                const up = fillBatches(upShape)
                const down = fillBatches(downShape)
                const ws = WebSocket.make({ maxBufferedBytes })
                const expectedUp = Duplex.concat(up.flat())
                const expectedDown = Duplex.concat(down.flat())
                const serverGot = yield* Deferred.make<{ bytes: Uint8Array; eof: boolean }, Duplex.DuplexError>()
                const listener = yield* ws.listen(loopback, (conn) =>
                  Effect.gen(function*() {
                    // write our side while reading theirs: both directions at once
                    const writer = yield* Effect.forkChild(Effect.gen(function*() {
                      for (const b of down) yield* conn.duplex.write(b)
                    }))
                    const bytes = yield* readLagging(conn.duplex, expectedUp.byteLength, lagMs)
                    yield* Fiber.join(writer)
                    // the dialer's Close comes after everything it wrote
                    const eof = Duplex.isEOF(yield* conn.duplex.read)
                    return { bytes, eof }
                  }).pipe(Effect.exit, Effect.flatMap((exit) => Deferred.done(serverGot, exit))))
                const conn = yield* ws.dial(listener.addrs[0]!)
                const writer = yield* Effect.forkChild(Effect.gen(function*() {
                  for (const b of up) yield* conn.duplex.write(b)
                }))
                const got = yield* readLagging(conn.duplex, expectedDown.byteLength, lagMs)
                yield* Fiber.join(writer)
                yield* conn.duplex.closeWrite
                expect(Buffer.compare(got, expectedDown)).toBe(0)
                const server = yield* Deferred.await(serverGot)
                expect(Buffer.compare(server.bytes, expectedUp)).toBe(0)
                expect(server.eof).toBe(true)
                expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
              })))
          ),
          { numRuns: 20 }
        )
      ),
    120_000
  )
})
