/**
 * Multibase: self-describing base encodings, a one-character prefix naming the
 * encoding followed by the encoded bytes (https://github.com/multiformats/multibase,
 * README §Format and the prefix table `multibase.csv`).
 *
 * A typed wrapper over the bases of the `multiformats` package. Supported: every
 * encoding of the table except `base45` (`R`) and `proquint` (`p`), which
 * `multiformats` does not implement, and the reserved `identity` (NUL) prefix.
 * Decoding is case-insensitive for the encodings the spec marks so (base16,
 * base32 and its variants, base36), and strict otherwise: characters outside
 * the alphabet, and non-zero trailing bits in the RFC 4648 encodings, are errors.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import { base10 } from "multiformats/bases/base10"
import { base16, base16upper } from "multiformats/bases/base16"
import { base2 } from "multiformats/bases/base2"
import { base256emoji } from "multiformats/bases/base256emoji"
import {
  base32,
  base32hex,
  base32hexpad,
  base32hexpadupper,
  base32hexupper,
  base32pad,
  base32padupper,
  base32upper,
  base32z
} from "multiformats/bases/base32"
import { base36, base36upper } from "multiformats/bases/base36"
import { base58btc, base58flickr } from "multiformats/bases/base58"
import { base64, base64pad, base64url, base64urlpad } from "multiformats/bases/base64"
import { base8 } from "multiformats/bases/base8"
import * as Strings from "../internal/strings.ts"

interface BaseCodec {
  readonly name: string
  readonly prefix: string
  readonly baseEncode: (bytes: Uint8Array) => string
  readonly baseDecode: (text: string) => Uint8Array
}

/** The name of a supported encoding, as in the multibase table (`base32`, `base58btc`, …). */
export type Encoding =
  | "base2"
  | "base8"
  | "base10"
  | "base16"
  | "base16upper"
  | "base32"
  | "base32upper"
  | "base32hex"
  | "base32hexupper"
  | "base32pad"
  | "base32padupper"
  | "base32hexpad"
  | "base32hexpadupper"
  | "base32z"
  | "base36"
  | "base36upper"
  | "base58btc"
  | "base58flickr"
  | "base64"
  | "base64pad"
  | "base64url"
  | "base64urlpad"
  | "base256emoji"

const codecs: Record<Encoding, BaseCodec> = {
  base2,
  base8,
  base10,
  base16,
  base16upper,
  base32,
  base32upper,
  base32hex,
  base32hexupper,
  base32pad,
  base32padupper,
  base32hexpad,
  base32hexpadupper,
  base32z,
  base36,
  base36upper,
  base58btc,
  base58flickr,
  base64,
  base64pad,
  base64url,
  base64urlpad,
  base256emoji
}

/** Every supported encoding. */
export const encodings: ReadonlyArray<Encoding> = Object.keys(codecs) as Array<Encoding>

const byPrefix: ReadonlyMap<string, Encoding> = new Map(
  encodings.map((name): [string, Encoding] => [codecs[name].prefix, name])
)

/**
 * Why a string could not be decoded.
 * - `Empty`: the empty string (no prefix).
 * - `UnknownPrefix`: the first character names no supported encoding.
 * - `InvalidEncoding`: the rest is not valid in that encoding.
 */
export const MultibaseErrorReason = Schema.Literals(["Empty", "UnknownPrefix", "InvalidEncoding"])
export type MultibaseErrorReason = typeof MultibaseErrorReason.Type

export class MultibaseError extends Schema.TaggedError<MultibaseError>()("MultibaseError", {
  reason: MultibaseErrorReason,
  message: Schema.String
}) {}

/**
 * Encode `bytes` with the prefix of `encoding`. (The encoders build their text a
 * character at a time; the result is flattened, see `internal/strings.ts`: peer
 * ids and addresses are kept for as long as a connection lives.)
 */
export const encode = (encoding: Encoding, bytes: Uint8Array): string =>
  Strings.flat(codecs[encoding].prefix + codecs[encoding].baseEncode(bytes))

/** Encode `bytes` in `encoding` without the multibase prefix (e.g. the legacy base58btc peer id form). */
export const baseEncode = (encoding: Encoding, bytes: Uint8Array): string =>
  Strings.flat(codecs[encoding].baseEncode(bytes))

/** Decode unprefixed text in a known encoding. */
export const baseDecode = (encoding: Encoding, text: string): Result.Result<Uint8Array, MultibaseError> => {
  try {
    return Result.succeed(codecs[encoding].baseDecode(text))
  } catch (e) {
    return Result.fail(
      new MultibaseError({
        reason: "InvalidEncoding",
        message: `multibase: invalid ${encoding}: ${e instanceof Error ? e.message : String(e)}`
      })
    )
  }
}

/** The encoding a multibase string claims by its prefix (the prefix may be a multi-unit code point, e.g. 🚀). */
export const encodingOf = (text: string): Result.Result<Encoding, MultibaseError> => {
  const first = text.codePointAt(0)
  if (first === undefined) {
    return Result.fail(new MultibaseError({ reason: "Empty", message: "multibase: empty string" }))
  }
  const prefix = String.fromCodePoint(first)
  const encoding = byPrefix.get(prefix)
  return encoding === undefined
    ? Result.fail(
      new MultibaseError({
        reason: "UnknownPrefix",
        message: `multibase: unknown or unsupported prefix ${JSON.stringify(prefix)}`
      })
    )
    : Result.succeed(encoding)
}

/** Decode a multibase string: the encoding named by its prefix, and the bytes. */
export const decode = (
  text: string
): Result.Result<{ readonly encoding: Encoding; readonly bytes: Uint8Array }, MultibaseError> =>
  Result.flatMap(encodingOf(text), (encoding) =>
    Result.map(
      baseDecode(encoding, text.slice(codecs[encoding].prefix.length)),
      (bytes) => ({ encoding, bytes })
    ))
