/**
 * mplex against the libp2p mplex spec (libp2p/specs mplex/README.md): frame
 * vectors (§Message format, §Flag Values), stream lifecycle (§Opening a new
 * stream, §Writing to a stream, §Closing a stream, §Resetting a stream), the
 * slow-reader rule of §Implementation notes, session scoping (the
 * StreamMuxer contract) and malformed input from the network. Sessions run
 * over `Duplex.pair()`; "raw" tests drive the other end of the pair frame by
 * frame.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Mplex from "../../src/muxer/Mplex.ts"
import * as Frame from "../../src/muxer/mplex/frame.ts"
import { dec, enc, equalBytes, KiB, MiB, pattern } from "../support/bytes.ts"
import { frame, rawPeer } from "../support/mplex.ts"
import { readAllBytes } from "../support/muxer.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"
import { muxerSuite } from "./compliance.ts"

interface VectorMessage {
  readonly id: number
  readonly type: number
  readonly data_utf8: string
}
interface FrameVectors {
  readonly vectors: ReadonlyArray<{
    readonly name: string
    readonly message?: VectorMessage
    readonly messages?: ReadonlyArray<VectorMessage>
    readonly hex_prefix?: string
    readonly full_hex?: string
    readonly hex?: string
  }>
}
const vectors = readJson<FrameVectors>("muxers/mplex-frames.json")

/** Two sessions over an in-memory pair. */
const sessions = (client?: Mplex.MplexOptions, server?: Mplex.MplexOptions) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair()
    const c = yield* Mplex.session(a, "outbound", client)
    const s = yield* Mplex.session(b, "inbound", server)
    return { client: c, server: s }
  })

/** A session on one end of a pair, a raw peer on the other. */
const rawSession = (direction: "inbound" | "outbound", options?: Mplex.MplexOptions) =>
  Effect.gen(function*() {
    const [a, b] = yield* Duplex.pair({ capacity: 100_000 })
    const session = yield* Mplex.session(a, direction, options)
    return { session, raw: rawPeer(b) }
  })

const isFrame = (flag: number, id?: number) => (f: { flag: number; id: number }) =>
  f.flag === flag && (id === undefined || f.id === id)

describe("mplex §Protocol id", () => {
  it("the protocol id for multistream-select is /mplex/6.7.0", () => {
    expect(Mplex.PROTOCOL).toBe("/mplex/6.7.0")
    expect(Mplex.mplex.protocol).toBe("/mplex/6.7.0")
  })
})

muxerSuite("mplex", Mplex.mplex)

describe("mplex §Message format and §Flag Values (vectors: muxers/mplex-frames.json)", () => {
  const toMessage = (m: VectorMessage) => ({ id: m.id, flag: m.type, data: dec(enc(m.data_utf8)) })
  for (const v of vectors.vectors) {
    it(`vector "${v.name}"`, () => {
      if (v.message !== undefined) {
        const m = v.message
        const data = enc(m.data_utf8)
        const full = Frame.encode(m.id, m.type, data)
        if (v.hex_prefix !== undefined) {
          expect(toHex(Frame.encodeHeader(m.id, m.type, data.byteLength))).toBe(v.hex_prefix)
        }
        const expected = v.full_hex ?? v.hex!
        expect(toHex(full)).toBe(expected)
        const decoded = Result.getOrThrow(Frame.decodeAll(fromHex(expected)))
        expect(decoded.map((f) => ({ id: f.id, flag: f.flag, data: dec(f.data) }))).toEqual([toMessage(m)])
      }
      if (v.messages !== undefined) {
        const bytes = fromHex(v.hex!)
        const decoded = Result.getOrThrow(Frame.decodeAll(bytes))
        expect(decoded.map((f) => ({ id: f.id, flag: f.flag, data: dec(f.data) }))).toEqual(v.messages.map(toMessage))
        // and back: the concatenated encodings are the vector bytes
        const encoded = Duplex.concat(v.messages.map((m) => Frame.encode(m.id, m.type, enc(m.data_utf8))))
        expect(toHex(encoded)).toBe(v.hex)
      }
    })
  }

  it("§Message format: header = id << 3 | flag, as an unsigned varint, also beyond 32 bits", () => {
    for (const id of [0, 1, 15, 16, 2 ** 28, 2 ** 31 + 5, Frame.MAX_STREAM_ID]) {
      for (let flag = 0; flag <= 6; flag++) {
        const bytes = Frame.encode(id, flag, Uint8Array.of(9))
        const h = Result.getOrThrow(Frame.decodeHeader(bytes))!
        expect({ id: h.id, flag: h.flag, length: h.length }).toEqual({ id, flag, length: 1 })
        expect(h.bytes).toBe(Frame.headerLength(id, flag, 1))
      }
    }
    // the vector's 0x88 0x01 is 136 = 17 << 3 | 0
    expect(toHex(Frame.encodeHeader(17, Frame.NEW_STREAM, 0))).toBe("880100")
  })

  it("§Flag Values: flag 7 is not defined and is rejected", () => {
    const r = Frame.decodeHeader(Uint8Array.of(0x0f, 0x00))
    expect(Result.isFailure(r) && r.failure.reason).toBe("BadFlag")
  })

  it("§Writing to a stream: a length above 1 MiB is rejected; exactly 1 MiB is accepted [mplex:writing-to-a-stream:2]", () => {
    const over = Frame.encodeHeader(1, Frame.MESSAGE_INITIATOR, Frame.MAX_MESSAGE_SIZE + 1)
    const r = Frame.decodeHeader(over)
    expect(Result.isFailure(r) && r.failure.reason).toBe("TooLarge")
    const ok = Result.getOrThrow(
      Frame.decodeHeader(Frame.encodeHeader(1, Frame.MESSAGE_INITIATOR, Frame.MAX_MESSAGE_SIZE))
    )
    expect(ok!.length).toBe(Frame.MAX_MESSAGE_SIZE)
  })

  it("§Message format: an incomplete header asks for more bytes; bad varints and truncated frames fail", () => {
    expect(Result.getOrThrow(Frame.decodeHeader(Uint8Array.of(0x88)))).toBeUndefined()
    expect(Result.getOrThrow(Frame.decodeHeader(Uint8Array.of(0x88, 0x01)))).toBeUndefined()
    expect(Result.getOrThrow(Frame.decodeHeader(Uint8Array.of(0x0a, 0x80)))).toBeUndefined()
    const long = Frame.decodeHeader(new Uint8Array(10).fill(0xff))
    expect(Result.isFailure(long) && long.failure.reason).toBe("BadVarint")
    expect(Result.isFailure(long) && long.failure._tag).toBe("MplexFrameError")
    const notMinimal = Frame.decodeHeader(Uint8Array.of(0x8a, 0x00, 0x00))
    expect(Result.isFailure(notMinimal) && notMinimal.failure.reason).toBe("BadVarint")
    const truncated = Frame.decodeAll(fromHex("0a0561626364"))
    expect(Result.isFailure(truncated) && truncated.failure.reason).toBe("Truncated")
  })
})

describe("mplex §Opening a new stream", () => {
  it.effect("the session initiator allocates odd ids, the receiver even ids", () =>
    Effect.gen(function*() {
      const { client, server } = yield* sessions()
      const c = [yield* client.open, yield* client.open, yield* client.open]
      const s = [yield* server.open, yield* server.open]
      expect(c.map((x) => x.id)).toEqual(["1", "3", "5"])
      expect(s.map((x) => x.id)).toEqual(["0", "2"])
      const accepted = [yield* server.accept, yield* server.accept, yield* server.accept]
      expect(accepted.map((x) => [x.id, x.direction])).toEqual([["1", "inbound"], ["3", "inbound"], ["5", "inbound"]])
      const back = [yield* client.accept, yield* client.accept]
      expect(back.map((x) => [x.id, x.direction])).toEqual([["0", "inbound"], ["2", "inbound"]])
    }))

  it.effect("NewStream carries the stream's name; data follows with MessageInitiator [mplex:writing-to-a-stream:1]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      yield* s.write([enc("early")])
      const first = yield* raw.next
      expect(first).toEqual({ id: 1, flag: Frame.NEW_STREAM, data: enc("1") })
      const second = yield* raw.next
      expect(second!.flag).toBe(Frame.MESSAGE_INITIATOR)
      expect(second!.id).toBe(1)
      expect(dec(second!.data)).toBe("early")
    }))

  it.effect("names are for interfaces only: empty, repeated and arbitrary names all open streams", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(
        frame(1, Frame.NEW_STREAM),
        frame(3, Frame.NEW_STREAM, "same"),
        frame(5, Frame.NEW_STREAM, "same"),
        frame(7, Frame.NEW_STREAM, pattern(1000, 7))
      )
      const ids = [yield* session.accept, yield* session.accept, yield* session.accept, yield* session.accept]
      expect(ids.map((s) => s.id)).toEqual(["1", "3", "5", "7"])
      expect(session.streamCount()).toBe(4)
    }))

  it.effect("stream ids are per initiator: both roles use the same number for different streams", () =>
    Effect.gen(function*() {
      // we are the session initiator and open id 1; the peer (like js-libp2p and go-mplex,
      // which count from 0 on both sides) opens its own stream 1 too
      const { session, raw } = yield* rawSession("outbound")
      const ours = yield* session.open
      yield* raw.send(frame(1, Frame.NEW_STREAM, "theirs"), frame(1, Frame.MESSAGE_INITIATOR, "to their stream"))
      const theirs = yield* session.accept
      expect([ours.id, theirs.id]).toEqual(["1", "1"])
      expect([ours.direction, theirs.direction]).toEqual(["outbound", "inbound"])
      // the receiver's flag names our stream, the initiator's flag theirs
      yield* raw.send(frame(1, Frame.MESSAGE_RECEIVER, "to our stream"))
      expect(dec(Duplex.concat(yield* theirs.read))).toBe("to their stream")
      expect(dec(Duplex.concat(yield* ours.read))).toBe("to our stream")
      // and we answer with the flag of our role on each
      yield* ours.write([enc("from ours")])
      yield* theirs.write([enc("from theirs")])
      const { seen } = yield* raw.until((f) => f.flag === Frame.MESSAGE_RECEIVER)
      const data = seen.filter((f) => f.flag !== Frame.NEW_STREAM).map((f) => [f.id, f.flag, dec(f.data)])
      expect(data).toEqual([[1, Frame.MESSAGE_INITIATOR, "from ours"], [1, Frame.MESSAGE_RECEIVER, "from theirs"]])
      // closing one leaves the other open
      yield* raw.send(frame(1, Frame.RESET_INITIATOR))
      expect((yield* Effect.flip(theirs.read)).reason).toBe("Reset")
      yield* ours.write([enc("still open")])
      const next = yield* raw.next
      expect([next!.id, next!.flag, dec(next!.data)]).toEqual([1, Frame.MESSAGE_INITIATOR, "still open"])
    }))

  it.effect("limits: inbound streams beyond maxInboundStreams are refused with ResetReceiver", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { maxInboundStreams: 2 })
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(3, Frame.NEW_STREAM), frame(5, Frame.NEW_STREAM))
      const refused = yield* raw.next
      expect(refused).toEqual({ id: 5, flag: Frame.RESET_RECEIVER, data: new Uint8Array(0) })
      // data the peer sent before seeing the reset is ignored
      yield* raw.send(frame(5, Frame.MESSAGE_INITIATOR, "late"), frame(1, Frame.MESSAGE_INITIATOR, "ok"))
      const s1 = yield* session.accept
      const s3 = yield* session.accept
      expect([s1.id, s3.id]).toEqual(["1", "3"])
      expect(dec(Duplex.concat(yield* s1.read))).toBe("ok")
      // after one closes, a new stream is accepted
      yield* s1.reset
      yield* raw.send(frame(7, Frame.NEW_STREAM))
      expect((yield* session.accept).id).toBe("7")
    }))

  it.effect("limits: open fails with TooManyStreams beyond maxOutboundStreams", () =>
    Effect.gen(function*() {
      const { client } = yield* sessions({ maxOutboundStreams: 2 })
      const scope = yield* Scope.make()
      yield* Scope.provide(client.open, scope)
      yield* Scope.provide(client.open, scope)
      const err = yield* Effect.flip(client.open)
      expect(err.reason).toBe("TooManyStreams")
      yield* Scope.close(scope, Exit.void)
      expect(client.streamCount()).toBe(0)
      yield* client.open
    }))
})

describe("mplex §Writing to a stream", () => {
  it.effect("the receiver of a stream writes MessageReceiver [mplex:writing-to-a-stream:1]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(4, Frame.NEW_STREAM, "x"))
      const s = yield* session.accept
      yield* s.write([enc("re"), enc("ply")])
      const f = yield* raw.next
      expect([f!.id, f!.flag, dec(f!.data)]).toEqual([4, Frame.MESSAGE_RECEIVER, "reply"])
    }))

  it.effect("data is sent in frames of at most maxFrameSize (64 KiB by default), in order", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const s = yield* session.open
      const data = pattern(300 * KiB + 7, 3)
      yield* s.write([data.subarray(0, 1000), data.subarray(1000)])
      yield* s.closeWrite
      const frames = (yield* raw.until(isFrame(Frame.CLOSE_INITIATOR, 1))).seen
      const messages = frames.filter((f) => f.flag === Frame.MESSAGE_INITIATOR)
      expect(messages.every((f) => f.data.byteLength <= 64 * KiB)).toBe(true)
      expect(messages.length).toBe(5)
      expect(equalBytes(Duplex.concat(messages.map((f) => f.data)), data)).toBe(true)
    }))

  it.effect("a message of exactly 1 MiB is accepted; zero-length messages are harmless", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      const data = pattern(MiB, 11)
      yield* raw.send(
        frame(1, Frame.NEW_STREAM),
        frame(1, Frame.MESSAGE_INITIATOR),
        frame(1, Frame.MESSAGE_INITIATOR, data)
      )
      yield* raw.send(frame(1, Frame.CLOSE_INITIATOR))
      const s = yield* session.accept
      expect(equalBytes(yield* readAllBytes(s), data)).toBe(true)
    }))

  it.effect("a header split across chunks (byte by byte) is reassembled", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      const bytes = Duplex.concat([
        frame(2 ** 40, Frame.NEW_STREAM, "big id"),
        frame(2 ** 40, Frame.MESSAGE_INITIATOR, pattern(300, 1)),
        frame(2 ** 40, Frame.CLOSE_INITIATOR)
      ])
      yield* raw.send(...Array.from(bytes, (b) => Uint8Array.of(b)))
      const s = yield* session.accept
      expect(s.id).toBe(String(2 ** 40))
      expect(equalBytes(yield* readAllBytes(s), pattern(300, 1))).toBe(true)
    }))
})

describe("mplex §Closing a stream", () => {
  it.effect("Close frames: CloseInitiator from the opener, CloseReceiver from the receiver, zero length", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      const ours = yield* session.open
      yield* ours.closeWrite
      yield* raw.send(frame(8, Frame.NEW_STREAM))
      const theirs = yield* session.accept
      yield* theirs.closeWrite
      const { seen } = yield* raw.until(isFrame(Frame.CLOSE_RECEIVER, 8))
      expect(seen.map((f) => [f.id, f.flag, f.data.byteLength])).toEqual([
        [1, Frame.NEW_STREAM, 1],
        [1, Frame.CLOSE_INITIATOR, 0],
        [8, Frame.CLOSE_RECEIVER, 0]
      ])
    }))

  it.effect("reading a remote-closed stream returns all data sent before the Close, then EOF [mplex:closing-a-stream:1]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(
        frame(1, Frame.NEW_STREAM),
        frame(1, Frame.MESSAGE_INITIATOR, "a"),
        frame(1, Frame.MESSAGE_INITIATOR, "b"),
        frame(1, Frame.CLOSE_INITIATOR)
      )
      const s = yield* session.accept
      expect(dec(yield* readAllBytes(s))).toBe("ab")
      expect(yield* s.read).toEqual([])
      // our side is still writable
      yield* s.write([enc("c")])
      const f = yield* raw.next
      expect([f!.flag, dec(f!.data)]).toEqual([Frame.MESSAGE_RECEIVER, "c"])
    }))

  it.effect("data after the remote's Close resets that stream only", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(3, Frame.NEW_STREAM))
      const s1 = yield* session.accept
      const s3 = yield* session.accept
      yield* raw.send(frame(1, Frame.CLOSE_INITIATOR), frame(1, Frame.MESSAGE_INITIATOR, "too late"))
      const reset = yield* raw.next
      expect([reset!.id, reset!.flag]).toEqual([1, Frame.RESET_RECEIVER])
      expect((yield* Effect.flip(s1.read)).reason).toBe("Reset")
      yield* raw.send(frame(3, Frame.MESSAGE_INITIATOR, "fine"))
      expect(dec(Duplex.concat(yield* s3.read))).toBe("fine")
    }))
})

describe("mplex §Resetting a stream", () => {
  it.effect("Reset frames: ResetInitiator from the opener, ResetReceiver from the receiver", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(1, Frame.NEW_STREAM))
      const theirs = yield* session.accept
      yield* theirs.reset
      const ours = yield* session.open
      yield* ours.reset
      const { seen } = yield* raw.until(isFrame(Frame.RESET_INITIATOR))
      expect(seen.map((f) => [f.id, f.flag])).toEqual([
        [1, Frame.RESET_RECEIVER],
        [0, Frame.NEW_STREAM],
        [0, Frame.RESET_INITIATOR]
      ])
    }))

  it.effect("a remote reset drops data queued for reading: reads fail at once [mplex:resetting-a-stream:2] [mplex:resetting-a-stream:3]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(1, Frame.MESSAGE_INITIATOR, "unread"))
      const s = yield* session.accept
      // wait until the data is buffered, then reset
      yield* raw.send(frame(3, Frame.NEW_STREAM))
      yield* session.accept
      yield* raw.send(frame(1, Frame.RESET_INITIATOR))
      yield* raw.send(frame(5, Frame.NEW_STREAM))
      yield* session.accept
      expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
      expect((yield* Effect.flip(s.write([enc("x")]))).reason).toBe("Reset")
    }))

  it.effect("frames for a stream after it was reset are ignored; the session carries on", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { maxUnknownFramesPerSecond: 0 })
      yield* raw.send(frame(1, Frame.NEW_STREAM))
      const s = yield* session.accept
      yield* s.reset
      expect(yield* raw.next).toEqual({ id: 1, flag: Frame.RESET_RECEIVER, data: new Uint8Array(0) })
      // in flight before the peer saw our reset: data, close, and its own reset
      yield* raw.send(
        frame(1, Frame.MESSAGE_INITIATOR, "in flight"),
        frame(1, Frame.CLOSE_INITIATOR),
        frame(1, Frame.RESET_INITIATOR),
        frame(3, Frame.NEW_STREAM),
        frame(3, Frame.MESSAGE_INITIATOR, "next")
      )
      const s3 = yield* session.accept
      expect(dec(Duplex.concat(yield* s3.read))).toBe("next")
    }))
})

describe("mplex §Implementation notes: slow readers (no back pressure)", () => {
  it.live("a flood into one stream past the 4 MiB buffer resets that stream (after slowReaderTimeout); others and the session survive [mplex:implementation-notes:2]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { slowReaderTimeout: "30 millis" })
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(3, Frame.NEW_STREAM))
      const flooded = yield* session.accept
      const other = yield* session.accept
      const mib = pattern(MiB, 9)
      // 4 MiB fit; the fifth message would exceed the cap
      for (let i = 0; i < 6; i++) yield* raw.send(frame(1, Frame.MESSAGE_INITIATOR, mib))
      yield* raw.send(frame(3, Frame.MESSAGE_INITIATOR, "alive"), frame(5, Frame.NEW_STREAM))
      const reset = yield* raw.next
      expect([reset!.id, reset!.flag]).toEqual([1, Frame.RESET_RECEIVER])
      const err = yield* Effect.flip(flooded.read)
      expect(err.reason).toBe("Reset")
      expect(err.message).toContain("unread")
      // the other stream and new streams still work; the sixth message (for a reset stream) was skipped
      expect(dec(Duplex.concat(yield* other.read))).toBe("alive")
      expect((yield* session.accept).id).toBe("5")
      expect(session.streamCount()).toBe(2)
    }))

  it.live("option 1 of the spec: a full stream blocks the connection until it is read, then nothing is lost [mplex:implementation-notes:2]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(3, Frame.NEW_STREAM))
      const slow = yield* session.accept
      const other = yield* session.accept
      const data = pattern(6 * MiB, 4)
      for (let at = 0; at < data.byteLength; at += MiB) {
        yield* raw.send(frame(1, Frame.MESSAGE_INITIATOR, data.subarray(at, at + MiB)))
      }
      yield* raw.send(frame(3, Frame.MESSAGE_INITIATOR, "behind the flood"), frame(1, Frame.CLOSE_INITIATOR))
      // the message for stream 3 waits behind stream 1's stalled message
      const early = yield* Effect.timeoutOption(other.read, "50 millis")
      expect(early._tag).toBe("None")
      // reading stream 1 unblocks everything; nothing was reset
      expect(equalBytes(yield* readAllBytes(slow), data)).toBe(true)
      expect(dec(Duplex.concat(yield* other.read))).toBe("behind the flood")
    }))

  it.effect("a reader that keeps up is never reset: 16 MiB through one stream read as it arrives [mplex:implementation-notes:1]", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { slowReaderTimeout: 0 })
      yield* raw.send(frame(1, Frame.NEW_STREAM))
      const s = yield* session.accept
      const mib = pattern(MiB, 2)
      const reader = yield* Effect.forkChild(readAllBytes(s))
      for (let i = 0; i < 16; i++) {
        yield* raw.send(frame(1, Frame.MESSAGE_INITIATOR, mib))
        yield* Effect.yieldNow
      }
      yield* raw.send(frame(1, Frame.CLOSE_INITIATOR))
      expect((yield* Fiber.join(reader)).byteLength).toBe(16 * MiB)
    }))

  it.effect("maxStreamBuffer and slowReaderTimeout are options; a zero timeout resets at once (js-libp2p's way)", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { maxStreamBuffer: MiB, slowReaderTimeout: 0 })
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(1, Frame.MESSAGE_INITIATOR, pattern(MiB, 1)))
      const s = yield* session.accept
      yield* raw.send(frame(1, Frame.MESSAGE_INITIATOR, "1"))
      const reset = yield* raw.next
      expect([reset!.id, reset!.flag]).toEqual([1, Frame.RESET_RECEIVER])
      expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
      expect(Mplex.defaults.maxStreamBuffer).toBe(4 * MiB)
    }))

  it.effect("a stream reset by the application while the connection waits for it unblocks reading", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { maxStreamBuffer: MiB })
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(3, Frame.NEW_STREAM))
      const full = yield* session.accept
      const other = yield* session.accept
      yield* raw.send(
        frame(1, Frame.MESSAGE_INITIATOR, pattern(MiB, 1)),
        frame(1, Frame.MESSAGE_INITIATOR, "stalls"),
        frame(3, Frame.MESSAGE_INITIATOR, "next")
      )
      const pending = yield* Effect.forkChild(other.read)
      yield* full.reset
      expect(dec(Duplex.concat(yield* Fiber.join(pending)))).toBe("next")
    }))
})

describe("mplex: frames for unknown streams", () => {
  it.effect("are ignored (data, close and reset for ids never opened, both roles)", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(
        frame(41, Frame.MESSAGE_INITIATOR, "who?"),
        frame(42, Frame.MESSAGE_RECEIVER, "who?"),
        frame(43, Frame.CLOSE_INITIATOR),
        frame(44, Frame.RESET_RECEIVER),
        frame(1, Frame.NEW_STREAM),
        frame(1, Frame.MESSAGE_INITIATOR, "ok")
      )
      const s = yield* session.accept
      expect(dec(Duplex.concat(yield* s.read))).toBe("ok")
      expect(session.streamCount()).toBe(1)
    }))

  it.effect("but are bounded: more than maxUnknownFramesPerSecond in one second end the session", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound", { maxUnknownFramesPerSecond: 100 })
      const junk = Array.from({ length: 100 }, (_, i) => frame(1000 + i, Frame.MESSAGE_INITIATOR, "x"))
      yield* raw.send(...junk)
      // a new second: the budget is back
      yield* TestClock.adjust("1 second")
      yield* raw.send(...junk, frame(1, Frame.NEW_STREAM))
      expect((yield* session.accept).id).toBe("1")
      yield* raw.send(frame(5000, Frame.RESET_INITIATOR))
      const err = yield* Effect.flip(session.closed)
      expect(err.reason).toBe("ProtocolError")
      expect(err.message).toContain("do not exist")
    }))
})

describe("mplex: session scope and termination (StreamMuxer contract)", () => {
  it.effect("closing the session's scope resets open streams (Reset frames) and closes the Duplex", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair({ capacity: 100_000 })
      const raw = rawPeer(b)
      const scope = yield* Scope.make()
      const session = yield* Scope.provide(Mplex.session(a, "outbound"), scope)
      const s1 = yield* Scope.provide(session.open, scope)
      const s2 = yield* Scope.provide(session.open, scope)
      yield* s2.closeWrite
      yield* Scope.close(scope, Exit.void)
      const frames = yield* raw.all // ends: the Duplex was half-closed
      expect(frames.filter((f) => f.flag === Frame.RESET_INITIATOR).map((f) => f.id).sort()).toEqual([1, 3])
      expect((yield* Effect.flip(s1.read)).reason).toBe("Reset")
      expect((yield* Effect.flip(s1.write([enc("x")]))).reason).toBe("Reset")
      expect((yield* Effect.flip(session.accept)).reason).toBe("Closed")
      yield* session.closed
    }))

  it.effect("a stream's scope closing resets it unless it finished both ways", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("outbound")
      yield* Effect.scoped(session.open)
      // finished both ways: nothing but NewStream and Close
      yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* session.open
        yield* s.closeWrite
        yield* raw.send(frame(3, Frame.CLOSE_RECEIVER))
        expect(yield* s.read).toEqual([])
      }))
      const frames = yield* raw.until(isFrame(Frame.CLOSE_INITIATOR, 3))
      expect(frames.seen.map((f) => [f.id, f.flag])).toEqual([
        [1, Frame.NEW_STREAM],
        [1, Frame.RESET_INITIATOR],
        [3, Frame.NEW_STREAM],
        [3, Frame.CLOSE_INITIATOR]
      ])
      expect(session.streamCount()).toBe(0)
      // an accepted stream too
      yield* raw.send(frame(2, Frame.NEW_STREAM))
      yield* Effect.scoped(session.accept)
      expect(yield* raw.next).toEqual({ id: 2, flag: Frame.RESET_RECEIVER, data: new Uint8Array(0) })
    }))

  it.effect("the remote's EOF ends the session cleanly; a stream the remote had closed keeps its data readable", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(
        frame(1, Frame.NEW_STREAM),
        frame(1, Frame.MESSAGE_INITIATOR, "kept"),
        frame(1, Frame.CLOSE_INITIATOR),
        frame(3, Frame.NEW_STREAM)
      )
      const s1 = yield* session.accept
      const s3 = yield* session.accept
      yield* raw.duplex.closeWrite
      yield* session.closed
      expect(dec(yield* readAllBytes(s1))).toBe("kept")
      expect((yield* Effect.flip(s3.read)).reason).toBe("Reset")
      expect((yield* Effect.flip(s1.write([enc("x")]))).reason).toBe("Reset")
      // we reset what was open and half-closed our side
      const frames = yield* raw.all
      expect(frames.map((f) => [f.id, f.flag]).sort()).toEqual([[1, Frame.RESET_RECEIVER], [3, Frame.RESET_RECEIVER]])
    }))
})

describe("mplex: malformed input from the network ends the session with ProtocolError", () => {
  const expectProtocolError = (bytes: ReadonlyArray<Uint8Array>, thenEof: boolean, contains: string) =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(1, Frame.NEW_STREAM))
      const s = yield* session.accept
      yield* raw.send(...bytes)
      if (thenEof) yield* raw.duplex.closeWrite
      const err = yield* Effect.flip(session.closed)
      expect(err.reason).toBe("ProtocolError")
      expect(err.message).toContain(contains)
      // the open stream was reset, and the peer saw the Reset then EOF
      expect((yield* Effect.flip(s.read)).reason).toBe("Reset")
      const frames = yield* raw.all
      expect(frames.map((f) => [f.id, f.flag])).toEqual([[1, Frame.RESET_RECEIVER]])
    })

  it.effect("§Writing to a stream: a message over 1 MiB (header only)", () =>
    expectProtocolError([Frame.encodeHeader(1, Frame.MESSAGE_INITIATOR, MiB + 1)], false, "exceeds the maximum"))

  it.effect("§Writing to a stream: a NewStream name over 1 MiB", () =>
    expectProtocolError([Frame.encodeHeader(3, Frame.NEW_STREAM, 2 * MiB)], false, "exceeds the maximum"))

  it.effect("§Message format: a header varint truncated by EOF", () =>
    expectProtocolError([Uint8Array.of(0x8a)], true, "ended inside a frame"))

  it.effect("§Message format: a length varint truncated by EOF", () =>
    expectProtocolError([Uint8Array.of(0x0a, 0x80)], true, "ended inside a frame"))

  it.effect("§Message format: data truncated by EOF", () =>
    expectProtocolError(
      [Frame.encodeHeader(1, Frame.MESSAGE_INITIATOR, 10), enc("short")],
      true,
      "ended inside a frame"
    ))

  it.effect("§Message format: garbage (a varint longer than 9 bytes)", () =>
    expectProtocolError([new Uint8Array(32).fill(0xff)], false, "varint"))

  it.effect("§Message format: a non-minimal varint", () =>
    expectProtocolError([Uint8Array.of(0x8a, 0x00, 0x00)], false, "varint"))

  it.effect("§Flag Values: flag 7", () => expectProtocolError([Uint8Array.of(0x0f, 0x00)], false, "flag 7"))

  it.effect("§Opening a new stream: NewStream reusing an open id", () =>
    expectProtocolError([frame(1, Frame.NEW_STREAM)], false, "reuses the open stream id 1"))

  it.effect("a NewStream reusing the id of a closed stream opens a new stream (reuse is undefined behaviour)", () =>
    Effect.gen(function*() {
      const { session, raw } = yield* rawSession("inbound")
      yield* raw.send(frame(1, Frame.NEW_STREAM), frame(1, Frame.RESET_INITIATOR), frame(1, Frame.NEW_STREAM, "again"))
      yield* raw.send(frame(1, Frame.MESSAGE_INITIATOR, "second life"))
      // the first was reset before anyone accepted it: only the second is handed out
      const s = yield* session.accept
      expect(dec(Duplex.concat(yield* s.read))).toBe("second life")
      expect(session.streamCount()).toBe(1)
    }))
})
