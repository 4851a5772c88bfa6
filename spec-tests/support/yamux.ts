/**
 * Test helpers for yamux: a raw peer that reads and writes frames on the far
 * end of a `Duplex.pair`, and a relay that sits between two sessions,
 * rechunks the byte stream arbitrarily and records every frame it carries.
 */
import { Effect, Result } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import { takeBytes } from "./bytes.ts"

export interface RawFrame {
  readonly header: Frame.Header
  readonly payload: Uint8Array
}

/** Bytes of one frame (header, then payload for Data). */
export const frame = (
  type: number,
  flags: number,
  streamId: number,
  length: number,
  payload?: Uint8Array
): Uint8Array => {
  const header = Frame.encode(type, flags, streamId, length)
  if (payload === undefined) return header
  const out = new Uint8Array(header.byteLength + payload.byteLength)
  out.set(header, 0)
  out.set(payload, header.byteLength)
  return out
}

/** A raw yamux peer on one end of a pair: reads whole frames, writes bytes. */
export const rawPeer = (duplex: Duplex.Duplex) => {
  const pending: Array<Uint8Array> = []
  let available = 0
  let ended = false
  const fill = Effect.gen(function*() {
    const batch = yield* duplex.read
    if (batch.length === 0) ended = true
    for (const c of batch) {
      pending.push(c)
      available += c.byteLength
    }
  })
  const take = (n: number): Effect.Effect<Uint8Array, unknown> =>
    Effect.gen(function*() {
      while (available < n) {
        if (ended) return yield* Effect.fail(new Error("raw peer: EOF inside a frame"))
        yield* fill
      }
      available -= n
      return takeBytes(pending, n)
    })
  /** The next frame, or undefined at a clean EOF. */
  const next: Effect.Effect<RawFrame | undefined, unknown> = Effect.gen(function*() {
    while (available === 0) {
      if (ended) return undefined
      yield* fill
    }
    const header = Result.getOrThrow(Frame.decode(yield* take(Frame.HEADER_LENGTH)))
    const payload = header.type === Frame.TYPE_DATA ? yield* take(header.length) : new Uint8Array(0)
    return { header, payload }
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
 * reports each frame header (with the payload length for Data frames).
 */
export const frameRecorder = () => {
  const frames: Array<Frame.Header> = []
  let header = new Uint8Array(Frame.HEADER_LENGTH)
  let fill = 0
  let skip = 0
  const push = (chunk: Uint8Array): void => {
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
        const h = Result.getOrThrow(Frame.decode(header))
        frames.push(h)
        if (h.type === Frame.TYPE_DATA) skip = h.length
        header = new Uint8Array(Frame.HEADER_LENGTH)
        fill = 0
      }
    }
  }
  return { frames, push, midFrame: () => fill > 0 || skip > 0 }
}

/**
 * Relay bytes from `from` to `to`, re-cut into pieces of the sizes `cut`
 * returns (called per piece), recording frames. Half-closes `to` at EOF.
 */
export const relay = (
  from: Duplex.Duplex,
  to: Duplex.Duplex,
  cut: () => number,
  record: (chunk: Uint8Array) => void
): Effect.Effect<void, Duplex.DuplexError> =>
  Effect.gen(function*() {
    while (true) {
      const batch = yield* from.read
      if (batch.length === 0) {
        yield* to.closeWrite
        return
      }
      const bytes = Duplex.concat(batch)
      record(bytes)
      const out: Array<Uint8Array> = []
      let at = 0
      while (at < bytes.byteLength) {
        const n = Math.max(1, Math.min(cut(), bytes.byteLength - at))
        out.push(bytes.slice(at, at + n))
        at += n
      }
      yield* to.write(out)
    }
  })
