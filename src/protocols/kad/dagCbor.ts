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
  need(n: number): void {
    if (this.bytes.length - this.at < n) throw new DecodeFailure("truncated input")
  }
  byte(): number {
    this.need(1)
    return this.bytes[this.at++]!
  }
  take(n: number): Uint8Array {
    this.need(n)
    const out = this.bytes.subarray(this.at, this.at + n)
    this.at += n
    return out
  }
}

class DecodeFailure {
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

/** The argument of a head; shortest form enforced. */
const argument = (r: Reader, info: number): bigint => {
  if (info < 24) return BigInt(info)
  const width = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0
  if (width === 0) throw new DecodeFailure(`indefinite length or reserved additional info ${info}`)
  let n = 0n
  for (const b of r.take(width)) n = (n << 8n) | BigInt(b)
  const min = width === 1 ? 24n : width === 2 ? 0x100n : width === 4 ? 0x10000n : 0x1_0000_0000n
  if (n < min) throw new DecodeFailure("integer or length not in its shortest form")
  return n
}

const length = (n: bigint, r: Reader): number => {
  if (n > BigInt(r.bytes.length - r.at)) throw new DecodeFailure("length beyond the input")
  return Number(n)
}

const item = (r: Reader, depth: number): Item => {
  if (depth > MAX_DEPTH) throw new DecodeFailure("nested too deep")
  const first = r.byte()
  const major = first >> 5
  const info = first & 0x1f
  if (major === 7) {
    if (info === 20) return false
    if (info === 21) return true
    if (info === 22) return null
    if (info === 27) {
      const f = new DataView(r.take(8).slice().buffer).getFloat64(0)
      if (!Number.isFinite(f)) throw new DecodeFailure("NaN or infinite float")
      return f
    }
    throw new DecodeFailure(`simple value or float form ${info} not allowed in DAG-CBOR`)
  }
  const n = argument(r, info)
  switch (major) {
    case 0:
      return n
    case 1:
      return -1n - n
    case 2:
      return r.take(length(n, r)).slice()
    case 3:
      try {
        return utf8Decoder.decode(r.take(length(n, r)))
      } catch {
        throw new DecodeFailure("text string is not UTF-8")
      }
    case 4: {
      const count = length(n, r)
      const out: Array<Item> = []
      for (let i = 0; i < count; i++) out.push(item(r, depth + 1))
      return out
    }
    case 5: {
      const count = length(n, r)
      const out = new Map<string, Item>()
      let previous: Uint8Array | undefined
      for (let i = 0; i < count; i++) {
        const keyHead = r.byte()
        if (keyHead >> 5 !== 3) throw new DecodeFailure("map key is not a text string")
        const keyBytes = r.take(length(argument(r, keyHead & 0x1f), r))
        if (previous !== undefined && compareKeys(previous, keyBytes) >= 0) {
          throw new DecodeFailure("map keys not in canonical order or duplicated")
        }
        previous = keyBytes
        let key: string
        try {
          key = utf8Decoder.decode(keyBytes)
        } catch {
          throw new DecodeFailure("map key is not UTF-8")
        }
        out.set(key, item(r, depth + 1))
      }
      return out
    }
    default: { // 6: tag
      if (n !== 42n) throw new DecodeFailure(`tag ${n} not allowed in DAG-CBOR`)
      const cid = item(r, depth + 1)
      if (!(cid instanceof Uint8Array) || cid[0] !== 0) throw new DecodeFailure("tag 42 without a CID byte string")
      return { cid: cid.subarray(1) }
    }
  }
}

/** Decode exactly one DAG-CBOR item; a failure is the reason as text. */
export const decode = (bytes: Uint8Array): Result.Result<Item, string> => {
  const r = new Reader(bytes)
  try {
    const out = item(r, 0)
    if (r.at !== bytes.length) return Result.fail("bytes after the item")
    return Result.succeed(out)
  } catch (e) {
    if (e instanceof DecodeFailure) return Result.fail(e.message)
    throw e
  }
}
