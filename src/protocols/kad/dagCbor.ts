/**
 * A small strict DAG-CBOR codec (ipld.io/specs/codecs/dag-cbor/spec) for the
 * IPNS record's `data` document: enough to encode the five-field map of the
 * IPNS spec and to decode any DAG-CBOR map whose values we then read or skip
 * (the IPNS spec §Extensible Data says unexpected fields MUST be ignored).
 *
 * Strict on decode, as DAG-CBOR is: shortest-form lengths and integers, definite
 * lengths only, map keys are text strings in canonical order (length first,
 * then bytewise) without duplicates, tags only 42 (CID), the only simple values
 * `false`/`true`/`null`, floats only as 64-bit, one item with no bytes after.
 * Nesting is bounded. Pure code; a failure is a message string for the caller
 * to wrap in its own typed error.
 *
 * @internal
 */
import { Result } from "effect"

/** A decoded item. Integers are bigints; a CID (tag 42) keeps its bytes. */
export type Item =
  | bigint
  | number
  | boolean
  | null
  | string
  | Uint8Array
  | { readonly cid: Uint8Array }
  | ReadonlyArray<Item>
  | ReadonlyMap<string, Item>

const MAX_DEPTH = 32
const utf8Decoder = new TextDecoder("utf-8", { fatal: true })
const utf8Encoder = new TextEncoder()

// ---------------------------------------------------------------------------
// encode (unsigned integers, byte strings, text strings, maps of those)

/** What `encodeMap` writes: values are unsigned integers, byte strings or text strings. */
export type EncodableValue = bigint | Uint8Array | string

const head = (major: number, n: bigint): Array<number> => {
  const m = major << 5
  if (n < 24n) return [m | Number(n)]
  if (n < 0x100n) return [m | 24, Number(n)]
  if (n < 0x10000n) return [m | 25, Number(n >> 8n), Number(n & 0xffn)]
  const width = n < 0x1_0000_0000n ? 4 : 8
  const out = [m | (width === 4 ? 26 : 27)]
  for (let i = width - 1; i >= 0; i--) out.push(Number((n >> BigInt(8 * i)) & 0xffn))
  return out
}

/** Canonical DAG-CBOR key order: shorter first, then bytewise. */
export const compareKeys = (a: Uint8Array, b: Uint8Array): number => {
  if (a.length !== b.length) return a.length - b.length
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return 0
}

/** Encode a map of text keys to unsigned integers / bytes / text, keys in canonical order. */
export const encodeMap = (entries: Readonly<Record<string, EncodableValue>>): Uint8Array => {
  const keyed = Object.entries(entries).map(([k, v]) => [utf8Encoder.encode(k), v] as const)
  keyed.sort((a, b) => compareKeys(a[0], b[0]))
  const parts: Array<ArrayLike<number>> = [head(5, BigInt(keyed.length))]
  for (const [k, v] of keyed) {
    parts.push(head(3, BigInt(k.length)), k)
    if (typeof v === "bigint") {
      // callers pass uint64 values (checked where they come from)
      parts.push(head(0, BigInt.asUintN(64, v)))
    } else {
      const bytes = typeof v === "string" ? utf8Encoder.encode(v) : v
      parts.push(head(typeof v === "string" ? 3 : 2, BigInt(bytes.length)), bytes)
    }
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

// ---------------------------------------------------------------------------
// decode

class Reader {
  at = 0
  readonly bytes: Uint8Array
  constructor(bytes: Uint8Array) {
    this.bytes = bytes
  }
  /** The next byte, or -1 at the end of the input. */
  byte(): number {
    return this.at < this.bytes.length ? this.bytes[this.at++]! : -1
  }
  /** The next `n` bytes, or undefined when fewer are left. */
  take(n: number): Uint8Array | undefined {
    if (this.bytes.length - this.at < n) return undefined
    const out = this.bytes.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
}

/** Why decoding stopped (returned, never thrown: every step checks for it). */
class DecodeFailure {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

const truncated = new DecodeFailure("truncated input")

/** The argument of a head; shortest form enforced. */
const argument = (r: Reader, info: number): bigint | DecodeFailure => {
  if (info < 24) return BigInt(info)
  const width = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0
  if (width === 0) return new DecodeFailure(`indefinite length or reserved additional info ${info}`)
  const bytes = r.take(width)
  if (bytes === undefined) return truncated
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  const min = width === 1 ? 24n : width === 2 ? 0x100n : width === 4 ? 0x10000n : 0x1_0000_0000n
  if (n < min) return new DecodeFailure("integer or length not in its shortest form")
  return n
}

/** `n` bytes of the input (a string's or a byte string's content), checked against what is left. */
const content = (r: Reader, n: bigint): Uint8Array | DecodeFailure => {
  if (n > BigInt(r.bytes.length - r.at)) return new DecodeFailure("length beyond the input")
  return r.take(Number(n)) ?? truncated
}

/** A count of items, checked against what is left (each item takes at least one byte). */
const count = (r: Reader, n: bigint): number | DecodeFailure =>
  n > BigInt(r.bytes.length - r.at) ? new DecodeFailure("length beyond the input") : Number(n)

const text = (bytes: Uint8Array, what: string): string | DecodeFailure => {
  try {
    return utf8Decoder.decode(bytes)
  } catch {
    return new DecodeFailure(`${what} is not UTF-8`)
  }
}

const item = (r: Reader, depth: number): Item | DecodeFailure => {
  if (depth > MAX_DEPTH) return new DecodeFailure("nested too deep")
  const first = r.byte()
  if (first < 0) return truncated
  const major = first >> 5
  const info = first & 0x1f
  if (major === 7) {
    if (info === 20) return false
    if (info === 21) return true
    if (info === 22) return null
    if (info === 27) {
      const bytes = r.take(8)
      if (bytes === undefined) return truncated
      const f = new DataView(bytes.slice().buffer).getFloat64(0)
      if (!Number.isFinite(f)) return new DecodeFailure("NaN or infinite float")
      return f
    }
    return new DecodeFailure(`simple value or float form ${info} not allowed in DAG-CBOR`)
  }
  const n = argument(r, info)
  if (n instanceof DecodeFailure) return n
  switch (major) {
    case 0:
      return n
    case 1:
      return -1n - n
    case 2: {
      const bytes = content(r, n)
      return bytes instanceof DecodeFailure ? bytes : bytes.slice()
    }
    case 3: {
      const bytes = content(r, n)
      return bytes instanceof DecodeFailure ? bytes : text(bytes, "text string")
    }
    case 4: {
      const items = count(r, n)
      if (items instanceof DecodeFailure) return items
      const out: Array<Item> = []
      for (let i = 0; i < items; i++) {
        const next = item(r, depth + 1)
        if (next instanceof DecodeFailure) return next
        out.push(next)
      }
      return out
    }
    case 5: {
      const entries = count(r, n)
      if (entries instanceof DecodeFailure) return entries
      const out = new Map<string, Item>()
      let previous: Uint8Array | undefined
      for (let i = 0; i < entries; i++) {
        const keyHead = r.byte()
        if (keyHead < 0) return truncated
        if (keyHead >> 5 !== 3) return new DecodeFailure("map key is not a text string")
        const keyLength = argument(r, keyHead & 0x1f)
        if (keyLength instanceof DecodeFailure) return keyLength
        const keyBytes = content(r, keyLength)
        if (keyBytes instanceof DecodeFailure) return keyBytes
        if (previous !== undefined && compareKeys(previous, keyBytes) >= 0) {
          return new DecodeFailure("map keys not in canonical order or duplicated")
        }
        previous = keyBytes
        const key = text(keyBytes, "map key")
        if (key instanceof DecodeFailure) return key
        const value = item(r, depth + 1)
        if (value instanceof DecodeFailure) return value
        out.set(key, value)
      }
      return out
    }
    default: { // 6: tag
      if (n !== 42n) return new DecodeFailure(`tag ${n} not allowed in DAG-CBOR`)
      const cid = item(r, depth + 1)
      if (cid instanceof DecodeFailure) return cid
      if (!(cid instanceof Uint8Array) || cid[0] !== 0) return new DecodeFailure("tag 42 without a CID byte string")
      return { cid: cid.subarray(1) }
    }
  }
}

/** Decode exactly one DAG-CBOR item; a failure is the reason as text. */
export const decode = (bytes: Uint8Array): Result.Result<Item, string> => {
  const r = new Reader(bytes)
  const out = item(r, 0)
  if (out instanceof DecodeFailure) return Result.fail(out.message)
  if (r.at !== bytes.length) return Result.fail("bytes after the item")
  return Result.succeed(out)
}
