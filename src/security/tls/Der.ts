/**
 * A small ASN.1 DER codec (ITU-T X.690 §8 basic encoding, §10 DER
 * restrictions), just what the libp2p TLS spec's certificates need
 * (https://github.com/libp2p/specs/blob/master/tls/tls.md §Peer Authentication,
 * §libp2p Public Key Extension; RFC 5280 §4.1 for the X.509 structure).
 *
 * Decoding is strict DER, since a certificate's signature covers its exact
 * bytes and an accepted BER variant would give one certificate several
 * encodings:
 * - single-byte identifiers only (tag numbers 0-30; X.509 uses no others);
 * - definite lengths in the minimal form (short form below 128, long form
 *   with no leading zero byte and only when needed, at most 4 length bytes);
 *   the indefinite form is refused;
 * - INTEGER contents minimal (no redundant leading 0x00/0xff), BOOLEAN only
 *   0x00/0xff, BIT STRINGs of whole bytes only (no unused bits: keys and
 *   signatures),
 *   OBJECT IDENTIFIER arcs minimal, UTCTime/GeneralizedTime in the DER form
 *   (`YYMMDDHHMMSSZ`, `YYYYMMDDHHMMSSZ`, no fractions);
 * - an element never extends past its parent, and {@link decode} refuses
 *   trailing bytes.
 *
 * Decoded elements are views into the input (no copies); `raw` is the whole
 * TLV, as signatures need it.
 *
 * @since 0.1.0
 */
import { Bytes, Result, Schema } from "effect"

/**
 * Why DER input was refused.
 * - `Truncated`: an element runs past the end of its input or parent.
 * - `NonCanonical`: valid BER but not DER (long lengths, indefinite form, non-minimal integers, …).
 * - `Unexpected`: another tag, or a value out of the allowed range, where the structure expects one.
 * - `TrailingBytes`: bytes after the last element.
 */
export const DerErrorReason = Schema.Literals(["Truncated", "NonCanonical", "Unexpected", "TrailingBytes"])
export type DerErrorReason = typeof DerErrorReason.Type

export class DerError extends Schema.TaggedError<DerError>()("DerError", {
  reason: DerErrorReason,
  message: Schema.String
}) {}

const fail = (reason: DerErrorReason, message: string): Result.Result<never, DerError> =>
  Result.fail(new DerError({ reason, message }))

// ---------------------------------------------------------------------------
// tags (identifier octets, X.690 §8.1.2)

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31
} as const

/** The identifier of a context-specific tag `[n]`, constructed (EXPLICIT or a constructed IMPLICIT) or primitive. */
export const contextTag = (n: number, constructed = true): number => 0x80 | (constructed ? 0x20 : 0) | n

export const isConstructed = (tag: number): boolean => (tag & 0x20) !== 0

// ---------------------------------------------------------------------------
// decoding

export interface Element {
  /** The identifier octet. */
  readonly tag: number
  /** The contents octets (a view). */
  readonly content: Uint8Array
  /** The whole encoding: identifier, length and contents (a view). */
  readonly raw: Uint8Array
}

const MAX_LENGTH_BYTES = 4

/** Read one element at `offset` of `bytes`; returns it and the offset after it. */
export const readElement = (
  bytes: Uint8Array,
  offset: number
): Result.Result<readonly [Element, number], DerError> => {
  if (offset + 2 > bytes.byteLength) return fail("Truncated", "an element needs at least 2 bytes")
  const tag = bytes[offset]!
  if ((tag & 0x1f) === 0x1f) return fail("Unexpected", "multi-byte identifiers are not supported")
  let at = offset + 1
  const first = bytes[at++]!
  let length: number
  if (first < 0x80) {
    length = first
  } else {
    const n = first & 0x7f
    if (n === 0) return fail("NonCanonical", "indefinite length")
    if (n > MAX_LENGTH_BYTES) return fail("Unexpected", `a ${n}-byte length field`)
    if (at + n > bytes.byteLength) return fail("Truncated", "the length field runs past the input")
    if (bytes[at] === 0) return fail("NonCanonical", "a length with a leading zero byte")
    length = 0
    for (let i = 0; i < n; i++) length = length * 256 + bytes[at++]!
    if (length < 0x80) return fail("NonCanonical", `the long form for a length of ${length}`)
  }
  const end = at + length
  if (end > bytes.byteLength) {
    return fail("Truncated", `a ${length}-byte element with ${bytes.byteLength - at} bytes left`)
  }
  return Result.succeed([{ tag, content: bytes.subarray(at, end), raw: bytes.subarray(offset, end) }, end] as const)
}

/** Decode exactly one element filling `bytes`. */
export const decode = (bytes: Uint8Array): Result.Result<Element, DerError> =>
  Result.flatMap(
    readElement(bytes, 0),
    ([el, end]) =>
      end === bytes.byteLength
        ? Result.succeed(el)
        : fail("TrailingBytes", `${bytes.byteLength - end} bytes after the element`)
  )

/** The elements inside a constructed element, in order. */
export const children = (el: Element): Result.Result<Array<Element>, DerError> => {
  if (!isConstructed(el.tag)) return fail("Unexpected", `tag 0x${el.tag.toString(16)} is not constructed`)
  const out: Array<Element> = []
  let at = 0
  while (at < el.content.byteLength) {
    const r = readElement(el.content, at)
    if (Result.isFailure(r)) return Result.fail(r.failure)
    out.push(r.success[0])
    at = r.success[1]
  }
  return Result.succeed(out)
}

/** `el`, when its tag is `tag`. */
export const expectTag = (el: Element | undefined, tag: number, what: string): Result.Result<Element, DerError> =>
  el === undefined
    ? fail("Unexpected", `${what}: missing`)
    : el.tag === tag
    ? Result.succeed(el)
    : fail("Unexpected", `${what}: tag 0x${el.tag.toString(16)} where 0x${tag.toString(16)} was expected`)

/** The children of a SEQUENCE. */
export const sequenceOf = (el: Element | undefined, what: string): Result.Result<Array<Element>, DerError> =>
  Result.flatMap(expectTag(el, Tag.SEQUENCE, what), children)

/** The contents of an INTEGER as two's-complement big-endian bytes (checked minimal). */
export const integerBytes = (el: Element | undefined, what: string): Result.Result<Uint8Array, DerError> =>
  Result.flatMap(expectTag(el, Tag.INTEGER, what), ({ content }) => {
    if (content.byteLength === 0) return fail("Unexpected", `${what}: an empty INTEGER`)
    if (
      content.byteLength > 1 &&
      ((content[0] === 0x00 && (content[1]! & 0x80) === 0) || (content[0] === 0xff && (content[1]! & 0x80) !== 0))
    ) return fail("NonCanonical", `${what}: a non-minimal INTEGER`)
    return Result.succeed(content)
  })

/** The longest INTEGER {@link integer} reads (X.509 serial numbers are at most 20 octets, RFC 5280 §4.1.2.2). */
export const MAX_INTEGER_BYTES = 64

/** The longest OBJECT IDENTIFIER arc {@link oid} reads, in bytes (128-bit UUID arcs take 19). */
export const MAX_OID_ARC_BYTES = 20

/** An INTEGER as a bigint (at most {@link MAX_INTEGER_BYTES} bytes). */
export const integer = (el: Element | undefined, what: string): Result.Result<bigint, DerError> =>
  Result.flatMap(integerBytes(el, what), (bytes) => {
    if (bytes.byteLength > MAX_INTEGER_BYTES) {
      return fail("Unexpected", `${what}: an INTEGER of ${bytes.byteLength} bytes (at most ${MAX_INTEGER_BYTES})`)
    }
    let n = 0n
    for (const b of bytes) n = (n << 8n) | BigInt(b)
    if ((bytes[0]! & 0x80) !== 0) n -= 1n << BigInt(bytes.byteLength * 8)
    return Result.succeed(n)
  })

/** A BOOLEAN (DER: 0xff is TRUE, 0x00 FALSE, nothing else). */
export const boolean = (el: Element | undefined, what: string): Result.Result<boolean, DerError> =>
  Result.flatMap(expectTag(el, Tag.BOOLEAN, what), ({ content }) => {
    if (content.byteLength !== 1) return fail("Unexpected", `${what}: a BOOLEAN of ${content.byteLength} bytes`)
    if (content[0] === 0xff) return Result.succeed(true)
    if (content[0] === 0x00) return Result.succeed(false)
    return fail("NonCanonical", `${what}: BOOLEAN 0x${content[0]!.toString(16)}`)
  })

/** The contents of an OCTET STRING (a view). */
export const octetString = (el: Element | undefined, what: string): Result.Result<Uint8Array, DerError> =>
  Result.map(expectTag(el, Tag.OCTET_STRING, what), (e) => e.content)

/** The bits of a BIT STRING that holds whole bytes (no unused bits), e.g. a signature or a public key. */
export const bitStringBytes = (el: Element | undefined, what: string): Result.Result<Uint8Array, DerError> =>
  Result.flatMap(expectTag(el, Tag.BIT_STRING, what), ({ content }) => {
    if (content.byteLength === 0) return fail("Unexpected", `${what}: a BIT STRING without its unused-bits byte`)
    if (content[0] !== 0) return fail("Unexpected", `${what}: a BIT STRING with ${content[0]} unused bits`)
    return Result.succeed(content.subarray(1))
  })

/** A NULL. */
export const nullValue = (el: Element | undefined, what: string): Result.Result<null, DerError> =>
  Result.flatMap(
    expectTag(el, Tag.NULL, what),
    ({ content }) =>
      content.byteLength === 0 ? Result.succeed(null) : fail("Unexpected", `${what}: a NULL with contents`)
  )

/** An OBJECT IDENTIFIER in dotted form. */
export const oid = (el: Element | undefined, what: string): Result.Result<string, DerError> =>
  Result.flatMap(expectTag(el, Tag.OID, what), ({ content }) => {
    if (content.byteLength === 0) return fail("Unexpected", `${what}: an empty OBJECT IDENTIFIER`)
    const arcs: Array<bigint> = []
    let value = 0n
    let started = false
    let arcBytes = 0
    for (let i = 0; i < content.byteLength; i++) {
      const b = content[i]!
      if (!started && b === 0x80) return fail("NonCanonical", `${what}: an OID arc with a leading 0x80`)
      started = true
      if (++arcBytes > MAX_OID_ARC_BYTES) {
        return fail("Unexpected", `${what}: an OID arc over ${MAX_OID_ARC_BYTES} bytes`)
      }
      value = (value << 7n) | BigInt(b & 0x7f)
      if ((b & 0x80) === 0) {
        arcs.push(value)
        value = 0n
        started = false
        arcBytes = 0
      }
    }
    if (started) return fail("Truncated", `${what}: the last OID arc is unterminated`)
    const first = arcs[0]!
    const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n]
    return Result.succeed([...head, ...arcs.slice(1)].join("."))
  })

const digits = (s: string, from: number, n: number): number | undefined => {
  let v = 0
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48
    if (c < 0 || c > 9) return undefined
    v = v * 10 + c
  }
  return v
}

/**
 * A UTCTime or GeneralizedTime in the DER/RFC 5280 §4.1.2.5 form, as
 * milliseconds since the epoch. UTCTime years 50-99 are 1950-1999, 00-49 are
 * 2000-2049 (RFC 5280 §4.1.2.5.1).
 */
export const time = (el: Element | undefined, what: string): Result.Result<number, DerError> => {
  if (el === undefined) return fail("Unexpected", `${what}: missing`)
  if (el.tag !== Tag.UTC_TIME && el.tag !== Tag.GENERALIZED_TIME) {
    return fail("Unexpected", `${what}: tag 0x${el.tag.toString(16)} is not a time`)
  }
  const utc = el.tag === Tag.UTC_TIME
  const yearDigits = utc ? 2 : 4
  const s = el.content.byteLength === yearDigits + 11 ? String.fromCharCode(...el.content) : ""
  if (s.length !== yearDigits + 11 || s[s.length - 1] !== "Z") {
    return fail(
      "NonCanonical",
      `${what}: ${el.content.byteLength} bytes, not ${utc ? "YYMMDDHHMMSSZ" : "YYYYMMDDHHMMSSZ"}`
    )
  }
  const y = digits(s, 0, yearDigits)
  const mo = digits(s, yearDigits, 2)
  const d = digits(s, yearDigits + 2, 2)
  const h = digits(s, yearDigits + 4, 2)
  const mi = digits(s, yearDigits + 6, 2)
  const se = digits(s, yearDigits + 8, 2)
  if (
    y === undefined || mo === undefined || d === undefined || h === undefined || mi === undefined || se === undefined
  ) {
    return fail("Unexpected", `${what}: "${s}" has non-digits`)
  }
  const year = utc ? (y >= 50 ? 1900 + y : 2000 + y) : y
  // Date.UTC maps years 0-99 to 1900-1999: set the full year separately.
  const check = new Date(Date.UTC(2000, 0, 1, h, mi, se))
  check.setUTCFullYear(year, mo - 1, d)
  const ms = check.getTime()
  if (
    mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59 || check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d
  ) return fail("Unexpected", `${what}: "${s}" is not a valid date`)
  return Result.succeed(ms)
}

// ---------------------------------------------------------------------------
// encoding

const lengthBytes = (n: number): Array<number> => {
  if (n < 0x80) return [n]
  const out: Array<number> = []
  while (n > 0) {
    out.unshift(n & 0xff)
    n = Math.floor(n / 256)
  }
  return [0x80 | out.length, ...out]
}

/** An element from its identifier and contents. */
export const encode = (tag: number, content: Uint8Array): Uint8Array => {
  const len = lengthBytes(content.byteLength)
  const out = new Uint8Array(1 + len.length + content.byteLength)
  out[0] = tag
  out.set(len, 1)
  out.set(content, 1 + len.length)
  return out
}

export const encodeSequence = (items: ReadonlyArray<Uint8Array>): Uint8Array =>
  encode(Tag.SEQUENCE, Bytes.concat(items))

/** A SET OF (DER sorts the encodings, X.690 §11.6). */
export const encodeSet = (items: ReadonlyArray<Uint8Array>): Uint8Array =>
  encode(Tag.SET, Bytes.concat([...items].sort(Buffer.compare)))

/** `[n] EXPLICIT inner`. */
export const encodeExplicit = (n: number, inner: Uint8Array): Uint8Array => encode(contextTag(n), inner)

/** A non-negative INTEGER from its unsigned big-endian magnitude. */
export const encodeUnsigned = (magnitude: Uint8Array): Uint8Array => {
  let i = 0
  while (i < magnitude.byteLength - 1 && magnitude[i] === 0) i++
  const m = magnitude.subarray(i)
  if (m.byteLength === 0) return encode(Tag.INTEGER, Uint8Array.of(0))
  return encode(Tag.INTEGER, (m[0]! & 0x80) !== 0 ? Bytes.concat([Uint8Array.of(0), m]) : m)
}

/** A small non-negative INTEGER. */
export const encodeInteger = (n: number): Uint8Array => {
  const bytes: Array<number> = []
  do {
    bytes.unshift(n & 0xff)
    n = Math.floor(n / 256)
  } while (n > 0)
  return encodeUnsigned(Uint8Array.from(bytes))
}

export const encodeBoolean = (b: boolean): Uint8Array => encode(Tag.BOOLEAN, Uint8Array.of(b ? 0xff : 0x00))

export const encodeNull = (): Uint8Array => encode(Tag.NULL, new Uint8Array(0))

export const encodeOctetString = (bytes: Uint8Array): Uint8Array => encode(Tag.OCTET_STRING, bytes)

/** A BIT STRING of whole bytes. */
export const encodeBitString = (bytes: Uint8Array): Uint8Array =>
  encode(Tag.BIT_STRING, Bytes.concat([Uint8Array.of(0), bytes]))

export const encodePrintableString = (s: string): Uint8Array =>
  encode(Tag.PRINTABLE_STRING, new TextEncoder().encode(s))

export const encodeUtf8String = (s: string): Uint8Array => encode(Tag.UTF8_STRING, new TextEncoder().encode(s))

/** An OBJECT IDENTIFIER from its dotted form (precondition: decimal arcs, at least two, the first 0-2; we pass constants). */
export const encodeOid = (dotted: string): Uint8Array => {
  const arcs = dotted.split(".").map((a) => BigInt(a))
  const out: Array<number> = []
  const push = (v: bigint) => {
    const groups: Array<number> = [Number(v & 0x7fn)]
    v >>= 7n
    while (v > 0n) {
      groups.unshift(Number(v & 0x7fn) | 0x80)
      v >>= 7n
    }
    out.push(...groups)
  }
  push(arcs[0]! * 40n + arcs[1]!)
  for (const a of arcs.slice(2)) push(a)
  return encode(Tag.OID, Uint8Array.from(out))
}

const pad = (n: number, width: number) => n.toString().padStart(width, "0")

/**
 * A time as RFC 5280 §4.1.2.5 wants it: UTCTime through 2049, GeneralizedTime
 * from 2050 (whole seconds; milliseconds are dropped).
 */
export const encodeTime = (ms: number): Uint8Array => {
  const d = new Date(ms)
  const y = d.getUTCFullYear()
  const rest = pad(d.getUTCMonth() + 1, 2) + pad(d.getUTCDate(), 2) + pad(d.getUTCHours(), 2) +
    pad(d.getUTCMinutes(), 2) + pad(d.getUTCSeconds(), 2) + "Z"
  return y >= 1950 && y < 2050
    ? encode(Tag.UTC_TIME, new TextEncoder().encode(pad(y % 100, 2) + rest))
    : encode(Tag.GENERALIZED_TIME, new TextEncoder().encode(pad(y, 4) + rest))
}
