/**
 * Unsigned varint, per the multiformats unsigned-varint spec
 * (https://github.com/multiformats/unsigned-varint): little-endian groups of 7
 * bits, the high bit of each byte set when another byte follows.
 *
 * The spec's rules are enforced on decode:
 * - at most 9 bytes (63 bits of payload);
 * - minimal encoding only (no trailing `0x80 … 0x00` padding: `8100` is invalid);
 * - truncated input is an error, never a partial value.
 *
 * Decoders return a `Result` so hot paths (framing, multiaddr, protobuf
 * lengths) pay no Effect overhead; a `Result` is yieldable in `Effect.gen`.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"

/** The most bytes a varint may take (spec: "at most 9 bytes", 63 bits). */
export const MAX_BYTES = 9

/**
 * Why a varint could not be decoded.
 * - `Truncated`: the input ended before the last byte (high bit still set).
 * - `NotMinimal`: a trailing zero group (the encoding is longer than needed).
 * - `Overflow`: more than 9 bytes, or (for the `number` API) a value above 2^53 - 1.
 */
export const VarintErrorReason = Schema.Literals(["Truncated", "NotMinimal", "Overflow"])
export type VarintErrorReason = typeof VarintErrorReason.Type

export class VarintError extends Schema.TaggedError<VarintError>()("VarintError", {
  reason: VarintErrorReason,
  message: Schema.String
}) {}

/** A decoded value and the number of bytes it took. */
export interface Decoded<A> {
  readonly value: A
  readonly bytes: number
}

/** Number of bytes `value` takes when encoded. `value` must be a non-negative safe integer. */
export const encodingLength = (value: number): number => {
  let n = 1
  while (value >= 0x80) {
    value = Math.floor(value / 128)
    n++
  }
  return n
}

/** Write `value` into `buf` at `offset`; returns the number of bytes written. */
export const encodeInto = (value: number, buf: Uint8Array, offset = 0): number => {
  let i = offset
  while (value >= 0x80) {
    buf[i++] = (value & 0x7f) | 0x80
    value = Math.floor(value / 128)
  }
  buf[i++] = value
  return i - offset
}

/** Encode a non-negative safe integer. */
export const encode = (value: number): Uint8Array => {
  const out = new Uint8Array(encodingLength(value))
  encodeInto(value, out, 0)
  return out
}

/** Encode a non-negative bigint below 2^63. */
export const encodeBigInt = (value: bigint): Uint8Array => {
  const bytes: Array<number> = []
  while (value >= 0x80n) {
    bytes.push(Number(value & 0x7fn) | 0x80)
    value >>= 7n
  }
  bytes.push(Number(value))
  return Uint8Array.from(bytes)
}

const fail = (reason: VarintErrorReason, message: string) => Result.fail(new VarintError({ reason, message }))

/**
 * Decode a varint at `offset` as a JS number. Values above 2^53 - 1 fail with
 * `Overflow` (use {@link decodeBigInt} for the full 63-bit range).
 */
export const decode = (buf: Uint8Array, offset = 0): Result.Result<Decoded<number>, VarintError> => {
  let value = 0
  let scale = 1
  for (let i = 0; i < MAX_BYTES; i++) {
    const at = offset + i
    if (at >= buf.length) return fail("Truncated", "varint: input ended inside a varint")
    const b = buf[at]!
    value += (b & 0x7f) * scale
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) return fail("NotMinimal", "varint: not minimally encoded")
      if (value > Number.MAX_SAFE_INTEGER) return fail("Overflow", "varint: value above 2^53 - 1")
      return Result.succeed({ value, bytes: i + 1 })
    }
    scale *= 128
  }
  return fail("Overflow", `varint: longer than ${MAX_BYTES} bytes`)
}

/** Decode a varint at `offset` as a bigint (full 63-bit range of the spec). */
export const decodeBigInt = (buf: Uint8Array, offset = 0): Result.Result<Decoded<bigint>, VarintError> => {
  let value = 0n
  for (let i = 0; i < MAX_BYTES; i++) {
    const at = offset + i
    if (at >= buf.length) return fail("Truncated", "varint: input ended inside a varint")
    const b = buf[at]!
    value |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) return fail("NotMinimal", "varint: not minimally encoded")
      return Result.succeed({ value, bytes: i + 1 })
    }
  }
  return fail("Overflow", `varint: longer than ${MAX_BYTES} bytes`)
}
