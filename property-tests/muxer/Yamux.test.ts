/**
 * Properties of yamux (libp2p yamux spec §Flow Control, §Framing):
 * - "yamux never exceeds the window and delivers bytes in order under
 *   arbitrary chunking": two sessions talk through a relay that re-cuts the
 *   byte stream at random points and records every frame in relay order; per
 *   stream and direction, the data sent never exceeds 256 KiB plus the window
 *   updates the receiver had granted (and that had been delivered) by then,
 *   and every stream's bytes arrive intact and in order.
 * - arbitrary bytes from the network never crash a session: it ends with a
 *   typed MuxerError (or cleanly) once the input ends, never with a defect or
 *   a hang.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Result } from "effect"
import fc from "fast-check"
import { equalBytes, pattern } from "../../spec-tests/support/bytes.ts"
import { echoStream, rechunkRelay, writeInPieces } from "../../spec-tests/support/muxer.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"

/** Incremental decoder of one direction's bytes: calls `onFrame` per header. */
const decoder = (onFrame: (h: Frame.Header) => void) => {
  const header = new Uint8Array(Frame.HEADER_LENGTH)
  let fill = 0
  let skip = 0
  return (chunk: Uint8Array): void => {
    let off = 0
    while (off < chunk.byteLength) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.byteLength - off)
        skip -= n
        off += n
        continue
      }
      const n = Math.min(Frame.HEADER_LENGTH - fill, chunk.byteLength - off)
      header.set(chunk.subarray(off, off + n), fill)
      fill += n
      off += n
      if (fill === Frame.HEADER_LENGTH) {
        fill = 0
        const h = Result.getOrThrow(Frame.decode(header))
        if (h.type === Frame.TYPE_DATA) skip = h.length
        onFrame(h)
      }
    }
  }
}

interface Flow {
  sent: number
  granted: number
}

/** Window accounting for one direction pair, fed in relay order. */
const windowChecker = () => {
  // key: `${from}:${streamId}` — `from` is the sender of the data
  const flows = new Map<string, Flow>()
  const violations: Array<string> = []
  const flow = (key: string): Flow => {
    let f = flows.get(key)
    if (f === undefined) {
      f = { sent: 0, granted: Frame.INITIAL_WINDOW }
      flows.set(key, f)
    }
    return f
  }
  const other = (side: "c" | "s") => (side === "c" ? "s" : "c")
  return {
    violations,
    /** A frame read from `side`'s output (it was sent before now). */
    sent: (side: "c" | "s", h: Frame.Header) => {
      if (h.type !== Frame.TYPE_DATA || h.length === 0) return
      const f = flow(`${side}:${h.streamId}`)
      f.sent += h.length
      if (f.sent > f.granted) violations.push(`${side} stream ${h.streamId}: sent ${f.sent} > window ${f.granted}`)
    },
    /** A frame from `side` delivered to the other side (it may now use the window). */
    delivered: (side: "c" | "s", h: Frame.Header) => {
      if (h.type !== Frame.TYPE_WINDOW_UPDATE) return
      flow(`${other(side)}:${h.streamId}`).granted += h.length
    }
  }
}

interface Scenario {
  readonly cuts: ReadonlyArray<number>
  readonly streams: ReadonlyArray<{ readonly size: number; readonly writes: ReadonlyArray<number> }>
  readonly seed: number
}

const runScenario = (sc: Scenario) =>
  Effect.scoped(Effect.gen(function*() {
    const [a1, b1] = yield* Duplex.pair()
    const [a2, b2] = yield* Duplex.pair()
    const check = windowChecker()
    const cSent = decoder((h) => check.sent("c", h))
    const cDelivered = decoder((h) => check.delivered("c", h))
    const sSent = decoder((h) => check.sent("s", h))
    const sDelivered = decoder((h) => check.delivered("s", h))
    yield* Effect.forkScoped(rechunkRelay(b1, a2, sc.cuts, cSent, cDelivered))
    yield* Effect.forkScoped(rechunkRelay(a2, b1, sc.cuts, sSent, sDelivered))
    const client = yield* Yamux.session(a1, "outbound")
    const server = yield* Yamux.session(b2, "inbound")

    // the server echoes every stream
    yield* Effect.forkScoped(
      Effect.forEach(sc.streams, () =>
        Effect.gen(function*() {
          const s = yield* server.accept
          yield* Effect.forkScoped(echoStream(s))
        }), { discard: true }).pipe(Effect.ignore)
    )

    const results = yield* Effect.forEach(sc.streams, (spec, i) =>
      Effect.gen(function*() {
        const s = yield* client.open
        const data = pattern(spec.size, sc.seed + i)
        const writer = yield* Effect.forkChild(writeInPieces(s, data, spec.writes))
        const back = yield* Duplex.readAll(s, spec.size + 1)
        yield* Fiber.join(writer)
        return equalBytes(back, data)
      }), { concurrency: "unbounded" })
    return { results, violations: check.violations }
  }))

describe("yamux properties (§Flow Control, §Framing)", () => {
  it.live("yamux never exceeds the window and delivers bytes in order under arbitrary chunking", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 100_000 })), {
            minLength: 1,
            maxLength: 8
          }).filter((cuts) => cuts.reduce((a, b) => a + b, 0) / cuts.length >= 64),
          fc.array(
            fc.record({
              size: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 200_000, max: 700_000 })),
              writes: fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 5 })
            }),
            { minLength: 1, maxLength: 6 }
          ),
          fc.integer({ min: 1, max: 0x7fffffff }),
          async (cuts, streams, seed) => {
            const { results, violations } = await Effect.runPromise(runScenario({ cuts, streams, seed }))
            expect(violations).toEqual([])
            expect(results.every(Boolean)).toBe(true)
          }
        ),
        { numRuns: 25 }
      )
    ))

  it.live("arbitrary bytes from the network end the session with a typed MuxerError (or cleanly), never a defect or hang", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }),
          fc.boolean(),
          async (chunks, client) => {
            const exit = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
              const [a, b] = yield* Duplex.pair({ capacity: 100_000 })
              const session = yield* Yamux.session(a, client ? "outbound" : "inbound")
              // valid-looking prefixes make the garbage reach deeper states
              const prefix = chunks.length > 0 && chunks[0]!.length > 0 && chunks[0]![0]! < 0x80
              if (prefix) chunks[0]![0] = 0
              if (chunks.length > 0) yield* b.write(chunks)
              yield* b.closeWrite
              return yield* Effect.exit(session.closed)
            })))
            if (Exit.isFailure(exit)) {
              expect(Cause.hasDies(exit.cause)).toBe(false)
              const err = Cause.squash(exit.cause) as { _tag: string }
              expect(err._tag).toBe("MuxerError")
            }
          }
        ),
        { numRuns: 300 }
      )
    ))
})
