/**
 * Properties of mplex (libp2p mplex spec §Message format, §Writing to a
 * stream, §Closing a stream):
 * - the frame codec round-trips: any sequence of frames (ids up to the
 *   largest safe header, flags 0..6, data up to the message limit) decodes
 *   from its encoding, whole or from any split point of a header;
 * - "mplex delivers bytes in order under arbitrary chunking": two sessions
 *   talk through a relay that re-cuts the byte stream at random points; a
 *   random set of streams, opened from both sides at once, each written in
 *   random pieces and echoed, arrives intact and in order, and every frame on
 *   the wire is well formed (a known flag, data frames within the frame size,
 *   the sender's role flag on each stream);
 * - arbitrary bytes from the network never crash a session: it ends with a
 *   typed MuxerError (or cleanly) once the input ends, never with a defect or
 *   a hang.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Result } from "effect"
import fc from "fast-check"
import { equalBytes, pattern } from "../../spec-tests/support/bytes.ts"
import { frameRecorder } from "../../spec-tests/support/mplex.ts"
import { echoStream, rechunkRelay, writeInPieces } from "../../spec-tests/support/muxer.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Mplex from "../../src/muxer/Mplex.ts"
import * as Frame from "../../src/muxer/mplex/frame.ts"

interface StreamSpec {
  readonly fromClient: boolean
  readonly size: number
  readonly writes: ReadonlyArray<number>
}

interface Scenario {
  readonly cuts: ReadonlyArray<number>
  readonly streams: ReadonlyArray<StreamSpec>
  readonly seed: number
  readonly maxFrameSize: number
}

const runScenario = (sc: Scenario) =>
  Effect.scoped(Effect.gen(function*() {
    const [a1, b1] = yield* Duplex.pair()
    const [a2, b2] = yield* Duplex.pair()
    const fromClient = frameRecorder()
    const fromServer = frameRecorder()
    yield* Effect.forkScoped(rechunkRelay(b1, a2, sc.cuts, fromClient.push))
    yield* Effect.forkScoped(rechunkRelay(a2, b1, sc.cuts, fromServer.push))
    const options = { maxFrameSize: sc.maxFrameSize }
    const client = yield* Mplex.session(a1, "outbound", options)
    const server = yield* Mplex.session(b2, "inbound", options)

    // each side echoes the streams the other opens
    const serve = (session: Mplex.MplexSession, count: number) =>
      Effect.forkScoped(
        Effect.forEach(Array.from({ length: count }), () =>
          Effect.gen(function*() {
            const s = yield* session.accept
            yield* Effect.forkScoped(echoStream(s))
          }), { discard: true }).pipe(Effect.ignore)
      )
    yield* serve(server, sc.streams.filter((s) => s.fromClient).length)
    yield* serve(client, sc.streams.filter((s) => !s.fromClient).length)

    const results = yield* Effect.forEach(sc.streams, (spec, i) =>
      Effect.gen(function*() {
        const s = yield* (spec.fromClient ? client : server).open
        const data = pattern(spec.size, sc.seed + i)
        const writer = yield* Effect.forkChild(writeInPieces(s, data, spec.writes))
        const back = yield* Duplex.readAll(s, spec.size + 1)
        yield* Fiber.join(writer)
        return equalBytes(back, data)
      }), { concurrency: "unbounded" })
    const counts = [client.streamCount(), server.streamCount()]
    return { results, counts, fromClient: fromClient.frames, fromServer: fromServer.frames }
  }))

/** Wire checks for one direction: flags by role, frame sizes, one NewStream per stream. */
const wireViolations = (
  frames: ReadonlyArray<Frame.Header>,
  maxFrameSize: number
): Array<string> => {
  const out: Array<string> = []
  const opened = new Set<number>()
  for (const f of frames) {
    if (f.flag > Frame.RESET_INITIATOR) out.push(`flag ${f.flag}`)
    if (f.flag === Frame.NEW_STREAM) {
      if (opened.has(f.id)) out.push(`second NewStream for ${f.id}`)
      opened.add(f.id)
    } else if ((f.flag & 1) === 0 && !opened.has(f.id)) {
      out.push(`initiator flag ${f.flag} on ${f.id} before its NewStream`)
    }
    if ((f.flag === Frame.MESSAGE_INITIATOR || f.flag === Frame.MESSAGE_RECEIVER) && f.length > maxFrameSize) {
      out.push(`data frame of ${f.length} > ${maxFrameSize}`)
    }
    if (f.flag === Frame.MESSAGE_INITIATOR || f.flag === Frame.MESSAGE_RECEIVER) {
      if (f.length === 0) out.push("empty data frame")
    } else if (f.flag !== Frame.NEW_STREAM && f.length !== 0) out.push(`close/reset with a body`)
  }
  return out
}

describe("mplex properties (§Message format, §Writing to a stream, §Closing a stream)", () => {
  it("the frame codec round-trips, also when a header is split anywhere", () =>
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            id: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: Frame.MAX_STREAM_ID })),
            flag: fc.integer({ min: 0, max: 6 }),
            data: fc.uint8Array({ maxLength: 300 })
          }),
          { minLength: 1, maxLength: 10 }
        ),
        fc.nat(),
        (frames, cut) => {
          const bytes = Duplex.concat(frames.map((f) => Frame.encode(f.id, f.flag, f.data)))
          const decoded = Result.getOrThrow(Frame.decodeAll(bytes))
          expect(decoded.map((f) => ({ id: f.id, flag: f.flag, data: f.data }))).toEqual(frames)
          // any prefix of a header asks for more, never fails
          const first = Frame.encodeHeader(frames[0]!.id, frames[0]!.flag, frames[0]!.data.byteLength)
          const k = cut % first.byteLength
          expect(Result.getOrThrow(Frame.decodeHeader(first.subarray(0, k)))).toBeUndefined()
        }
      ),
      { numRuns: 300 }
    ))

  it.live("mplex delivers bytes intact and in order under arbitrary chunking, streams opened from both sides", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.oneof(fc.integer({ min: 1, max: 13 }), fc.integer({ min: 1, max: 100_000 })), {
            minLength: 1,
            maxLength: 8
          }).filter((cuts) => cuts.reduce((a, b) => a + b, 0) / cuts.length >= 64),
          fc.array(
            fc.record({
              fromClient: fc.boolean(),
              size: fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 200_000, max: 700_000 })),
              writes: fc.array(fc.integer({ min: 1, max: 300_000 }), { minLength: 1, maxLength: 5 })
            }),
            { minLength: 1, maxLength: 8 }
          ),
          fc.integer({ min: 1, max: 0x7fffffff }),
          fc.constantFrom(1024, 16 * 1024, 64 * 1024, 1024 * 1024),
          async (cuts, streams, seed, maxFrameSize) => {
            const r = await Effect.runPromise(runScenario({ cuts, streams, seed, maxFrameSize }))
            expect(r.results.every(Boolean)).toBe(true)
            expect(r.counts).toEqual([0, 0])
            expect(wireViolations(r.fromClient, maxFrameSize)).toEqual([])
            expect(wireViolations(r.fromServer, maxFrameSize)).toEqual([])
          }
        ),
        { numRuns: 25 }
      )
    ))

  it.live("arbitrary bytes from the network end the session with a typed MuxerError (or cleanly), never a defect or hang", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.uint8Array({ maxLength: 64 }),
              // well-formed frames with random fields make the input reach deeper states
              fc.record({
                id: fc.integer({ min: 0, max: 4 }),
                flag: fc.integer({ min: 0, max: 7 }),
                data: fc.uint8Array({ maxLength: 16 })
              }).map((f) => Duplex.concat([Frame.encodeHeader(f.id, f.flag, f.data.byteLength), f.data]))
            ),
            { maxLength: 12 }
          ),
          fc.boolean(),
          async (chunks, initiator) => {
            const exit = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
              const [a, b] = yield* Duplex.pair({ capacity: 100_000 })
              const session = yield* Mplex.session(a, initiator ? "outbound" : "inbound")
              // streams we open and accept take part too
              const opened = yield* Effect.scoped(session.open).pipe(Effect.ignore, Effect.forkChild)
              const accepting = yield* Effect.forkChild(
                Effect.forever(Effect.scoped(Effect.flatMap(session.accept, (s) => s.read)))
              )
              if (chunks.length > 0) yield* b.write(chunks.filter((c) => c.byteLength > 0))
              yield* b.closeWrite
              const result = yield* Effect.exit(session.closed)
              yield* Fiber.interrupt(accepting)
              yield* Fiber.join(opened)
              return result
            })))
            if (Exit.isFailure(exit)) {
              expect(Cause.hasDies(exit.cause)).toBe(false)
              const err = Cause.squash(exit.cause) as { _tag: string; reason: string }
              expect(err._tag).toBe("MuxerError")
              expect(err.reason).toBe("ProtocolError")
            }
          }
        ),
        { numRuns: 300 }
      )
    ))
})
