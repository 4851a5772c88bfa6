/**
 * Unsigned-varint length-prefixed messages over a byte stream, the framing
 * most libp2p protocols use (multistream-select, identify, kad-dht, gossipsub,
 * circuit relay …): `uvarint(len(msg)) ‖ msg`.
 *
 * Every reader takes a maximum length: the spec of each protocol sets one (for
 * example identify 8 KiB, kad-dht 4 MiB) and an oversized prefix fails with a
 * typed `ReaderError { reason: "TooLarge" }` before any body byte is buffered.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import type * as Duplex from "./Duplex.ts"
import * as Reader from "./Reader.ts"
import * as Varint from "./Varint.ts"

/** The frame of one message: the varint prefix and the message, as two chunks (no copy). */
export const frame = (msg: Uint8Array): readonly [Uint8Array, Uint8Array] => [Varint.encode(msg.byteLength), msg]

/** One buffer holding `uvarint(len) ‖ msg`. */
export const encode = (msg: Uint8Array): Uint8Array => {
  const out = new Uint8Array(Varint.encodingLength(msg.byteLength) + msg.byteLength)
  const n = Varint.encodeInto(msg.byteLength, out, 0)
  out.set(msg, n)
  return out
}

/** Frames for many messages in one batch (one write). */
export const frameAll = (msgs: ReadonlyArray<Uint8Array>): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (const m of msgs) out.push(Varint.encode(m.byteLength), m)
  return out
}

/** Write messages to a Duplex in one batch. */
export const write = (duplex: Duplex.Duplex, ...msgs: ReadonlyArray<Uint8Array>) => duplex.write(frameAll(msgs))

export const LengthPrefixedErrorReason = Schema.Literals(["Varint", "TooLarge", "Truncated"])

export class LengthPrefixedError extends Schema.TaggedError<LengthPrefixedError>()("LengthPrefixedError", {
  reason: LengthPrefixedErrorReason,
  message: Schema.String
}) {}

/**
 * Decode one message from the start of a buffer (a whole frame already in memory).
 * Returns the message and the bytes consumed.
 */
export const decode = (
  buf: Uint8Array,
  maxLength: number
): Result.Result<{ readonly message: Uint8Array; readonly bytes: number }, LengthPrefixedError> => {
  const len = Varint.decode(buf)
  if (Result.isFailure(len)) {
    return Result.fail(new LengthPrefixedError({ reason: "Varint", message: len.failure.message }))
  }
  const { bytes, value } = len.success
  if (value > maxLength) {
    return Result.fail(new LengthPrefixedError({ reason: "TooLarge", message: `length ${value} > limit ${maxLength}` }))
  }
  if (bytes + value > buf.byteLength) {
    return Result.fail(new LengthPrefixedError({ reason: "Truncated", message: "buffer ends inside the message" }))
  }
  return Result.succeed({ message: buf.subarray(bytes, bytes + value), bytes: bytes + value })
}

/**
 * Read one message; `undefined` on a clean EOF before the prefix.
 */
export const read = (
  reader: Reader.Reader,
  maxLength: number
): Effect.Effect<Uint8Array | undefined, Reader.ReaderError | Duplex.DuplexError> =>
  reader.readLengthPrefixed(maxLength)

/** Read one message; EOF before it is an `UnexpectedEOF` error. */
export const readOne = (
  reader: Reader.Reader,
  maxLength: number
): Effect.Effect<Uint8Array, Reader.ReaderError | Duplex.DuplexError> =>
  Effect.flatMap(reader.readLengthPrefixed(maxLength), (m) =>
    m === undefined
      ? Effect.fail(new Reader.ReaderError({ reason: "UnexpectedEOF", message: "stream ended before a message" }))
      : Effect.succeed(m))

/**
 * Length-prefixed messages on one stream, the read and the write side of a
 * protocol in one value: what a handler registered with the Registrar, or the
 * opener of a stream, needs to speak a request/response protocol.
 *
 * ```ts
 * const msgs = LengthPrefixed.messages(stream, { maxLength: 4096 })
 * yield* msgs.write(new TextEncoder().encode("hello"))
 * yield* msgs.closeWrite
 * const reply = yield* msgs.readOne
 * ```
 */
export interface Messages {
  /** The next message; `undefined` when the remote closed its write side before one. */
  readonly read: Effect.Effect<Uint8Array | undefined, Reader.ReaderError | Duplex.DuplexError>
  /** The next message; EOF before it fails with `ReaderError { reason: "UnexpectedEOF" }`. */
  readonly readOne: Effect.Effect<Uint8Array, Reader.ReaderError | Duplex.DuplexError>
  /** Write messages in one batch. */
  readonly write: (...msgs: ReadonlyArray<Uint8Array>) => Effect.Effect<void, Duplex.DuplexError>
  /** Half-close: the remote reads EOF after the messages written so far. */
  readonly closeWrite: Effect.Effect<void>
}

/** {@link Messages} over a stream; a message longer than `maxLength` fails with `ReaderError { reason: "TooLarge" }`. */
export const messages = (duplex: Duplex.Duplex, options: { readonly maxLength: number }): Messages => {
  const reader = Reader.make(duplex)
  return {
    read: Effect.suspend(() => read(reader, options.maxLength)),
    readOne: Effect.suspend(() => readOne(reader, options.maxLength)),
    write: (...msgs) => write(duplex, ...msgs),
    closeWrite: duplex.closeWrite
  }
}
