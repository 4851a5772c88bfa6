/**
 * The StreamMuxer compliance suite: what every stream multiplexer owes its
 * caller, whatever its wire format (libp2p connections spec §Stream
 * Multiplexing and the StreamMuxer contract of src/muxer/StreamMuxer.ts;
 * the stream lifecycle both the yamux and the mplex spec describe: opening,
 * writing, half-closing and resetting a stream, ending the session).
 *
 * Modelled on go-libp2p's `p2p/muxer/testsuite` (`SubtestAll`) and
 * rust-libp2p's `muxers/test-harness`: one call per muxer,
 *
 *     muxerSuite("yamux", Yamux.yamux)
 *
 * and the muxer's own test file keeps only what is specific to it (frames,
 * stream ids, flow control, options, malformed input). Sessions run over
 * `Duplex.pair()` with the muxer's default options.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as Connection from "../../src/connection/Connection.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import type { StreamMuxer } from "../../src/muxer/StreamMuxer.ts"
import * as StreamMuxerModule from "../../src/muxer/StreamMuxer.ts"
import { dec, enc, equalBytes, KiB, MiB, pattern } from "../support/bytes.ts"
import { type PairMaker, readAllBytes, roundTrip, serveEcho, sessionPair } from "../support/muxer.ts"

/** `pair`: what the sessions run over (default: `Duplex.pair()`, in memory). */
export const muxerSuite = (name: string, muxer: StreamMuxer, pair?: PairMaker) =>
  describe(`${name}: StreamMuxer compliance (connections spec §Stream Multiplexing)`, () => {
    const makePair: PairMaker = pair ?? (() => Duplex.pair())
    const sessions = () => sessionPair(muxer, makePair)

    describe("§Opening a stream", () => {
      it.effect("open / accept / echo", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          yield* serveEcho(server)
          const s = yield* client.open
          expect(s.direction).toBe("outbound")
          yield* s.write([enc("hello "), enc(name)])
          yield* s.closeWrite
          expect(dec(yield* readAllBytes(s))).toBe(`hello ${name}`)
        }))

      it.effect("accepted streams are inbound, in the order they were opened", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          const opened = [yield* client.open, yield* client.open, yield* client.open]
          const accepted = [yield* server.accept, yield* server.accept, yield* server.accept]
          expect(accepted.map((x) => [x.id, x.direction])).toEqual(opened.map((x) => [x.id, "inbound"]))
        }))

      it.effect("whenAcceptable: the notice comes once a stream is queued (at once when one already is), then accept returns it without waiting; and when the session ends", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          expect(server.whenAcceptable).toBeDefined()
          const when = (notify: () => void) => server.whenAcceptable!(notify)
          let notices = 0
          when(() => notices++)
          yield* Effect.yieldNow
          expect(notices).toBe(0) // nothing queued: the notice waits
          const opened = yield* client.open
          yield* opened.write([enc("x")])
          for (let i = 0; i < 20 && notices === 0; i++) yield* Effect.yieldNow
          expect(notices).toBe(1)
          when(() => notices++) // one is queued: at once
          expect(notices).toBe(2)
          const accepted = yield* server.accept
          expect(accepted.id).toBe(opened.id)
          when(() => notices++)
          yield* client.close
          yield* server.closed
          for (let i = 0; i < 20 && notices < 3; i++) yield* Effect.yieldNow
          expect(notices).toBe(3) // the session ended: accept has its answer (Closed)
          expect((yield* Effect.flip(Effect.scoped(server.accept))).reason).toBe("Closed")
        }))

      it.effect("many concurrent streams (200) echo independently", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          yield* serveEcho(server)
          const results = yield* Effect.forEach(
            Array.from({ length: 200 }, (_, i) => i),
            (i) =>
              Effect.scoped(Effect.gen(function*() {
                const s = yield* client.open
                const data = pattern(1 + (i * 997) % (20 * KiB), i + 1)
                return equalBytes(yield* roundTrip(s, data, 700), data)
              })),
            { concurrency: "unbounded" }
          )
          expect(results.every(Boolean)).toBe(true)
          expect(client.streamCount()).toBe(0)
        }))

      it.effect("streams open both ways on one session at once", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          yield* serveEcho(server)
          yield* serveEcho(client)
          const run = (session: typeof client, seed: number) =>
            Effect.forEach([0, 1, 2, 3], (i) =>
              Effect.scoped(Effect.gen(function*() {
                const s = yield* session.open
                const data = pattern(100_000, seed + i)
                return equalBytes(yield* roundTrip(s, data), data)
              })), { concurrency: "unbounded" })
          const [a, b] = yield* Effect.all([run(client, 1), run(server, 100)], { concurrency: 2 })
          expect([...a, ...b].every(Boolean)).toBe(true)
        }))
    })

    describe("§Writing to a stream", () => {
      it.live("large transfer: 16 MiB each way on one stream, intact", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          yield* serveEcho(server)
          const s = yield* client.open
          const data = pattern(16 * MiB, 99)
          const back = yield* roundTrip(s, data, 100_000)
          expect(back.byteLength).toBe(data.byteLength)
          expect(equalBytes(back, data)).toBe(true)
        }))
    })

    describe("§Closing a stream", () => {
      it.effect("half-close, opener first: its writes then fail with Closed; the receiver reads EOF and still answers", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          const c = yield* client.open
          yield* c.write([enc("request")])
          yield* c.closeWrite
          yield* c.closeWrite // idempotent
          expect((yield* Effect.flip(c.write([enc("x")]))).reason).toBe("Closed")
          const s = yield* server.accept
          expect(dec(yield* readAllBytes(s))).toBe("request")
          expect(Duplex.isEOF(yield* s.read)).toBe(true) // EOF thereafter
          yield* s.write([enc("late "), enc("answer")])
          yield* s.closeWrite
          expect(dec(yield* readAllBytes(c))).toBe("late answer")
          expect(client.streamCount()).toBe(0)
          expect(server.streamCount()).toBe(0)
        }))

      it.effect("half-close, receiver first: the opener reads EOF and still writes", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          const c = yield* client.open
          yield* c.write([enc("hi")])
          const s = yield* server.accept
          yield* s.write([enc("bye")])
          yield* s.closeWrite
          expect(dec(yield* readAllBytes(c))).toBe("bye")
          yield* c.write([enc(" there")])
          yield* c.closeWrite
          expect(dec(yield* readAllBytes(s))).toBe("hi there")
          expect(server.streamCount()).toBe(0)
        }))

      it.effect("a stream whose scope closes before it finished both ways is reset", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          const scope = yield* Scope.make()
          const c = yield* Scope.provide(client.open, scope)
          yield* c.write([enc("unfinished")])
          const s = yield* server.accept
          expect(dec(Duplex.concat(yield* s.read))).toBe("unfinished")
          const pending = yield* Effect.forkChild(Effect.flip(s.read))
          yield* Scope.close(scope, Exit.void)
          expect((yield* Fiber.join(pending)).reason).toBe("Reset")
          expect((yield* Effect.flip(c.write([enc("x")]))).reason).toBe("Reset")
          expect(client.streamCount()).toBe(0)
        }))
    })

    describe("§Resetting a stream", () => {
      it.effect("our reset: the peer's pending read and its writes, and our reads and writes, fail with Reset (not EOF)", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          const c = yield* client.open
          yield* c.write([enc("x")])
          const s = yield* server.accept
          expect(dec(Duplex.concat(yield* s.read))).toBe("x")
          const pending = yield* Effect.forkChild(Effect.flip(s.read))
          yield* c.reset
          expect((yield* Fiber.join(pending)).reason).toBe("Reset")
          expect((yield* Effect.flip(s.write([enc("y")]))).reason).toBe("Reset")
          expect((yield* Effect.flip(c.read)).reason).toBe("Reset")
          expect((yield* Effect.flip(c.write([enc("z")]))).reason).toBe("Reset")
          expect(client.streamCount()).toBe(0)
          expect(server.streamCount()).toBe(0)
        }))
    })

    describe("ending the session (StreamMuxer contract)", () => {
      it.effect("close: a pending accept, then open and accept fail with Closed; closed succeeds on both ends", () =>
        Effect.gen(function*() {
          const { client, server } = yield* sessions()
          const pending = yield* Effect.forkChild(Effect.flip(Effect.scoped(client.accept)))
          yield* client.close
          expect((yield* Fiber.join(pending)).reason).toBe("Closed")
          expect((yield* Effect.flip(Effect.scoped(client.open))).reason).toBe("Closed")
          expect((yield* Effect.flip(Effect.scoped(client.accept))).reason).toBe("Closed")
          yield* client.closed
          // the peer reads EOF and ends cleanly
          yield* server.closed
        }))

      it.effect("closing the session's scope resets open streams and the remote session ends cleanly", () =>
        Effect.gen(function*() {
          const [a, b] = yield* makePair()
          const server = yield* muxer.create(b, { direction: "inbound" })
          const scope = yield* Scope.make()
          const client = yield* Scope.provide(muxer.create(a, { direction: "outbound" }), scope)
          const c = yield* Scope.provide(client.open, scope)
          yield* c.write([enc("x")])
          const s = yield* server.accept
          yield* Scope.close(scope, Exit.void)
          expect((yield* Effect.flip(c.read)).reason).toBe("Reset")
          expect(dec(Duplex.concat(yield* s.read))).toBe("x")
          expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
          yield* server.closed
          expect(server.streamCount()).toBe(0)
        }))

      it.effect("a failing Duplex ends the session with Io; its cause is kept, and a reset is a remote close", () =>
        Effect.gen(function*() {
          const [a, b] = yield* makePair()
          const session = yield* muxer.create(a, { direction: "inbound" })
          yield* b.reset
          const error = yield* Effect.flip(session.closed)
          expect(error.reason).toBe("Io")
          expect(error.cause).toBeInstanceOf(Duplex.DuplexError)
          expect((error.cause as Duplex.DuplexError).reason).toBe("Reset")
          expect(Connection.closeReasonOf(error)).toBe("remote")
          const io = new StreamMuxerModule.MuxerError({
            reason: "Io",
            message: "x",
            cause: new Duplex.DuplexError({ reason: "Io", message: "EIO" })
          })
          expect(Connection.closeReasonOf(io)).toBe("error")
        }))
    })
  })
