/**
 * Test helpers for mplex (libp2p mplex spec §Message format): a raw peer
 * that reads whole frames from the far end of a `Duplex.pair` and writes
 * bytes, and an incremental frame recorder for relays.
 */
import { Effect, Result } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Frame from "../../src/muxer/mplex/frame.ts"

export interface RawFrame {
  readonly id: number
  readonly flag: number
  readonly data: Uint8Array
}

const enc = new TextEncoder()

/** Bytes of one frame; `data` may be a string (UTF-8). */
export const frame = (id: number, flag: number, data: Uint8Array | string = new Uint8Array(0)): Uint8Array =>
  Frame.encode(id, flag, typeof data === "string" ? enc.encode(data) : data)

/** A raw mplex peer on one end of a pair: reads whole frames, writes bytes. */
export const rawPeer = (duplex: Duplex.Duplex) => {
  let buf: Uint8Array = new Uint8Array(0)
  let ended = false
  const fill = Effect.gen(function*() {
    const batch = yield* duplex.read
    if (batch.length === 0) ended = true
    else buf = Duplex.concat([buf, ...batch])
  })
  /** The next frame, or undefined at a clean EOF. */
  const next: Effect.Effect<RawFrame | undefined, unknown> = Effect.gen(function*() {
    while (true) {
      if (buf.byteLength > 0) {
        const h = Result.getOrThrow(Frame.decodeHeader(buf, 0))
        if (h !== undefined && buf.byteLength - h.bytes >= h.length) {
          const data = buf.slice(h.bytes, h.bytes + h.length)
          buf = buf.subarray(h.bytes + h.length)
          return { id: h.id, flag: h.flag, data }
        }
      }
      if (ended) {
        if (buf.byteLength === 0) return undefined
        return yield* Effect.fail(new Error("raw peer: EOF inside a frame"))
      }
      yield* fill
    }
  })
  /** Frames until one matches `pred` (the skipped ones are returned too). */
  const until = (pred: (f: RawFrame) => boolean) =>
    Effect.gen(function*() {
      const seen: Array<RawFrame> = []
      while (true) {
        const f = yield* next
        if (f === undefined) return { match: undefined, seen }
        seen.push(f)
        if (pred(f)) return { match: f, seen }
      }
    })
  /** Every frame until EOF. */
  const all = Effect.gen(function*() {
    const out: Array<RawFrame> = []
    while (true) {
      const f = yield* next
      if (f === undefined) return out
      out.push(f)
    }
  })
  const send = (...frames: ReadonlyArray<Uint8Array>) => duplex.write(frames)
  return { next, until, all, send, duplex }
}

/**
 * An incremental frame decoder for recording: feeds bytes in any chunking and
 * reports each frame (header fields and the data length).
 */
export const frameRecorder = () => {
  const frames: Array<Frame.Header> = []
  let carry: Uint8Array = new Uint8Array(0)
  let skip = 0
  const push = (chunk: Uint8Array): void => {
    let buf = chunk
    if (carry.byteLength > 0) {
      buf = Duplex.concat([carry, chunk])
      carry = new Uint8Array(0)
    }
    let off = 0
    while (off < buf.byteLength) {
      if (skip > 0) {
        const n = Math.min(skip, buf.byteLength - off)
        skip -= n
        off += n
        continue
      }
      const h = Result.getOrThrow(Frame.decodeHeader(buf, off))
      if (h === undefined) {
        carry = buf.slice(off)
        return
      }
      frames.push({ id: h.id, flag: h.flag, length: h.length })
      off += h.bytes
      skip = h.length
    }
  }
  return { frames, push, midFrame: () => carry.byteLength > 0 || skip > 0 }
}
