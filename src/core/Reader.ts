/**
 * A buffered reader over a {@link Duplex}: read exactly N bytes, a varint, or
 * whatever is available, keeping what was read past the request for the next
 * call. Every framed protocol (multistream-select, Noise, Yamux, mplex,
 * length-prefixed protobufs) reads through one of these.
 *
 * Reads return subarrays of the received chunks when a request falls inside
 * one chunk (no copy); they copy only when a request spans chunks.
 *
 * When a layer hands the byte stream on to the next one (e.g. multistream-select
 * → Noise), {@link Reader.rest} returns the bytes read but not consumed, to be
 * given to `Duplex.prepend`.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import * as Duplex from "./Duplex.ts"
import * as Varint from "./Varint.ts"

/**
 * - `UnexpectedEOF`: the stream ended inside a message.
 * - `TooLarge`: a length prefix above the caller's limit.
 * - `InvalidVarint`: a malformed length prefix.
 */
export const ReaderErrorReason = Schema.Literals(["UnexpectedEOF", "TooLarge", "InvalidVarint"])
export type ReaderErrorReason = typeof ReaderErrorReason.Type

export class ReaderError extends Schema.TaggedError<ReaderError>()("ReaderError", {
  reason: ReaderErrorReason,
  message: Schema.String
}) {}

export interface Reader {
  /** Exactly `n` bytes; fails with `UnexpectedEOF` if the stream ends first. */
  readonly readExactly: (n: number) => Effect.Effect<Uint8Array, ReaderError | Duplex.DuplexError>
  /**
   * The buffered bytes if any, else the next batch from the stream; `[]` at EOF.
   * Use it to stream payload bytes without copying.
   */
  readonly readSome: Effect.Effect<Duplex.Chunks, Duplex.DuplexError>
  /** Up to `max` bytes (at least one unless at EOF, then `undefined`). */
  readonly readUpTo: (max: number) => Effect.Effect<Uint8Array | undefined, Duplex.DuplexError>
  /** An unsigned varint (spec rules: minimal, ≤ 9 bytes) as a number. */
  readonly readVarint: Effect.Effect<number, ReaderError | Duplex.DuplexError>
  /**
   * A varint length-prefixed message whose length is at most `maxLength`.
   * Returns `undefined` on a clean EOF before the first byte of the prefix.
   */
  readonly readLengthPrefixed: (
    maxLength: number
  ) => Effect.Effect<Uint8Array | undefined, ReaderError | Duplex.DuplexError>
  /** Bytes buffered but not yet consumed (to hand to the next layer); empties the buffer. */
  readonly rest: () => Duplex.Chunks
  /** Bytes currently buffered. */
  readonly buffered: () => number
}

const eof = (what: string) => new ReaderError({ reason: "UnexpectedEOF", message: `stream ended inside ${what}` })

export const make = (duplex: Duplex.Duplex): Reader => {
  // Buffered chunks; `head` is the offset into chunks[0].
  let chunks: Array<Uint8Array> = []
  let head = 0
  let total = 0
  let ended = false
  // A chunk of an OwnedReads duplex that a request copied whole (no view of it handed
  // out before, none kept) is freed at once (Duplex.release) instead of at a full GC.
  const releases = Duplex.ownsReads(duplex)

  const fill: Effect.Effect<boolean, Duplex.DuplexError> = Effect.suspend(() => {
    if (ended) return Effect.succeed(false)
    return Effect.map(duplex.read, (batch) => {
      if (batch.length === 0) {
        ended = true
        return false
      }
      for (let i = 0; i < batch.length; i++) {
        const c = batch[i]!
        if (c.byteLength > 0) {
          chunks.push(c)
          total += c.byteLength
        }
      }
      return true
    })
  })

  // Take n bytes from the buffer (caller checked total >= n).
  const take = (n: number): Uint8Array => {
    if (n === 0) return new Uint8Array(0)
    const first = chunks[0]!
    const avail = first.byteLength - head
    if (avail >= n) {
      const out = first.subarray(head, head + n)
      head += n
      total -= n
      if (head === first.byteLength) {
        chunks.shift()
        head = 0
      }
      return out
    }
    const out = new Uint8Array(n)
    let at = 0
    while (at < n) {
      const c = chunks[0]!
      const from = head
      const k = Math.min(c.byteLength - head, n - at)
      out.set(c.subarray(head, head + k), at)
      at += k
      head += k
      if (head === c.byteLength) {
        chunks.shift()
        head = 0
        // copied from its first byte to its last by this request: no view of it is out
        if (releases && from === 0) Duplex.release(c)
      }
    }
    total -= n
    return out
  }

  const readExactly = (n: number): Effect.Effect<Uint8Array, ReaderError | Duplex.DuplexError> => {
    if (total >= n) return Effect.succeed(take(n))
    const loop: Effect.Effect<Uint8Array, ReaderError | Duplex.DuplexError> = Effect.flatMap(fill, (more) => {
      if (total >= n) return Effect.succeed(take(n))
      if (!more) return Effect.fail(eof(`a ${n}-byte read`))
      return loop
    })
    return loop
  }

  const drain = (): Duplex.Chunks => {
    if (total === 0) return Duplex.EOF
    const out = chunks
    if (head > 0) out[0] = out[0]!.subarray(head)
    chunks = []
    head = 0
    total = 0
    return out
  }

  const readSome: Effect.Effect<Duplex.Chunks, Duplex.DuplexError> = Effect.suspend(() => {
    if (total > 0) return Effect.succeed(drain())
    if (ended) return Effect.succeed(Duplex.EOF)
    return duplex.read
  })

  const readUpTo = (max: number): Effect.Effect<Uint8Array | undefined, Duplex.DuplexError> =>
    Effect.suspend(() => {
      if (total > 0) return Effect.succeed(take(Math.min(max, chunks[0]!.byteLength - head)))
      return Effect.map(fill, (more) => more ? take(Math.min(max, chunks[0]!.byteLength - head)) : undefined)
    })

  // Try to decode a varint from the buffer without consuming it.
  const peekVarint = (): Result.Result<Varint.Decoded<number>, Varint.VarintError> | undefined => {
    const n = Math.min(total, Varint.MAX_BYTES)
    const first = chunks[0]
    if (first === undefined) return undefined
    const bytes = first.byteLength - head >= n ? first.subarray(head, head + n) : (() => {
      const tmp = new Uint8Array(n)
      let at = 0
      let h = head
      for (let i = 0; at < n; i++) {
        const c = chunks[i]!
        const k = Math.min(c.byteLength - h, n - at)
        tmp.set(c.subarray(h, h + k), at)
        at += k
        h = 0
      }
      return tmp
    })()
    const r = Varint.decode(bytes)
    if (Result.isFailure(r) && r.failure.reason === "Truncated" && total < Varint.MAX_BYTES && !ended) return undefined
    return r
  }

  const readVarintOrEOF: Effect.Effect<number | undefined, ReaderError | Duplex.DuplexError> = Effect.suspend(() => {
    const r = peekVarint()
    if (r !== undefined) {
      if (Result.isFailure(r)) {
        return Effect.fail(
          r.failure.reason === "Truncated"
            ? eof("a varint")
            : new ReaderError({ reason: "InvalidVarint", message: r.failure.message })
        )
      }
      take(r.success.bytes)
      return Effect.succeed(r.success.value)
    }
    return Effect.flatMap(fill, (more) => {
      if (!more) return total === 0 ? Effect.succeed(undefined) : Effect.fail(eof("a varint"))
      return readVarintOrEOF
    })
  })

  const readVarint = Effect.flatMap(
    readVarintOrEOF,
    (n) => n === undefined ? Effect.fail(eof("a varint")) : Effect.succeed(n)
  )

  const readLengthPrefixed = (maxLength: number) =>
    Effect.flatMap(readVarintOrEOF, (len): Effect.Effect<Uint8Array | undefined, ReaderError | Duplex.DuplexError> => {
      if (len === undefined) return Effect.succeed(undefined)
      if (len > maxLength) {
        return Effect.fail(
          new ReaderError({ reason: "TooLarge", message: `length prefix ${len} exceeds the limit of ${maxLength}` })
        )
      }
      return readExactly(len)
    })

  return {
    readExactly,
    readSome,
    readUpTo,
    readVarint,
    readLengthPrefixed,
    rest: drain,
    buffered: () => total
  }
}
