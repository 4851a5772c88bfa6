/**
 * Interop: our Yamux (src/muxer/Yamux.ts) against `@chainsafe/libp2p-yamux` 8
 * (js-libp2p), in process, over one `Duplex.pair()`. Spec: libp2p yamux
 * (libp2p/specs yamux/README.md) §Framing, §Opening a stream, §Closing a
 * stream, §Flow Control, §Session termination.
 *
 * The js muxer runs over a js-libp2p `AbstractStream` (defined here) whose
 * bytes travel over one end of the pair; our session uses the other end.
 * Both directions: our client ↔ js server, js client ↔ our server; echo on
 * several concurrent streams and a 4 MiB transfer (beyond the 256 KiB initial
 * window, so window updates flow both ways), and GoAway on close.
 */
import { yamux } from "@chainsafe/libp2p-yamux"
import { describe, expect, it } from "@effect/vitest"
import type { Stream as JsStream, StreamMuxer as JsStreamMuxer } from "@libp2p/interface"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import { DuplexStream, jsEcho, jsRoundTrip, linearPattern } from "../support/jsStream.ts"
import { echoStream, roundTrip } from "../support/muxer.ts"

const jsMuxer = (duplex: Duplex.Duplex, direction: "inbound" | "outbound"): JsStreamMuxer<JsStream> =>
  yamux()().createStreamMuxer(new DuplexStream(duplex, direction, { name: "yamux-conn" })) as unknown as JsStreamMuxer<
    JsStream
  >

const sizes = [1, 100, 5000, 70_000, 300_000, 4 * 1024 * 1024]

describe("yamux interop with @chainsafe/libp2p-yamux (in process)", () => {
  it.live("our client ↔ js server: echo on several concurrent streams, including a 4 MiB transfer", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const server = jsMuxer(b, "inbound")
      server.addEventListener("stream", (evt) => {
        void jsEcho(evt.detail)
      })
      const client = yield* Yamux.session(a, "outbound")
      const ok = yield* Effect.forEach(sizes, (n, i) =>
        Effect.scoped(Effect.gen(function*() {
          const s = yield* client.open
          const data = linearPattern(n, i)
          const back = yield* roundTrip(s, data)
          return back.byteLength === n && Buffer.compare(back, data) === 0
        })), { concurrency: "unbounded" })
      expect(ok).toEqual(sizes.map(() => true))
      // js answers our ping
      expect(yield* client.ping).toBeGreaterThanOrEqual(0)
      expect(client.streamCount()).toBe(0)
      yield* client.close
      yield* Effect.promise(() => server.close())
    }))

  it.live("js client ↔ our server: echo on several concurrent streams, including a 4 MiB transfer", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const client = jsMuxer(a, "outbound")
      const server = yield* Yamux.session(b, "inbound")
      yield* Effect.forkChild(
        Effect.gen(function*() {
          while (true) {
            const scope = yield* Scope.make()
            const s = yield* Scope.provide(server.accept, scope)
            yield* Effect.forkChild(echoStream(s).pipe(Effect.ignore, Effect.ensuring(Scope.close(scope, Exit.void))))
          }
        }).pipe(Effect.ignore)
      )
      const results = yield* Effect.promise(() =>
        Promise.all(sizes.map(async (n, i) => {
          const stream = await client.createStream()
          const data = linearPattern(n, i + 10)
          const back = await jsRoundTrip(stream, data)
          return back.byteLength === n && Buffer.compare(back, data) === 0
        }))
      )
      console.log("results", results)
      expect(results).toEqual(sizes.map(() => true))
      console.log("ping")
      expect(yield* server.ping).toBeGreaterThanOrEqual(0)
      console.log("close")
      yield* Effect.promise(() => client.close())
      yield* server.closed
    }))

  it.live("js opens streams to us and we open streams to js on the same session (both directions at once)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound")
      js.addEventListener("stream", (evt) => {
        void jsEcho(evt.detail)
      })
      const ours = yield* Yamux.session(a, "outbound")
      yield* Effect.forkChild(
        Effect.gen(function*() {
          while (true) {
            const scope = yield* Scope.make()
            const s = yield* Scope.provide(ours.accept, scope)
            yield* Effect.forkChild(echoStream(s).pipe(Effect.ignore, Effect.ensuring(Scope.close(scope, Exit.void))))
          }
        }).pipe(Effect.ignore)
      )
      const jsSide = Effect.promise(() =>
        Promise.all([0, 1, 2].map(async (i) => {
          const stream = await js.createStream()
          expect(Number(stream.id) % 2).toBe(0) // js is the server here: even ids
          const data = linearPattern(200_000, i)
          return Buffer.compare(await jsRoundTrip(stream, data), data) === 0
        }))
      )
      const ourSide = Effect.forEach([0, 1, 2], (i) =>
        Effect.scoped(Effect.gen(function*() {
          const s = yield* ours.open
          expect(Number(s.id) % 2).toBe(1)
          const data = linearPattern(200_000, i + 5)
          return Buffer.compare(yield* roundTrip(s, data), data) === 0
        })), { concurrency: "unbounded" })
      const [x, y] = yield* Effect.all([jsSide, ourSide], { concurrency: 2 })
      expect([...x, ...y]).toEqual([true, true, true, true, true, true])
      yield* ours.close
      yield* Effect.promise(() => js.close())
    }))

  it.live("§Closing a stream: a js RST fails our pending read with Reset", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound")
      const accepted = new Promise<JsStream>((resolve) => js.addEventListener("stream", (evt) => resolve(evt.detail)))
      const ours = yield* Yamux.session(a, "outbound")
      const s = yield* ours.open
      yield* s.write([Uint8Array.of(1, 2, 3)])
      const jsStream = yield* Effect.promise(() => accepted)
      const pending = yield* Effect.forkChild(Effect.flip(s.read))
      jsStream.abort(new Error("test reset"))
      expect((yield* Fiber.join(pending)).reason).toBe("Reset")
      yield* ours.close
      yield* Effect.promise(() => js.close())
    }))

  it.live("§Session termination: our close sends GoAway; js sees the muxer end [yamux:session-termination:1] [yamux-hashicorp:session-termination:1]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound")
      const ours = yield* Yamux.session(a, "outbound")
      yield* ours.close
      const status = yield* Effect.promise(async () => {
        for (let i = 0; i < 200 && js.status === "open"; i++) await new Promise((r) => setTimeout(r, 5))
        return js.status
      })
      expect(status).not.toBe("open")
      yield* ours.closed
    }))
})
