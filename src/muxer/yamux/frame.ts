/**
 * Yamux frame header codec (libp2p yamux spec §Framing, = hashicorp/yamux
 * spec.md §Framing): a fixed 12-byte big-endian header
 *
 * ```
 * | version u8 | type u8 | flags u16 | stream id u32 | length u32 |
 * ```
 *
 * Version is always 0 (§Version Field). Types: Data 0, WindowUpdate 1, Ping 2,
 * GoAway 3 (§Type Field). Flags: SYN 1, ACK 2, FIN 4, RST 8 (§Flag Field).
 * The length is the payload size for Data, a window delta for WindowUpdate,
 * an opaque value for Ping and an error code for GoAway (§Length Field).
 *
 * Pure: decoding returns a `Result` so the session's read loop pays no Effect
 * overhead per frame.
 *
 * @internal
 */
import { Result, Schema } from "effect"

export const VERSION = 0
export const HEADER_LENGTH = 12

/** §Type Field */
export const TYPE_DATA = 0
export const TYPE_WINDOW_UPDATE = 1
export const TYPE_PING = 2
export const TYPE_GO_AWAY = 3

/** §Flag Field */
export const FLAG_SYN = 0x1
export const FLAG_ACK = 0x2
export const FLAG_FIN = 0x4
export const FLAG_RST = 0x8

/** §Session termination: GoAway error codes. */
export const GO_AWAY_NORMAL = 0
export const GO_AWAY_PROTOCOL_ERROR = 1
export const GO_AWAY_INTERNAL_ERROR = 2

/** §Flow Control: every stream starts with a 256 KiB window in both directions. */
export const INITIAL_WINDOW = 256 * 1024

export const MAX_UINT32 = 0xffff_ffff

export interface Header {
  readonly type: number
  readonly flags: number
  readonly streamId: number
  readonly length: number
}

export const FrameErrorReason = Schema.Literals(["BadVersion", "BadType", "Truncated"])
export type FrameErrorReason = typeof FrameErrorReason.Type

export class YamuxFrameError extends Schema.TaggedError<YamuxFrameError>()("YamuxFrameError", {
  reason: FrameErrorReason,
  message: Schema.String
}) {}

/** Write a header into `buf` at `offset` (12 bytes). */
export const encodeInto = (
  buf: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  streamId: number,
  length: number
): void => {
  buf[offset] = VERSION
  buf[offset + 1] = type
  buf[offset + 2] = (flags >>> 8) & 0xff
  buf[offset + 3] = flags & 0xff
  buf[offset + 4] = (streamId >>> 24) & 0xff
  buf[offset + 5] = (streamId >>> 16) & 0xff
  buf[offset + 6] = (streamId >>> 8) & 0xff
  buf[offset + 7] = streamId & 0xff
  buf[offset + 8] = (length >>> 24) & 0xff
  buf[offset + 9] = (length >>> 16) & 0xff
  buf[offset + 10] = (length >>> 8) & 0xff
  buf[offset + 11] = length & 0xff
}

/** Encode a 12-byte header. */
export const encode = (type: number, flags: number, streamId: number, length: number): Uint8Array => {
  const buf = new Uint8Array(HEADER_LENGTH)
  encodeInto(buf, 0, type, flags, streamId, length)
  return buf
}

export const encodeHeader = (header: Header): Uint8Array =>
  encode(header.type, header.flags, header.streamId, header.length)

const u32 = (buf: Uint8Array, at: number): number =>
  buf[at]! * 0x1000000 + ((buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!)

/**
 * Decode the header at `offset`. Fails on fewer than 12 bytes, a version other
 * than 0, or a type outside 0..3.
 */
export const decode = (buf: Uint8Array, offset = 0): Result.Result<Header, YamuxFrameError> => {
  if (buf.byteLength - offset < HEADER_LENGTH) {
    return Result.fail(new YamuxFrameError({ reason: "Truncated", message: "yamux: fewer than 12 header bytes" }))
  }
  const version = buf[offset]!
  if (version !== VERSION) {
    return Result.fail(new YamuxFrameError({ reason: "BadVersion", message: `yamux: unsupported version ${version}` }))
  }
  const type = buf[offset + 1]!
  if (type > TYPE_GO_AWAY) {
    return Result.fail(new YamuxFrameError({ reason: "BadType", message: `yamux: unknown frame type ${type}` }))
  }
  return Result.succeed({
    type,
    flags: (buf[offset + 2]! << 8) | buf[offset + 3]!,
    streamId: u32(buf, offset + 4),
    length: u32(buf, offset + 8)
  })
}

const FLAG_NAMES: ReadonlyArray<readonly [number, string]> = [
  [FLAG_SYN, "SYN"],
  [FLAG_ACK, "ACK"],
  [FLAG_FIN, "FIN"],
  [FLAG_RST, "RST"]
]

/** Names of the flags set in `flags` (for logs and tests). */
export const flagNames = (flags: number): Array<string> =>
  FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, name]) => name)

export const TYPE_NAMES = ["Data", "WindowUpdate", "Ping", "GoAway"] as const
