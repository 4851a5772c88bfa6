/**
 * mplex frame codec (libp2p mplex spec, https://github.com/libp2p/specs/blob/master/mplex/README.md,
 * §Message format and §Flag Values):
 *
 * ```
 * | header  | length  | data           |
 * | uvarint | uvarint | 'length' bytes |
 * ```
 *
 * The header is `(id << 3) | flag` — the lower three bits are the flag, the
 * rest the stream id. Flags: NewStream 0, MessageReceiver 1,
 * MessageInitiator 2, CloseReceiver 3, CloseInitiator 4, ResetReceiver 5,
 * ResetInitiator 6 (7 is not defined and rejected). Varints follow the
 * multiformats unsigned-varint rules of `core/Varint.ts` (at most 9 bytes,
 * minimal encoding), so a header is at most 18 bytes.
 *
 * §Writing to a stream: the data size is "limited to a maximum size agreed
 * upon out of band (for reference, the go-multiplex implementation sets this
 * to 1MB)": {@link MAX_MESSAGE_SIZE} is 1 MiB, as in go-mplex and js-libp2p.
 *
 * Pure: decoding returns a `Result`, and an incomplete header is reported as
 * `undefined` (not an error) so the session's reader can wait for more bytes.
 *
 * @internal
 */
import { Result, Schema } from "effect"
import * as Varint from "../../core/Varint.ts"

/** §Flag Values */
export const NEW_STREAM = 0
export const MESSAGE_RECEIVER = 1
export const MESSAGE_INITIATOR = 2
export const CLOSE_RECEIVER = 3
export const CLOSE_INITIATOR = 4
export const RESET_RECEIVER = 5
export const RESET_INITIATOR = 6

export const FLAG_NAMES = [
  "NewStream",
  "MessageReceiver",
  "MessageInitiator",
  "CloseReceiver",
  "CloseInitiator",
  "ResetReceiver",
  "ResetInitiator"
] as const

/** §Writing to a stream: the largest data segment (go-mplex's and js-libp2p's 1 MiB). */
export const MAX_MESSAGE_SIZE = 1024 * 1024

/** Two varints of at most 9 bytes each. */
export const MAX_HEADER_LENGTH = 2 * Varint.MAX_BYTES

/** The largest stream id whose header `id * 8 + flag` is a safe integer. */
export const MAX_STREAM_ID = Math.floor(Number.MAX_SAFE_INTEGER / 8)

export interface Header {
  readonly id: number
  readonly flag: number
  readonly length: number
}

/** A decoded header and how many bytes it took. */
export interface DecodedHeader extends Header {
  readonly bytes: number
}

export interface Frame extends Header {
  readonly data: Uint8Array
}

export const FrameErrorReason = Schema.Literals(["Truncated", "BadVarint", "BadFlag", "TooLarge"])
export type FrameErrorReason = typeof FrameErrorReason.Type

/**
 * - `Truncated`: the input ended inside a frame (only from {@link decodeAll}).
 * - `BadVarint`: a header varint is longer than 9 bytes, not minimal, or above 2^53 - 1.
 * - `BadFlag`: flag 7, which the spec does not define.
 * - `TooLarge`: a length above the maximum message size.
 */
export class MplexFrameError extends Schema.TaggedError<MplexFrameError>()("MplexFrameError", {
  reason: FrameErrorReason,
  message: Schema.String
}) {}

/** Bytes the header of a frame takes. */
export const headerLength = (id: number, flag: number, length: number): number =>
  Varint.encodingLength(id * 8 + flag) + Varint.encodingLength(length)

/** Write a header into `buf` at `offset`; returns the bytes written (at most 18). */
export const encodeHeaderInto = (buf: Uint8Array, offset: number, id: number, flag: number, length: number): number => {
  const n = Varint.encodeInto(id * 8 + flag, buf, offset)
  return n + Varint.encodeInto(length, buf, offset + n)
}

/** Encode a header. */
export const encodeHeader = (id: number, flag: number, length: number): Uint8Array => {
  const out = new Uint8Array(headerLength(id, flag, length))
  encodeHeaderInto(out, 0, id, flag, length)
  return out
}

/** Encode a whole frame (header and data) into one buffer. */
export const encode = (id: number, flag: number, data: Uint8Array = new Uint8Array(0)): Uint8Array => {
  const h = headerLength(id, flag, data.byteLength)
  const out = new Uint8Array(h + data.byteLength)
  encodeHeaderInto(out, 0, id, flag, data.byteLength)
  out.set(data, h)
  return out
}

const varintError = (what: string, e: Varint.VarintError) =>
  Result.fail(new MplexFrameError({ reason: "BadVarint", message: `mplex: bad ${what} varint: ${e.message}` }))

/**
 * Decode the header at `offset` of `buf[0..end)`: `undefined` when more bytes
 * are needed, a `MplexFrameError` for a bad varint, flag 7, or a length above
 * `maxMessageSize`.
 */
export const decodeHeader = (
  buf: Uint8Array,
  offset = 0,
  maxMessageSize = MAX_MESSAGE_SIZE,
  end = buf.byteLength
): Result.Result<DecodedHeader | undefined, MplexFrameError> => {
  const view = end === buf.byteLength ? buf : buf.subarray(0, end)
  const h = Varint.decode(view, offset)
  if (Result.isFailure(h)) {
    return h.failure.reason === "Truncated" ? Result.succeed(undefined) : varintError("header", h.failure)
  }
  const flag = h.success.value % 8
  if (flag === 7) {
    return Result.fail(new MplexFrameError({ reason: "BadFlag", message: "mplex: undefined flag 7" }))
  }
  const l = Varint.decode(view, offset + h.success.bytes)
  if (Result.isFailure(l)) {
    return l.failure.reason === "Truncated" ? Result.succeed(undefined) : varintError("length", l.failure)
  }
  if (l.success.value > maxMessageSize) {
    return Result.fail(
      new MplexFrameError({
        reason: "TooLarge",
        message: `mplex: message of ${l.success.value} bytes exceeds the maximum of ${maxMessageSize}`
      })
    )
  }
  return Result.succeed({
    id: Math.floor(h.success.value / 8),
    flag,
    length: l.success.value,
    bytes: h.success.bytes + l.success.bytes
  })
}

/**
 * Decode every frame in `buf` (the data segments are subarrays of `buf`).
 * Fails with `Truncated` when `buf` ends inside a frame.
 */
export const decodeAll = (
  buf: Uint8Array,
  maxMessageSize = MAX_MESSAGE_SIZE
): Result.Result<Array<Frame>, MplexFrameError> => {
  const out: Array<Frame> = []
  let off = 0
  while (off < buf.byteLength) {
    const r = decodeHeader(buf, off, maxMessageSize)
    if (Result.isFailure(r)) return Result.fail(r.failure)
    const h = r.success
    if (h === undefined || buf.byteLength - off - h.bytes < h.length) {
      return Result.fail(new MplexFrameError({ reason: "Truncated", message: "mplex: input ended inside a frame" }))
    }
    const start = off + h.bytes
    out.push({ id: h.id, flag: h.flag, length: h.length, data: buf.subarray(start, start + h.length) })
    off = start + h.length
  }
  return Result.succeed(out)
}
