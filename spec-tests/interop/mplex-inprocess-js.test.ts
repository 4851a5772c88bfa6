/**
 * Interop: our mplex (src/muxer/Mplex.ts) against `@libp2p/mplex` 12
 * (js-libp2p v3), in process, over one `Duplex.pair()`. Spec: libp2p mplex
 * (libp2p/specs mplex/README.md) §Message format, §Opening a new stream,
 * §Writing to a stream, §Closing a stream, §Resetting a stream.
 *
 * The js muxer runs over a js-libp2p `AbstractStream` (defined here, the
 * adapter of yamux-js.test.ts) whose bytes travel over one end of the pair;
 * our session uses the other end. As js-libp2p's TCP connection does, the
 * adapter closes once the remote closed its write side, and it is closed
 * after js's muxer is (mplex has no GoAway: js's `close()` only closes the
 * streams; the connection then closes the socket). Both directions: our initiator ↔ js
 * receiver and js initiator ↔ our receiver, echo on concurrent streams and a
 * 2 MiB transfer each way (js sends 1 MiB messages, the spec's limit), both
 * sides opening streams on one session with the same ids (js counts from 0 on
 * both sides; ids are per initiator), half-close, reset both ways, and the
 * session ending.
 *
 * js-libp2p's mplex closes the whole connection when the peer opens more
 * than `disconnectThreshold` (default 5) streams within a second; the tests
 * that open more raise it.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Stream as JsStream, StreamMuxer as JsStreamMuxer } from "@libp2p/interface"
import { mplex } from "@libp2p/mplex"
import { Effect, Fiber } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Mplex from "../../src/muxer/Mplex.ts"
import { DuplexStream, jsEcho, jsRoundTrip, linearPattern, toBytes } from "../support/jsStream.ts"
import { roundTrip, serveEcho } from "../support/muxer.ts"

interface JsMuxer {
  readonly muxer: JsStreamMuxer<JsStream>
  /** Streams js accepted, each with everything it read (collected from the start). */
  readonly accepted: Array<{ readonly stream: JsStream; readonly data: Promise<Uint8Array> }>
  /** Close js's muxer, then the connection under it. */
  readonly close: () => Promise<void>
}

const jsMuxer = (
  duplex: Duplex.Duplex,
  direction: "inbound" | "outbound",
  onStream?: (stream: JsStream) => void
): JsMuxer => {
  const conn = new DuplexStream(duplex, direction, { name: "mplex-conn", closeOnRemoteEnd: true })
  const muxer = mplex({ disconnectThreshold: 1000 })().createStreamMuxer(conn) as unknown as JsStreamMuxer<JsStream>
  const accepted: JsMuxer["accepted"] = []
  muxer.addEventListener("stream", (evt) => {
    if (onStream !== undefined) return onStream(evt.detail)
    const data = collect(evt.detail)
    data.catch(() => {}) // a reset rejects it; tests that expect one await it themselves
    accepted.push({ stream: evt.detail, data })
  })
  return {
    muxer,
    accepted,
    close: async () => {
      await muxer.close()
      await conn.close()
    }
  }
}

/** js: everything a stream reads until EOF (start at once: js's iterator misses an EOF seen before it starts). */
const collect = async (stream: JsStream): Promise<Uint8Array> => {
  const got: Array<Uint8Array> = []
  for await (const c of stream) got.push(toBytes(c).slice())
  return Duplex.concat(got)
}

const sizes = [0, 1, 100, 5000, 70_000, 300_000, 2 * 1024 * 1024]

const waitUntil = (check: () => boolean) =>
  Effect.promise(async () => {
    for (let i = 0; i < 400 && !check(); i++) await new Promise((r) => setTimeout(r, 5))
    return check()
  })

const enc = (t: string) => new TextEncoder().encode(t)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

describe("mplex interop with @libp2p/mplex (in process)", () => {
  it.live("§Opening a new stream: our initiator ↔ js receiver, echo on concurrent streams up to 2 MiB", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const names: Array<string> = []
      const js = jsMuxer(b, "inbound", (stream) => {
        names.push(stream.id)
        void jsEcho(stream)
      })
      const ours = yield* Mplex.session(a, "outbound")
      const ok = yield* Effect.forEach(sizes, (n, i) =>
        Effect.scoped(Effect.gen(function*() {
          const s = yield* ours.open
          const data = linearPattern(n, i)
          const back = yield* roundTrip(s, data)
          return back.byteLength === n && Buffer.compare(back, data) === 0
        })), { concurrency: "unbounded" })
      expect(ok).toEqual(sizes.map(() => true))
      // js names inbound streams "r<id>": our odd ids arrived as sent
      expect(names.sort()).toEqual(sizes.map((_, i) => `r${2 * i + 1}`).sort())
      expect(ours.streamCount()).toBe(0)
      yield* ours.close
      yield* Effect.promise(() => js.close())
    }))

  it.live("js initiator ↔ our receiver: echo on concurrent streams up to 2 MiB (js sends 1 MiB messages)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(a, "outbound")
      const ours = yield* Mplex.session(b, "inbound")
      yield* serveEcho(ours)
      const results = yield* Effect.promise(() =>
        Promise.all(sizes.map(async (n, i) => {
          const stream = await js.muxer.createStream()
          const data = linearPattern(n, i + 10)
          const back = await jsRoundTrip(stream, data, 1024 * 1024)
          return back.byteLength === n && Buffer.compare(back, data) === 0
        }))
      )
      expect(results).toEqual(sizes.map(() => true))
      expect(yield* waitUntil(() => ours.streamCount() === 0)).toBe(true)
      // js's side of the connection closing ends our session cleanly
      yield* Effect.promise(() => js.close())
      yield* ours.closed
    }))

  it.live("stream ids are per initiator: js and we open streams on one session, js's ids collide with ours", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound", (stream) => void jsEcho(stream))
      const ours = yield* Mplex.session(a, "outbound")
      yield* serveEcho(ours)
      const jsSide = Effect.promise(() =>
        Promise.all([0, 1, 2, 3].map(async (i) => {
          const stream = await js.muxer.createStream()
          const data = linearPattern(200_000, i)
          return { id: stream.id, ok: Buffer.compare(await jsRoundTrip(stream, data), data) === 0 }
        }))
      )
      const ourSide = Effect.forEach([0, 1, 2, 3], (i) =>
        Effect.scoped(Effect.gen(function*() {
          const s = yield* ours.open
          const data = linearPattern(200_000, i + 5)
          return { id: s.id, ok: Buffer.compare(yield* roundTrip(s, data), data) === 0 }
        })), { concurrency: "unbounded" })
      const [x, y] = yield* Effect.all([jsSide, ourSide], { concurrency: 2 })
      // js counts 0, 1, 2, 3 (and names them "i<id>"); we use odd ids 1, 3, 5, 7: ids 1 and 3 exist twice
      expect(x.map((r) => r.id)).toEqual(["i0", "i1", "i2", "i3"])
      expect(y.map((r) => r.id)).toEqual(["1", "3", "5", "7"])
      expect([...x, ...y].every((r) => r.ok)).toBe(true)
      yield* ours.close
      yield* Effect.promise(() => js.close())
    }))

  it.live("§Closing a stream: js half-closes and we answer after its EOF; we half-close and js answers", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound")
      const ours = yield* Mplex.session(a, "outbound")
      // js closes first: we read its data, then EOF, then still write
      const jsStream = yield* Effect.promise(() => js.muxer.createStream())
      const jsReading = collect(jsStream)
      jsStream.send(enc("question"))
      yield* Effect.promise(() => jsStream.close())
      const s = yield* ours.accept
      expect(dec(yield* Duplex.readAll(s, 100))).toBe("question")
      yield* s.write([enc("answer after EOF")])
      yield* s.closeWrite
      expect(dec(yield* Effect.promise(() => jsReading))).toBe("answer after EOF")
      // we close first: js reads our data and EOF, then writes back
      const o = yield* ours.open
      yield* o.write([enc("ping")])
      yield* o.closeWrite
      expect(yield* waitUntil(() => js.accepted.length === 1)).toBe(true)
      const theirs = js.accepted[0]!
      expect(dec(yield* Effect.promise(() => theirs.data))).toBe("ping")
      theirs.stream.send(enc("pong"))
      yield* Effect.promise(() => theirs.stream.close())
      expect(dec(yield* Duplex.readAll(o, 100))).toBe("pong")
      expect(yield* waitUntil(() => ours.streamCount() === 0)).toBe(true)
      yield* ours.close
      yield* Effect.promise(() => js.close())
    }))

  it.live("§Resetting a stream: a js reset fails our pending read with Reset; our reset aborts js's stream", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound")
      const ours = yield* Mplex.session(a, "outbound")
      const s1 = yield* ours.open
      yield* s1.write([Uint8Array.of(1, 2, 3)])
      expect(yield* waitUntil(() => js.accepted.length === 1)).toBe(true)
      const pending = yield* Effect.forkChild(Effect.flip(s1.read))
      js.accepted[0]!.stream.abort(new Error("test reset"))
      expect((yield* Fiber.join(pending)).reason).toBe("Reset")
      // and the other way
      const s2 = yield* ours.open
      yield* s2.write([Uint8Array.of(4)])
      expect(yield* waitUntil(() => js.accepted.length === 2)).toBe(true)
      const theirs = js.accepted[1]!
      yield* s2.reset
      expect(yield* waitUntil(() => theirs.stream.status !== "open")).toBe(true)
      expect(theirs.stream.status).toBe("reset")
      yield* Effect.promise(() => theirs.data.catch(() => new Uint8Array(0)))
      expect(ours.streamCount()).toBe(0)
      yield* ours.close
      yield* Effect.promise(() => js.close())
    }))

  it.live("session end: our close resets js's open streams and ends js's muxer", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = jsMuxer(b, "inbound")
      const ours = yield* Mplex.session(a, "outbound")
      const s = yield* ours.open
      yield* s.write([Uint8Array.of(1)])
      expect(yield* waitUntil(() => js.accepted.length === 1)).toBe(true)
      const theirs = js.accepted[0]!
      yield* ours.close
      expect(yield* waitUntil(() => js.muxer.status !== "open" && theirs.stream.status !== "open")).toBe(true)
      expect(theirs.stream.status).toBe("reset")
      yield* Effect.promise(() => theirs.data.catch(() => new Uint8Array(0)))
      yield* ours.closed
    }))
})
