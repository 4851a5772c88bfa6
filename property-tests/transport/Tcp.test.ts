/**
 * Properties of the TCP transport's byte stream (connections spec §Definitions:
 * a connection is a reliable, bidirectional channel; streams support
 * backpressure and half-close), over real loopback sockets.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Result } from "effect"
import fc from "fast-check"
import { fillBatches } from "../../spec-tests/support/bytes.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Tcp from "../../src/transport/Tcp.ts"

const loopback = Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))

/** Read to EOF, sleeping `lagMs` before each read so that several socket chunks pile up into one batch. */
const readAllLagging = (d: Duplex.Duplex, lagMs: number) =>
  Effect.gen(function*() {
    const all: Array<Uint8Array> = []
    while (true) {
      if (lagMs > 0) yield* Effect.sleep(lagMs)
      const chunks = yield* d.read
      if (Duplex.isEOF(chunks)) return Duplex.concat(all)
      all.push(...chunks)
    }
  })

/** Batch shapes as chunk lengths (0 included: empty chunks and empty batches are legal writes). */
const shapeArb = fc.array(fc.array(fc.oneof(fc.nat(300), fc.nat(200_000)), { maxLength: 6 }), { maxLength: 10 })

describe("TCP byte stream properties", () => {
  it.live(
    "whatever the batching, the read-buffer bound and the reader's pace, each side reads exactly the bytes the other wrote, in order, then EOF",
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
                const tcp = Tcp.make({ maxBufferedBytes })
                const expectedUp = Duplex.concat(up.flat())
                const expectedDown = Duplex.concat(down.flat())
                const serverGot = yield* Deferred.make<Uint8Array, Duplex.DuplexError>()
                const listener = yield* tcp.listen(loopback, (conn) =>
                  Effect.gen(function*() {
                    // write our side while reading theirs: both directions at once
                    const writer = yield* Effect.forkChild(Effect.gen(function*() {
                      for (const b of down) yield* conn.duplex.write(b)
                      yield* conn.duplex.closeWrite
                    }))
                    const got = yield* readAllLagging(conn.duplex, lagMs)
                    yield* Fiber.join(writer)
                    return got
                  }).pipe(Effect.exit, Effect.flatMap((exit) => Deferred.done(serverGot, exit))))
                const conn = yield* tcp.dial(listener.addrs[0]!)
                const writer = yield* Effect.forkChild(Effect.gen(function*() {
                  for (const b of up) yield* conn.duplex.write(b)
                  yield* conn.duplex.closeWrite
                }))
                const got = yield* readAllLagging(conn.duplex, lagMs)
                yield* Fiber.join(writer)
                expect(Buffer.compare(got, expectedDown)).toBe(0)
                expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
                expect(Buffer.compare(yield* Deferred.await(serverGot), expectedUp)).toBe(0)
              })))
          ),
          { numRuns: 40 }
        )
      ),
    120_000
  )
})
