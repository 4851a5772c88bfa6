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
