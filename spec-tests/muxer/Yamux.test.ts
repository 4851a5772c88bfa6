/**
 * Yamux against the libp2p yamux spec (libp2p/specs yamux/README.md, a copy
 * of hashicorp/yamux spec.md): header vectors, stream lifecycle, flow control,
 * session termination, keep-alive and the ACK backlog, plus malformed input
 * from the network. Sessions run over `Duplex.pair()`; "raw" tests drive the
 * other end of the pair byte by byte.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import { dec, enc, KiB, MiB, pattern } from "../support/bytes.ts"
import { readAllBytes, serveEcho, socketPair } from "../support/muxer.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"
import { frame, frameRecorder, rawPeer, relay } from "../support/yamux.ts"
import { muxerSuite } from "./compliance.ts"

interface FrameVectors {
  readonly frames: ReadonlyArray<{
    readonly type: string
    readonly type_code: number
    readonly flags: number
    readonly flag_names: ReadonlyArray<string>
    readonly stream_id: number
    readonly length: number
    readonly header_hex: string
  }>
}
const vectors = readJson<FrameVectors>("muxers/yamux-frames.json")

/** Two sessions over an in-memory pair. */
const sessions = (client?: Yamux.YamuxOptions, server?: Yamux.YamuxOptions) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    const c = yield* Yamux.session(a, "outbound", client)
    const s = yield* Yamux.session(b, "inbound", server)
    return { client: c, server: s }
  })

/** A session on one end of a pair, a raw peer on the other. */
const rawSession = (direction: "inbound" | "outbound", options?: Yamux.YamuxOptions) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair({ capacity: 100_000 })
    const session = yield* Yamux.session(a, direction, options)
    return { session, raw: rawPeer(b) }
  })

const isFrame = (type: number, flags?: number, streamId?: number) => (f: { header: Frame.Header }) =>
  f.header.type === type && (flags === undefined || (f.header.flags & flags) === flags) &&
  (streamId === undefined || f.header.streamId === streamId)

describe("yamux §Specification", () => {
  it("the protocol id for multistream-select is /yamux/1.0.0", () => {
    expect(Yamux.PROTOCOL).toBe("/yamux/1.0.0")
    expect(Yamux.yamux.protocol).toBe("/yamux/1.0.0")
  })
})

muxerSuite("yamux", Yamux.yamux)
// over real sockets, which are Duplex.Pollable: the session reads from their events, with no reader fiber
muxerSuite("yamux over TCP sockets (a pollable duplex)", Yamux.yamux, socketPair)

describe("yamux §Framing (vectors: muxers/yamux-frames.json)", () => {
  for (const v of vectors.frames) {
    it(`encodes and decodes ${v.type} ${v.flag_names.join("|") || "-"} stream ${v.stream_id} length ${v.length} as ${v.header_hex}`, () => {
      expect(v.type_code).toBe(Frame.TYPE_NAMES.indexOf(v.type as (typeof Frame.TYPE_NAMES)[number]))
      expect(Frame.flagNames(v.flags)).toEqual(v.flag_names)
      const header = { type: v.type_code, flags: v.flags, streamId: v.stream_id, length: v.length }
      const bytes = Frame.encodeHeader(header)
      expect(bytes.byteLength).toBe(Frame.HEADER_LENGTH)
      expect(toHex(bytes)).toBe(v.header_hex)
      expect(Result.getOrThrow(Frame.decode(fromHex(v.header_hex)))).toEqual(header)
    })
  }
  it("§Version Field: a header whose version is not 0 is rejected", () => {
    for (const v of vectors.frames) {
      const bytes = fromHex(v.header_hex)
      bytes[0] = 1
      const r = Frame.decode(bytes)
      expect(Result.isFailure(r) && r.failure.reason).toBe("BadVersion")
      expect(Result.isFailure(r) && r.failure._tag).toBe("YamuxFrameError")
    }
  })
  it("§Type Field: types outside 0..3 are rejected, and fewer than 12 bytes are truncated", () => {
    const r = Frame.decode(fromHex("000400000000000000000000"))
    expect(Result.isFailure(r) && r.failure.reason).toBe("BadType")
    const t = Frame.decode(fromHex("0000000000000001000000"))
    expect(Result.isFailure(t) && t.failure.reason).toBe("Truncated")
  })
  it("§Framing: all fields are big endian (decoding at an offset)", () => {
    const buf = new Uint8Array(20)
    Frame.encodeInto(buf, 5, Frame.TYPE_DATA, Frame.FLAG_SYN | Frame.FLAG_FIN, 0x01020304, 0xa0b0c0d0)
    expect(toHex(buf.subarray(5, 17))).toBe("0000000501020304a0b0c0d0")
    expect(Result.getOrThrow(Frame.decode(buf, 5))).toEqual({
      type: 0,
      flags: 5,
      streamId: 0x01020304,
      length: 0xa0b0c0d0
    })
  })
})

describe("yamux §Opening a stream", () => {
  it.effect("§StreamID Field: the client opens odd stream ids, the server even ones [yamux:streamid-field:1] [yamux-hashicorp:streamid-field:1]", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions()
      const c = [yield* client.open, yield* client.open, yield* client.open]
      const s = [yield* server.open, yield* server.open]
      expect(c.map((x) => x.id)).toEqual(["1", "3", "5"])
      expect(s.map((x) => x.id)).toEqual(["2", "4"])
      const accepted = [yield* server.accept, yield* server.accept, yield* server.accept]
      expect(accepted.map((x) => [x.id, x.direction])).toEqual([["1", "inbound"], ["3", "inbound"], ["5", "inbound"]])
      expect((yield* client.accept).id).toBe("2")
    }))

  it.effect("the first frame carries SYN; data may follow before the ACK arrives [yamux:opening-a-stream:1] [yamux-hashicorp:opening-a-stream:1]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      yield* s.write([enc("early")])
      const { match, seen } = yield* raw.until(isFrame(Frame.TYPE_DATA))
      const syn = seen.find((f) => f.header.streamId === 1)!
      expect(syn.header.type).toBe(Frame.TYPE_WINDOW_UPDATE)
      expect(syn.header.flags).toBe(Frame.FLAG_SYN)
      expect(syn.header.length).toBe(0)
      expect(match!.header.streamId).toBe(1)
      expect(match!.header.flags).toBe(0)
      expect(dec(match!.payload)).toBe("early")
    }))

  it.effect("§ACK backlog: the receiver acknowledges with its first frame, not implicitly on accept [yamux:opening-a-stream:2] [yamux-hashicorp:opening-a-stream:2]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_SYN, 1, 3, enc("abc")))
      const s = yield* session.accept
      expect(Duplex.concat(yield* s.read)).toEqual(enc("abc"))
      yield* s.write([enc("reply")])
      const { match, seen } = yield* raw.until((f) => f.header.streamId === 1)
      // nothing on stream 1 before the application's first write, which carries the ACK
      expect(seen.filter((f) => f.header.streamId === 1)).toHaveLength(1)
      expect(match!.header.type).toBe(Frame.TYPE_DATA)
      expect(match!.header.flags).toBe(Frame.FLAG_ACK)
      expect(dec(match!.payload)).toBe("reply")
      yield* s.write([enc("more")])
      const next = yield* raw.until((f) => f.header.streamId === 1)
      expect(next.match!.header.flags).toBe(0)
    }))

  it.effect("the receiver may reject a stream with RST; the opener's reads and writes fail with Reset [yamux:opening-a-stream:2] [yamux:opening-a-stream:3] [yamux-hashicorp:opening-a-stream:2] [yamux-hashicorp:opening-a-stream:3]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      yield* raw.until(isFrame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1))
      yield* raw.send(frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, 1, 0))
      expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
      expect((yield* Effect.flip(s.write([enc("x")]))).reason).toBe("Reset")
      expect(session.streamCount()).toBe(0)
    }))
})

describe("yamux §Closing a stream", () => {
  it.effect("FIN is sent after every data frame written before it", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      yield* s.write([enc("a")])
      yield* s.write([enc("b")])
      yield* s.closeWrite
      const { seen } = yield* raw.until(isFrame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_FIN, 1))
      const onStream = seen.filter((f) => f.header.streamId === 1).map((f) => [f.header.type, f.header.flags])
      expect(onStream).toEqual([[1, Frame.FLAG_SYN], [0, 0], [0, 0], [1, Frame.FLAG_FIN]])
    }))

  it.effect("RST from the reader's side fails a writer that waits for window", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions()
      const c = yield* client.open
      const writer = yield* Effect.forkChild(c.write([new Uint8Array(MiB)]))
      const s = yield* server.accept
      yield* Effect.yieldNow
      expect(writer.pollUnsafe()).toBeUndefined() // blocked: 256 KiB window, nobody reads
      yield* s.reset
      const exit = yield* Fiber.await(writer)
      expect(Exit.isFailure(exit) && JSON.stringify(exit).includes("Reset")).toBe(true)
    }))

  it.effect("a stream finished both ways is not reset when its scope closes", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_SYN | Frame.FLAG_FIN, 1, 4, enc("ping")))
      yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* session.accept
        expect(dec(yield* readAllBytes(s))).toBe("ping")
        yield* s.write([enc("pong")])
        yield* s.closeWrite
      }))
      expect(session.streamCount()).toBe(0)
      yield* session.close
      const frames = yield* raw.all
      const onStream = frames.filter((f) => f.header.streamId === 1).map((f) => [f.header.type, f.header.flags])
      expect(onStream).toEqual([[0, Frame.FLAG_ACK], [1, Frame.FLAG_FIN]])
    }))

  it.effect("frames for a recently closed stream are ignored (not a protocol error)", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1, 0))
      yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* session.accept
        yield* s.reset
      }))
      yield* raw.until(isFrame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, 1))
      // in-flight data and window updates for the reset stream, then a ping
      yield* raw.send(
        frame(Frame.TYPE_DATA, 0, 1, 5, enc("stale")),
        frame(Frame.TYPE_WINDOW_UPDATE, 0, 1, 1000),
        frame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 42)
      )
      const { match } = yield* raw.until(isFrame(Frame.TYPE_PING, Frame.FLAG_ACK))
      expect(match!.header.length).toBe(42)
      const s2 = yield* Effect.forkChild(session.closed)
      yield* Effect.yieldNow
      expect(s2.pollUnsafe()).toBeUndefined() // still open
    }))
})

describe("yamux §Flow Control", () => {
  it.effect("a sender MUST NOT exceed the window: 256 KiB, then only what WindowUpdates grant [yamux:flow-control:1] [yamux:flow-control:2] [yamux-hashicorp:flow-control:1] [yamux-hashicorp:flow-control:2]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      const writer = yield* Effect.forkChild(s.write([pattern(MiB, 7)]))
      let sent = 0
      while (sent < Frame.INITIAL_WINDOW) {
        const f = yield* raw.next
        if (f!.header.type === Frame.TYPE_DATA) sent += f!.header.length
      }
      expect(sent).toBe(Frame.INITIAL_WINDOW)
      yield* Effect.yieldNow
      expect(writer.pollUnsafe()).toBeUndefined()
      // grant 1000 bytes: exactly 1000 more arrive
      yield* raw.send(frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_ACK, 1, 1000))
      const { match } = yield* raw.until(isFrame(Frame.TYPE_DATA))
      expect(match!.header.length).toBe(1000)
      expect(writer.pollUnsafe()).toBeUndefined()
      // grant the rest
      yield* raw.send(frame(Frame.TYPE_WINDOW_UPDATE, 0, 1, MiB))
      while (sent + 1000 < MiB) {
        const f = yield* raw.next
        if (f!.header.type === Frame.TYPE_DATA) sent += f!.header.length
      }
      yield* Fiber.join(writer)
    }))

  it.effect("the window can be raised in the SYN's WindowUpdate (initialStreamWindow 1 MiB)", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound", { initialStreamWindow: MiB })
      yield* session.open
      const { match } = yield* raw.until(isFrame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1))
      expect(match!.header.length).toBe(MiB - Frame.INITIAL_WINDOW)
      // the peer may now send 1 MiB without waiting; 1 MiB + 1 would be a protocol error
      yield* raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_ACK, 1, MiB, new Uint8Array(MiB)))
      yield* raw.send(frame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 7))
      yield* raw.until(isFrame(Frame.TYPE_PING, Frame.FLAG_ACK))
      yield* raw.send(frame(Frame.TYPE_DATA, 0, 1, 1, new Uint8Array(1)))
      const err = yield* Effect.flip(session.closed)
      expect(err.reason).toBe("ProtocolError")
    }))

  const windowGrowth = (slowReader: boolean) =>
    Effect.gen(function*() {
      // client → relay (records) → server
      const [a1, b1] = yield* Duplex.pair()
      const [a2, b2] = yield* Duplex.pair()
      const rec = frameRecorder()
      yield* Effect.forkChild(relay(b1, a2, () => 65536, () => {}))
      yield* Effect.forkChild(relay(a2, b1, () => 65536, (c) => rec.push(c)))
      const options = { enableKeepAlive: false }
      const client = yield* Yamux.session(a1, "outbound", options)
      const server = yield* Yamux.session(b2, "inbound", options)
      // both ends know the RTT (0 under TestClock) before the transfer starts
      expect(yield* client.ping).toBe(0)
      expect(yield* server.ping).toBe(0)
      const total = 16 * MiB
      const reader = yield* Effect.forkChild(Effect.scoped(Effect.gen(function*() {
        const s = yield* server.accept
        let n = 0
        while (true) {
          // a slow application takes 100 ms (virtual) before each read
          if (slowReader) yield* TestClock.adjust("100 millis")
          const chunks = yield* s.read
          if (chunks.length === 0) return n
          n += Duplex.byteLength(chunks)
        }
      })))
      const c = yield* client.open
      const chunk = new Uint8Array(64 * KiB)
      for (let i = 0; i < total / chunk.byteLength; i++) yield* c.write([chunk])
      yield* c.closeWrite
      expect(yield* Fiber.join(reader)).toBe(total)
      const deltas = rec.frames.filter((h) => h.type === Frame.TYPE_WINDOW_UPDATE && h.streamId === 1).map((h) =>
        h.length
      )
      return Math.max(...deltas)
    })

  it.effect("window auto-tuning: a reader that keeps up within 4 RTTs grows the window up to 16 MiB", () =>
    Effect.gen(function*() {
      const maxDelta = yield* windowGrowth(false)
      expect(maxDelta).toBeGreaterThan(4 * MiB)
      expect(maxDelta).toBeLessThanOrEqual(16 * MiB)
    }))

  it.effect("window auto-tuning: a slow reader keeps the 256 KiB window [yamux:ack-backlog--backpressure:1]", () =>
    Effect.gen(function*() {
      const maxDelta = yield* windowGrowth(true)
      expect(maxDelta).toBeLessThanOrEqual(Frame.INITIAL_WINDOW)
    }))
})

describe("yamux §Session termination (GoAway)", () => {
  it.effect("close sends GoAway (normal termination), then ends the connection; open and accept fail [yamux:session-termination:1] [yamux:session-termination:2] [yamux-hashicorp:session-termination:1] [yamux-hashicorp:session-termination:2]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      yield* session.close
      const frames = yield* raw.all
      const last = frames[frames.length - 1]!
      expect(last.header).toEqual({ type: Frame.TYPE_GO_AWAY, flags: 0, streamId: 0, length: Frame.GO_AWAY_NORMAL })
      yield* session.closed
      expect((yield* Effect.flip(session.open)).reason).toBe("Closed")
      expect((yield* Effect.flip(session.accept)).reason).toBe("Closed")
    }))

  it.effect("closing the session's scope stops its fibers: no read or write on the Duplex is left pending", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      let pendingReads = 0
      let pendingWrites = 0
      const tracked: Duplex.Duplex = {
        ...a,
        read: Effect.suspend(() => {
          pendingReads++
          return Effect.ensuring(a.read, Effect.sync(() => pendingReads--))
        }),
        write: (chunks) =>
          Effect.suspend(() => {
            pendingWrites++
            return Effect.ensuring(a.write(chunks), Effect.sync(() => pendingWrites--))
          })
      }
      const server = yield* Yamux.session(b, "inbound")
      yield* serveEcho(server)
      const scope = yield* Scope.make()
      const client = yield* Scope.provide(Yamux.session(tracked, "outbound", { keepAliveInterval: "1 second" }), scope)
      const s = yield* Scope.provide(client.open, scope)
      yield* s.write([enc("x")])
      expect(dec(Duplex.concat(yield* s.read))).toBe("x")
      yield* TestClock.adjust("3 seconds") // a few keep-alive rounds
      expect(pendingReads).toBe(1) // the reader fiber waits for input
      yield* Scope.close(scope, Exit.void)
      expect(pendingReads).toBe(0)
      expect(pendingWrites).toBe(0)
      yield* server.closed
    }))

  it.effect("a stream fully received before the remote's GoAway stays readable after the session ended", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions()
      const c = yield* client.open
      yield* c.write([enc("all ")])
      const s = yield* server.accept
      yield* c.write([enc("of it")])
      yield* c.closeWrite
      yield* client.close
      yield* server.closed
      expect(dec(yield* readAllBytes(s))).toBe("all of it")
      expect((yield* Effect.flip(s.write([enc("late")]))).reason).toBe("Reset")
      expect((yield* Effect.flip(server.accept)).reason).toBe("Closed")
    }))

  it.effect("after the remote's GoAway (normal) no new streams open, existing ones keep working", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      yield* raw.send(frame(Frame.TYPE_GO_AWAY, 0, 0, Frame.GO_AWAY_NORMAL))
      yield* raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_ACK, 1, 5, enc("still")))
      expect(dec(Duplex.concat(yield* s.read))).toBe("still")
      expect((yield* Effect.flip(session.open)).reason).toBe("GoAway")
      yield* s.write([enc("ok")])
      const { match } = yield* raw.until(isFrame(Frame.TYPE_DATA, 0, 1))
      expect(dec(match!.payload)).toBe("ok")
      // once the last stream has finished both ways, the session ends cleanly
      yield* s.closeWrite
      yield* raw.send(frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_FIN, 1, 0))
      yield* session.closed
      const rest = yield* raw.all
      expect(rest[rest.length - 1]!.header.type).toBe(Frame.TYPE_GO_AWAY)
    }))

  it.effect("a GoAway (normal) with no open streams ends the session cleanly", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(Frame.TYPE_GO_AWAY, 0, 0, Frame.GO_AWAY_NORMAL))
      yield* session.closed
      // nothing more can happen on it
      expect((yield* Effect.flip(session.accept)).reason).toBe("Closed")
    }))

  it.effect("a GoAway with the protocol-error code ends the session with MuxerError GoAway [yamux:session-termination:2] [yamux-hashicorp:session-termination:2]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      yield* raw.send(frame(Frame.TYPE_GO_AWAY, 0, 0, Frame.GO_AWAY_PROTOCOL_ERROR))
      const err = yield* Effect.flip(session.closed)
      expect(err.reason).toBe("GoAway")
      expect(err.message).toContain("protocol error")
      expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
    }))

  it.effect("an internal-error GoAway also ends the session", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(Frame.TYPE_GO_AWAY, 0, 0, Frame.GO_AWAY_INTERNAL_ERROR))
      const err = yield* Effect.flip(session.closed)
      expect(err.reason).toBe("GoAway")
      expect(err.message).toContain("internal error")
    }))

  it.effect("the remote's EOF at a frame boundary ends the session cleanly (GoAway normal in reply)", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.duplex.closeWrite
      yield* session.closed
      const frames = yield* raw.all
      expect(frames[frames.length - 1]!.header.type).toBe(Frame.TYPE_GO_AWAY)
      expect(frames[frames.length - 1]!.header.length).toBe(Frame.GO_AWAY_NORMAL)
    }))
})

describe("yamux §Ping (keep-alive)", () => {
  it.effect("a Ping with SYN is answered with ACK and the same opaque value", () =>
    Effect.gen(function*() {
      const { raw } = yield* rawSession("inbound", { enableKeepAlive: false })
      yield* raw.send(frame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 0xdeadbeef))
      const { match } = yield* raw.until(isFrame(Frame.TYPE_PING, Frame.FLAG_ACK))
      expect(match!.header).toEqual({ type: Frame.TYPE_PING, flags: Frame.FLAG_ACK, streamId: 0, length: 0xdeadbeef })
    }))

  it.effect("keep-alive pings are sent at the configured interval (TestClock)", () =>
    Effect.gen(function*() {
      const { raw } = yield* rawSession("outbound", { keepAliveInterval: "10 seconds", pingTimeout: "5 seconds" })
      const answer = (f: { header: Frame.Header }) =>
        raw.send(frame(Frame.TYPE_PING, Frame.FLAG_ACK, 0, f.header.length))
      const first = yield* raw.next
      expect(first!.header.type).toBe(Frame.TYPE_PING)
      expect(first!.header.flags).toBe(Frame.FLAG_SYN)
      yield* answer(first!)
      const nextPing = yield* Effect.forkChild(raw.next)
      yield* TestClock.adjust("9 seconds")
      expect(nextPing.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      const second = yield* Fiber.join(nextPing)
      expect(second!.header.type).toBe(Frame.TYPE_PING)
      expect(second!.header.flags).toBe(Frame.FLAG_SYN)
      expect(second!.header.length).not.toBe(first!.header.length)
      yield* answer(second!)
      const third = yield* Effect.forkChild(raw.next)
      yield* TestClock.adjust("10 seconds")
      expect((yield* Fiber.join(third))!.header.type).toBe(Frame.TYPE_PING)
    }))

  it.effect("a keep-alive ping unanswered within the timeout closes the session with MuxerError Timeout", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound", {
        keepAliveInterval: "10 seconds",
        pingTimeout: "5 seconds"
      })
      const s = yield* session.open
      const closed = yield* Effect.forkChild(Effect.flip(session.closed))
      yield* TestClock.adjust("4 seconds")
      expect(closed.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 second")
      const err = yield* Fiber.join(closed)
      expect(err.reason).toBe("Timeout")
      expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
      const frames = yield* raw.all
      expect(frames[frames.length - 1]!.header).toEqual({
        type: Frame.TYPE_GO_AWAY,
        flags: 0,
        streamId: 0,
        length: Frame.GO_AWAY_INTERNAL_ERROR
      })
    }))

  it.effect("a peer that keeps sending frames is alive even if its pong is late; silence then times out", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound", {
        keepAliveInterval: "10 seconds",
        pingTimeout: "5 seconds"
      })
      const first = yield* raw.next
      expect(first!.header.type).toBe(Frame.TYPE_PING)
      const closed = yield* Effect.forkChild(Effect.flip(session.closed))
      // traffic (pings of its own) every 3 s, but no answer to our ping
      for (let t = 0; t < 4; t++) {
        yield* raw.send(frame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 100 + t))
        yield* TestClock.adjust("3 seconds")
      }
      expect(closed.pollUnsafe()).toBeUndefined()
      // silence: within one more timeout the session ends
      yield* TestClock.adjust("5 seconds")
      yield* TestClock.adjust("5 seconds")
      expect((yield* Fiber.join(closed)).reason).toBe("Timeout")
    }))

  it.effect("ping measures the round-trip time on the Clock", () =>
    Effect.gen(function*() {
      const { client } = yield* sessions()
      const rtt = yield* client.ping
      expect(rtt).toBe(0) // TestClock does not move while the pong travels
      expect(client.rtt()).toBe(0)
    }))
})

describe("yamux stream limits (§ACK backlog and concurrency)", () => {
  it.effect("inbound streams beyond maxInboundStreams are refused with RST", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions({}, { maxInboundStreams: 2 })
      const s1 = yield* client.open
      const s2 = yield* client.open
      const s3 = yield* client.open
      expect((yield* Effect.flip(s3.read)).reason).toBe("Reset")
      yield* s1.write([enc("1")])
      yield* s2.write([enc("2")])
      const a1 = yield* server.accept
      const a2 = yield* server.accept
      expect([a1.id, a2.id]).toEqual(["1", "3"])
      expect(server.streamCount()).toBe(2)
    }))

  it.effect("open fails with TooManyStreams beyond maxOutboundStreams, and works again once a stream ends", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions({ maxOutboundStreams: 2 })
      yield* serveEcho(server)
      const s1 = yield* client.open
      yield* client.open
      expect((yield* Effect.flip(client.open)).reason).toBe("TooManyStreams")
      yield* s1.closeWrite
      yield* readAllBytes(s1)
      expect(client.streamCount()).toBe(1)
      const s3 = yield* client.open
      expect(s3.id).toBe("5")
    }))

  it.effect("§ACK backlog: more than maxUnackedInboundStreams unacknowledged inbound streams are refused with RST [yamux:ack-backlog--backpressure:2] [yamux:ack-backlog--backpressure:4]", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions({}, { maxUnackedInboundStreams: 2 })
      yield* client.open
      yield* client.open
      const s3 = yield* client.open
      expect((yield* Effect.flip(s3.read)).reason).toBe("Reset")
      // acknowledging one (the server's first write) frees a slot
      const a1 = yield* server.accept
      yield* a1.write([enc("ack")])
      const s4 = yield* client.open
      yield* s4.write([enc("four")])
      yield* server.accept
      const a4 = yield* server.accept
      expect(a4.id).toBe("7")
      expect(dec(Duplex.concat(yield* a4.read))).toBe("four")
    }))

  it.effect("§ACK backlog: open waits while maxAckBacklog of our streams are unacknowledged [yamux:ack-backlog--backpressure:2]", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions({ maxAckBacklog: 1 })
      const s1 = yield* client.open
      const second = yield* Effect.forkChild(client.open)
      yield* Effect.yieldNow
      yield* Effect.yieldNow
      expect(second.pollUnsafe()).toBeUndefined()
      const a1 = yield* server.accept
      yield* a1.write([enc("ack")])
      const s2 = yield* Fiber.join(second)
      expect(s2.id).toBe("3")
      expect(dec(Duplex.concat(yield* s1.read))).toBe("ack")
    }))
})

describe("yamux: malformed frames from the network end the session with ProtocolError", () => {
  const expectProtocolError = (
    direction: "inbound" | "outbound",
    bytes: (raw: ReturnType<typeof rawPeer>) => Effect.Effect<void, unknown>,
    options?: Yamux.YamuxOptions
  ) =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession(direction, options)
      yield* bytes(raw)
      const err = yield* Effect.flip(session.closed)
      expect(err._tag).toBe("MuxerError")
      expect(err.reason).toBe("ProtocolError")
      const frames = yield* raw.all // ends: the session half-closed the connection
      expect(frames[frames.length - 1]!.header).toEqual({
        type: Frame.TYPE_GO_AWAY,
        flags: 0,
        streamId: 0,
        length: Frame.GO_AWAY_PROTOCOL_ERROR
      })
      expect((yield* Effect.flip(session.open)).reason).toBe("ProtocolError")
      expect(session.streamCount()).toBe(0)
      return err
    })

  it.effect("§Version Field: a frame with version 1", () =>
    expectProtocolError("inbound", (raw) => {
      const f = frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1, 0)
      f[0] = 1
      return raw.send(f)
    }))

  it.effect("§Type Field: an unknown frame type", () =>
    expectProtocolError("inbound", (raw) => {
      const f = frame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 0)
      f[1] = 9
      return raw.send(f)
    }))

  it.effect("§Flow Control: window overflow in one frame (256 KiB + 1 on a new stream)", () =>
    expectProtocolError(
      "inbound",
      (raw) => raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_SYN, 1, Frame.INITIAL_WINDOW + 1))
    ))

  it.effect("§Flow Control: window overflow across frames (the application does not read)", () =>
    expectProtocolError("inbound", (raw) =>
      raw.send(
        frame(Frame.TYPE_DATA, Frame.FLAG_SYN, 1, 200 * KiB, new Uint8Array(200 * KiB)),
        frame(Frame.TYPE_DATA, 0, 1, 100 * KiB, new Uint8Array(100 * KiB))
      )))

  it.effect("a window update for a stream that was never opened", () =>
    expectProtocolError("inbound", (raw) => raw.send(frame(Frame.TYPE_WINDOW_UPDATE, 0, 5, 100))))

  it.effect("data before SYN (a stream id the remote never opened)", () =>
    expectProtocolError("inbound", (raw) => raw.send(frame(Frame.TYPE_DATA, 0, 1, 2, enc("hi")))))

  it.effect("data for a stream id of our parity that we never opened", () =>
    expectProtocolError("outbound", (raw) => raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_ACK, 7, 1, enc("x")))))

  it.effect("an oversized length (4 GiB data frame) fails before buffering anything", () =>
    expectProtocolError("inbound", (raw) => raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_SYN, 1, 0xffff_ffff))))

  it.effect("a truncated header then EOF", () =>
    expectProtocolError(
      "inbound",
      (raw) =>
        Effect.andThen(raw.send(frame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 1).subarray(0, 7)), raw.duplex.closeWrite)
    ))

  it.effect("a truncated payload then EOF", () =>
    expectProtocolError("inbound", (raw) =>
      Effect.andThen(
        raw.send(frame(Frame.TYPE_DATA, Frame.FLAG_SYN, 1, 10, enc("only5"))),
        raw.duplex.closeWrite
      )))

  it.effect("§StreamID Field: a SYN with the wrong parity (both ends are clients)", () =>
    expectProtocolError("outbound", (raw) => raw.send(frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 3, 0))))

  it.effect("a SYN reusing an open stream id", () =>
    expectProtocolError("inbound", (raw) =>
      raw.send(
        frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1, 0),
        frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1, 0)
      )))

  it.effect("a SYN reusing a recently closed stream id", () =>
    expectProtocolError("inbound", (raw) =>
      raw.send(
        frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1, 0),
        frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, 1, 0),
        frame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, 1, 0)
      )))

  it.effect("§Closing a stream: data after FIN", () =>
    expectProtocolError("inbound", (raw) =>
      raw.send(
        frame(Frame.TYPE_DATA, Frame.FLAG_SYN | Frame.FLAG_FIN, 1, 1, enc("a")),
        frame(Frame.TYPE_DATA, 0, 1, 1, enc("b"))
      )))

  it.effect("§StreamID Field: a Ping on a stream other than 0 [yamux:streamid-field:2] [yamux-hashicorp:streamid-field:2]", () =>
    expectProtocolError("inbound", (raw) => raw.send(frame(Frame.TYPE_PING, Frame.FLAG_SYN, 3, 1))))

  it.effect("§StreamID Field: a data frame on stream 0", () =>
    expectProtocolError("inbound", (raw) => raw.send(frame(Frame.TYPE_DATA, 0, 0, 1, enc("x")))))

  it.effect("random garbage", () =>
    expectProtocolError("inbound", (raw) => {
      const junk = pattern(4096, 12345)
      junk[0] = 0x5a // not version 0
      return raw.send(junk)
    }))
})
