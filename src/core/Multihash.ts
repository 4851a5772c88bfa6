/**
 * Multihash: a self-describing digest, `<uvarint code><uvarint digest length><digest>`
 * (https://github.com/multiformats/multihash, README §Format; codes from the
 * multicodec table). Peer ids are multihashes (peer-ids spec §Peer Ids): the
 * `identity` multihash of a short public key, or the `sha2-256` multihash of a long one.
 *
 * Hashing goes through node:crypto. The digest may be truncated to a shorter
 * length, as the multihash spec allows (the `test_cases.csv` vectors do this).
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as crypto from "node:crypto"
import * as Varint from "./Varint.ts"

/** Multicodec codes of the hash functions we compute. `sha3-512` is called `sha3` in old tables. */
export const codes = {
  identity: 0x00,
  sha1: 0x11,
  "sha2-256": 0x12,
  "sha2-512": 0x13,
  "sha3-512": 0x14
} as const

export type HashName = keyof typeof codes

const nodeNames: Record<Exclude<HashName, "identity">, string> = {
  sha1: "sha1",
  "sha2-256": "sha256",
  "sha2-512": "sha512",
  "sha3-512": "sha3-512"
}

/** A decoded multihash. `bytes` is the whole encoding, `digest` a view into it. */
export interface Multihash {
  readonly code: number
  readonly digest: Uint8Array
  readonly bytes: Uint8Array
}

/**
 * Why bytes are not a multihash.
 * - `InvalidVarint`: the code or the length is not a valid (minimal, ≤ 9 bytes) uvarint.
 * - `LengthMismatch`: the digest is shorter or longer than its declared length.
 * - `InvalidLength`: a requested truncation is longer than the hash function's output.
 */
export const MultihashErrorReason = Schema.Literals(["InvalidVarint", "LengthMismatch", "InvalidLength"])
export type MultihashErrorReason = typeof MultihashErrorReason.Type

export class MultihashError extends Schema.TaggedError<MultihashError>()("MultihashError", {
  reason: MultihashErrorReason,
  message: Schema.String
}) {}

/** Build the multihash of an already computed digest. */
export const make = (code: number, digest: Uint8Array): Multihash => {
  const bytes = new Uint8Array(Varint.encodingLength(code) + Varint.encodingLength(digest.length) + digest.length)
  let at = Varint.encodeInto(code, bytes, 0)
  at += Varint.encodeInto(digest.length, bytes, at)
  bytes.set(digest, at)
  return { code, digest: bytes.subarray(at), bytes }
}

/** The identity multihash: the data itself, prefixed by code 0x00 and its length. */
export const identity = (data: Uint8Array): Multihash => make(codes.identity, data)

/**
 * Hash `data` and wrap it as a multihash. `length` truncates the digest (in
 * bytes); it must not exceed the function's output size.
 */
export const digest = (
  name: HashName,
  data: Uint8Array,
  length?: number
): Result.Result<Multihash, MultihashError> => {
  const full = name === "identity" ? data : Uint8Array.from(crypto.createHash(nodeNames[name]).update(data).digest())
  if (length === undefined) return Result.succeed(make(codes[name], full))
  if (!Number.isSafeInteger(length) || length < 0 || length > full.length) {
    return Result.fail(
      new MultihashError({ reason: "InvalidLength", message: `multihash: cannot truncate ${name} to ${length} bytes` })
    )
  }
  return Result.succeed(make(codes[name], full.subarray(0, length)))
}

/** SHA-256 multihash (untruncated); the hash of peer ids of long keys. */
export const sha256 = (data: Uint8Array): Multihash =>
  make(codes["sha2-256"], Uint8Array.from(crypto.createHash("sha256").update(data).digest()))

/** Decode bytes that must hold exactly one multihash (no trailing bytes). */
export const decode = (bytes: Uint8Array): Result.Result<Multihash, MultihashError> => {
  const code = Varint.decode(bytes, 0)
  if (Result.isFailure(code)) {
    return Result.fail(
      new MultihashError({ reason: "InvalidVarint", message: `multihash code: ${code.failure.message}` })
    )
  }
  const length = Varint.decode(bytes, code.success.bytes)
  if (Result.isFailure(length)) {
    return Result.fail(
      new MultihashError({ reason: "InvalidVarint", message: `multihash length: ${length.failure.message}` })
    )
  }
  const start = code.success.bytes + length.success.bytes
  if (bytes.length - start !== length.success.value) {
    return Result.fail(
      new MultihashError({
        reason: "LengthMismatch",
        message: `multihash: declared digest length ${length.success.value}, found ${bytes.length - start} bytes`
      })
    )
  }
  return Result.succeed({ code: code.success.value, digest: bytes.subarray(start), bytes })
}
