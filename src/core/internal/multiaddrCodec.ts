/**
 * Private machinery of `Multiaddr.ts`: the protocol table and the value
 * transcoders (string form <-> binary form of one component's value).
 *
 * Spec: multiformats/multiaddr README §Specification and protocols.csv, with the
 * codes taken from the multicodec table (multiformats/multicodec table.csv,
 * tag `multiaddr`), which is the authority where protocols.csv lags. Where the
 * spec is silent on a value format, the rules follow go-multiaddr (the
 * reference implementation whose conformance vectors we run); every departure
 * is listed in the doc comment of the transcoder concerned.
 *
 * Transcoders never throw; they return a `Result` whose failure is a plain
 * `ValueFailure` that `Multiaddr.ts` turns into its public `MultiaddrError`.
 */
import { Result } from "effect"
import * as Multibase from "../Multibase.ts"
import * as Multihash from "../Multihash.ts"
import * as Varint from "../Varint.ts"

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/** Why a value could not be transcoded (the caller turns it into a `MultiaddrError` with reason `InvalidValue`). */
export interface ValueFailure {
  readonly message: string
}

const invalid = (message: string): Result.Result<never, ValueFailure> => Result.fail({ message })

/** Run a library call that may throw; a throw becomes an `InvalidValue` failure. */
const attempt = <A>(f: () => A, message: string): Result.Result<A, ValueFailure> => {
  try {
    return Result.succeed(f())
  } catch {
    return invalid(message)
  }
}

// ---------------------------------------------------------------------------
// Transcoder and protocol table
// ---------------------------------------------------------------------------

/**
 * Converts one component value between its string form and its binary form.
 * `toBytes` validates the string; `toString` validates the bytes (so a
 * binary multiaddr is checked as strictly as a string one) and yields the
 * canonical string form.
 */
export interface Transcoder {
  readonly toBytes: (s: string) => Result.Result<Uint8Array, ValueFailure>
  readonly toString: (b: Uint8Array) => Result.Result<string, ValueFailure>
}

/** `size` of a protocol whose value is prefixed by its uvarint length. */
export const VARIABLE = -1

/** One row of the protocol table. */
export interface Protocol {
  /** Multicodec code. */
  readonly code: number
  /** Canonical name (the one printed). */
  readonly name: string
  /** Value size in bytes: 0 = no value, > 0 = fixed size, {@link VARIABLE} = uvarint length prefix. */
  readonly size: number
  /** A path protocol takes the rest of the string form as its value (`/unix/a/b`). */
  readonly path: boolean
  /** Present exactly when `size !== 0`. */
  readonly transcoder?: Transcoder
}

// ---------------------------------------------------------------------------
// Text helpers
// ---------------------------------------------------------------------------

const utf8Encoder = new TextEncoder()
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })

export const utf8Encode = (s: string): Uint8Array => utf8Encoder.encode(s)

/** Strict UTF-8 decode (no replacement characters): binary values must round-trip through the string form. */
export const utf8Decode = (b: Uint8Array): Result.Result<string, ValueFailure> =>
  attempt(() => utf8Decoder.decode(b), "value is not valid UTF-8")

const isDigit = (c: number) => c >= 0x30 && c <= 0x39

/**
 * Parse an unsigned decimal integer the way Go's `strconv.ParseUint(s, 10, bits)` does:
 * ASCII digits only (no sign, no spaces, no underscores), leading zeros allowed, at most `max`.
 */
export const parseDecimal = (s: string, max: bigint): bigint | undefined => {
  if (s.length === 0 || s.length > 40) return undefined
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return undefined
  const n = BigInt(s)
  return n <= max ? n : undefined
}

const HEX = "0123456789ABCDEF"
const isUnreserved = (c: number) =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || isDigit(c) || c === 0x2d || c === 0x2e || c === 0x5f ||
  c === 0x7e

/** Percent-encode every byte except RFC 3986 `unreserved` (A-Z a-z 0-9 - . _ ~), with upper-case hex. */
export const percentEncode = (b: Uint8Array): string => {
  let out = ""
  for (const c of b) {
    out += isUnreserved(c) ? String.fromCharCode(c) : "%" + HEX[c >> 4] + HEX[c & 15]
  }
  return out
}

const hexValue = (c: number): number =>
  isDigit(c) ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1

/**
 * Percent-decode to bytes (RFC 3986 §2.1): `%XX` becomes the byte XX, any other
 * character stands for its UTF-8 bytes. `+` is a literal plus (it means a space
 * only in form encoding, which this is not). A `%` not followed by two hex digits is an error.
 */
export const percentDecode = (s: string): Result.Result<Uint8Array, ValueFailure> => {
  if (!s.isWellFormed()) return invalid("value contains a lone UTF-16 surrogate")
  if (s.indexOf("%") < 0) return Result.succeed(utf8Encode(s))
  const out: Array<number> = []
  let literalStart = 0
  const flush = (end: number) => {
    if (end > literalStart) { for (const byte of utf8Encode(s.slice(literalStart, end))) out.push(byte) }
  }
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) !== 0x25) continue
    flush(i)
    const hi = i + 1 < s.length ? hexValue(s.charCodeAt(i + 1)) : -1
    const lo = i + 2 < s.length ? hexValue(s.charCodeAt(i + 2)) : -1
    if (hi < 0 || lo < 0) return invalid(`malformed percent-encoding at offset ${i}`)
    out.push(hi * 16 + lo)
    i += 2
    literalStart = i + 1
  }
  flush(s.length)
  return Result.succeed(Uint8Array.from(out))
}

// ---------------------------------------------------------------------------
// RFC 4648 base32 / base64 with custom alphabets (onion, garlic)
// ---------------------------------------------------------------------------

interface Rfc4648 {
  readonly alphabet: string
  readonly bitsPerChar: 5 | 6
  readonly lookup: Int16Array
}

const rfc4648 = (alphabet: string, bitsPerChar: 5 | 6, caseInsensitive: boolean): Rfc4648 => {
  const lookup = new Int16Array(128).fill(-1)
  for (let i = 0; i < alphabet.length; i++) {
    const c = alphabet.charCodeAt(i)
    lookup[c] = i
    if (caseInsensitive) {
      lookup[String.fromCharCode(c).toUpperCase().charCodeAt(0)] = i
      lookup[String.fromCharCode(c).toLowerCase().charCodeAt(0)] = i
    }
  }
  return { alphabet, bitsPerChar, lookup }
}

/**
 * Decode unpadded RFC 4648 text. Lengths that cannot come from an encoder
 * (a final group of one base32 char, three base32 chars, six base32 chars, or one
 * base64 char) are rejected. Non-zero bits in the last character are tolerated,
 * as Go's `encoding/base32` and non-strict `encoding/base64` tolerate them
 * (go-multiaddr's garlic32 vectors depend on it).
 */
const rfc4648Decode = (codec: Rfc4648, s: string): Uint8Array | undefined => {
  const bits = codec.bitsPerChar
  const groupChars = bits === 5 ? 8 : 4
  const rem = s.length % groupChars
  if (bits === 5 ? rem === 1 || rem === 3 || rem === 6 : rem === 1) return undefined
  const out = new Uint8Array(Math.floor((s.length * bits) / 8))
  let buffer = 0
  let filled = 0
  let written = 0
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const v = c < 128 ? codec.lookup[c]! : -1
    if (v < 0) return undefined
    buffer = ((buffer << bits) | v) & 0xffff
    filled += bits
    if (filled >= 8) {
      filled -= 8
      out[written++] = (buffer >> filled) & 0xff
    }
  }
  return out
}

/** Encode as unpadded RFC 4648 text. */
const rfc4648Encode = (codec: Rfc4648, b: Uint8Array): string => {
  const bits = codec.bitsPerChar
  const mask = (1 << bits) - 1
  let out = ""
  let buffer = 0
  let filled = 0
  for (const byte of b) {
    buffer = ((buffer << 8) | byte) & 0xffff
    filled += 8
    while (filled >= bits) {
      filled -= bits
      out += codec.alphabet[(buffer >> filled) & mask]
    }
  }
  if (filled > 0) out += codec.alphabet[(buffer << (bits - filled)) & mask]
  return out
}

/** RFC 4648 §6 base32, decoded case-insensitively (Tor onion addresses; Go upper-cases before decoding). */
const base32Onion = rfc4648("abcdefghijklmnopqrstuvwxyz234567", 5, true)
/** I2P base32: lower case only (Go's garlic32 encoding has a lower-case alphabet). */
const base32Garlic = rfc4648("abcdefghijklmnopqrstuvwxyz234567", 5, false)
/** I2P base64: RFC 4648 §4 with `-` and `~` for `+` and `/`, `=`-padded. */
const base64Garlic = rfc4648("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-~", 6, false)

// ---------------------------------------------------------------------------
// Multihash, multibase and CID (for p2p and certhash)
// ---------------------------------------------------------------------------

const CID_LIBP2P_KEY = 0x72

/** A multihash (multiformats/multihash §Format) filling `b` exactly. */
const readMultihash = (b: Uint8Array): Result.Result<Multihash.Multihash, ValueFailure> =>
  Result.mapError(Multihash.decode(b), (e) => ({ message: `invalid multihash: ${e.message}` }))

/**
 * A peer id multihash (peer-ids spec §Peer Ids): identity, or sha2-256 with a
 * 32-byte digest. go-multiaddr applies the same rule to `/p2p` values.
 */
const validatePeerIdMultihash = (b: Uint8Array): Result.Result<Uint8Array, ValueFailure> => {
  const mh = readMultihash(b)
  if (Result.isFailure(mh)) return Result.fail(mh.failure)
  const { code, digest } = mh.success
  if (code !== Multihash.codes.identity && code !== Multihash.codes["sha2-256"]) {
    return invalid(`peer id multihash has code 0x${code.toString(16)}, expected identity or sha2-256`)
  }
  if (code === Multihash.codes["sha2-256"] && digest.length !== 32) {
    return invalid(`sha2-256 peer id digest is ${digest.length} bytes, expected 32`)
  }
  return Result.succeed(b)
}

/** Decode a multibase string (multiformats/multibase), any supported base. */
const multibaseDecode = (s: string): Result.Result<Uint8Array, ValueFailure> =>
  Result.mapBoth(Multibase.decode(s), { onFailure: (e) => ({ message: e.message }), onSuccess: (d) => d.bytes })

/** Bytes of a CIDv1 (multiformats/cid §CIDv1: `<uvarint version=1><uvarint codec><multihash>`). */
const cidV1 = (
  b: Uint8Array
): Result.Result<{ readonly codec: number; readonly multihash: Uint8Array }, ValueFailure> => {
  const version = Varint.decode(b, 0)
  if (Result.isFailure(version)) return invalid("invalid CID: version")
  if (version.success.value !== 1) return invalid(`CID version ${version.success.value} is not 1`)
  const codec = Varint.decode(b, version.success.bytes)
  if (Result.isFailure(codec)) return invalid("invalid CID: codec")
  return Result.succeed({
    codec: codec.success.value,
    multihash: b.subarray(version.success.bytes + codec.success.bytes)
  })
}

// ---------------------------------------------------------------------------
// IP addresses
// ---------------------------------------------------------------------------

/**
 * Dotted-decimal IPv4 (RFC 791 text form as Go's `net.ParseIP` reads it since Go 1.17):
 * four decimal fields 0-255, no leading zeros.
 */
export const parseIp4 = (s: string, out: Uint8Array = new Uint8Array(4), at = 0): Uint8Array | undefined => {
  let field = 0
  let value = 0
  let digits = 0
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e
    if (c === 0x2e) {
      if (digits === 0 || field > 3) return undefined
      out[at + field++] = value
      value = 0
      digits = 0
      continue
    }
    if (!isDigit(c)) return undefined
    if (digits > 0 && value === 0) return undefined // leading zero
    value = value * 10 + (c - 0x30)
    if (++digits > 3 || value > 255) return undefined
  }
  return field === 4 ? out : undefined
}

/**
 * IPv6 text form (RFC 4291 §2.2): eight 1-4 digit hex groups, one `::` for at least
 * one zero group, an optional trailing dotted IPv4 part. No zone (`%eth0`): zones
 * are the separate `ip6zone` protocol. A bare IPv4 address is not an IPv6 address
 * (Go's `net.ParseIP` would accept it here; rust-multiaddr does not).
 */
export const parseIp6 = (s: string): Uint8Array | undefined => {
  const out = new Uint8Array(16)
  let ellipsis = -1
  let i = 0
  let p = 0
  const n = s.length
  if (n >= 2 && s.charCodeAt(0) === 0x3a && s.charCodeAt(1) === 0x3a) {
    ellipsis = 0
    p = 2
    if (p === n) return out
  }
  while (i < 16) {
    let off = p
    let acc = 0
    while (off < n) {
      const h = hexValue(s.charCodeAt(off))
      if (h < 0) break
      acc = acc * 16 + h
      off++
      if (off - p > 4) return undefined
    }
    if (off === p) return undefined
    if (off < n && s.charCodeAt(off) === 0x2e) {
      if ((ellipsis < 0 && i !== 12) || i + 4 > 16) return undefined
      if (parseIp4(s.slice(p), out, i) === undefined) return undefined
      i += 4
      p = n
      break
    }
    out[i] = acc >> 8
    out[i + 1] = acc & 0xff
    i += 2
    p = off
    if (p === n) break
    if (s.charCodeAt(p) !== 0x3a || p + 1 === n) return undefined
    p++
    if (s.charCodeAt(p) === 0x3a) {
      if (ellipsis >= 0) return undefined
      ellipsis = i
      p++
      if (p === n) break
    }
  }
  if (p !== n) return undefined
  if (i < 16) {
    if (ellipsis < 0) return undefined
    const shift = 16 - i
    for (let j = i - 1; j >= ellipsis; j--) out[j + shift] = out[j]!
    out.fill(0, ellipsis, ellipsis + shift)
  } else if (ellipsis >= 0) {
    return undefined // "::" must stand for at least one group
  }
  return out
}

export const formatIp4 = (b: Uint8Array, at = 0): string => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`

/** True when `b` (16 bytes) is an IPv4-mapped IPv6 address `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2). */
export const isIp4Mapped = (b: Uint8Array): boolean => {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false
  return b[10] === 0xff && b[11] === 0xff
}

/**
 * RFC 5952 §4 text form: lower-case hex, no leading zeros, the first longest run
 * of two or more zero groups as `::`. IPv4-mapped addresses print as
 * `::ffff:a.b.c.d` (RFC 5952 §5), as go-multiaddr and rust-multiaddr print them.
 */
export const formatIp6 = (b: Uint8Array): string => {
  if (isIp4Mapped(b)) return "::ffff:" + formatIp4(b, 12)
  let bestStart = -1
  let bestLen = 0
  for (let g = 0; g < 8;) {
    if (b[2 * g] === 0 && b[2 * g + 1] === 0) {
      let end = g
      while (end < 8 && b[2 * end] === 0 && b[2 * end + 1] === 0) end++
      if (end - g > bestLen) {
        bestStart = g
        bestLen = end - g
      }
      g = end
    } else {
      g++
    }
  }
  if (bestLen < 2) bestStart = -1
  let out = ""
  for (let g = 0; g < 8; g++) {
    if (g === bestStart) {
      out += "::"
      g += bestLen - 1
      continue
    }
    if (out.length > 0 && !out.endsWith(":")) out += ":"
    out += ((b[2 * g]! << 8) | b[2 * g + 1]!).toString(16)
  }
  return out
}

// ---------------------------------------------------------------------------
// Transcoders
// ---------------------------------------------------------------------------

const fixedLength = (b: Uint8Array, n: number, what: string): Result.Result<void, ValueFailure> =>
  b.length === n ? Result.void : invalid(`${what} must be ${n} bytes, got ${b.length}`)

const ip4: Transcoder = {
  toBytes: (s) => {
    const b = parseIp4(s)
    return b === undefined ? invalid(`invalid IPv4 address ${JSON.stringify(s)}`) : Result.succeed(b)
  },
  toString: (b) => Result.map(fixedLength(b, 4, "ip4"), () => formatIp4(b))
}

const ip6: Transcoder = {
  toBytes: (s) => {
    const b = parseIp6(s)
    return b === undefined ? invalid(`invalid IPv6 address ${JSON.stringify(s)}`) : Result.succeed(b)
  },
  toString: (b) => Result.map(fixedLength(b, 16, "ip6"), () => formatIp6(b))
}

const uintBE = (b: Uint8Array): bigint => {
  let n = 0n
  for (const byte of b) n = (n << 8n) | BigInt(byte)
  return n
}

const toUintBE = (n: bigint, size: number): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn)
    n >>= 8n
  }
  return out
}

/** Fixed-size big-endian unsigned integer printed in decimal (ports: 2 bytes, ipcidr: 1, memory: 8). */
const unsigned = (size: number, what: string): Transcoder => {
  const max = (1n << BigInt(8 * size)) - 1n
  return {
    toBytes: (s) => {
      const n = parseDecimal(s, max)
      return n === undefined ?
        invalid(`invalid ${what} ${JSON.stringify(s)}: expected a decimal integer 0..${max}`) :
        Result.succeed(toUintBE(n, size))
    },
    toString: (b) => Result.map(fixedLength(b, size, what), () => uintBE(b).toString())
  }
}

/**
 * Text that cannot contain `/` (go-multiaddr's "dns" transcoder, also used for
 * ip6zone and sni): non-empty, and UTF-8 in binary form.
 */
const slashFree = (what: string): Transcoder => {
  const check = (s: string): Result.Result<string, ValueFailure> =>
    s.length === 0 ?
      invalid(`empty ${what}`) :
      s.includes("/") ?
      invalid(`${what} contains '/'`) :
      !s.isWellFormed() ?
      invalid(`${what} contains a lone UTF-16 surrogate`) :
      Result.succeed(s)
  return {
    toBytes: (s) => Result.map(check(s), utf8Encode),
    toString: (b) => Result.flatMap(utf8Decode(b), check)
  }
}

/**
 * Tor v2 onion: 16 base32 characters (10 bytes) `:` port 1..65535; 12 bytes.
 * Port 0 is refused in both forms (go, rust).
 */
const onion = (hostChars: number, hostBytes: number, what: string): Transcoder => ({
  toBytes: (s) => {
    const parts = s.split(":")
    if (parts.length !== 2) return invalid(`${what} address ${JSON.stringify(s)} must be <host>:<port>`)
    const [host, portText] = parts as [string, string]
    if (host.length !== hostChars) return invalid(`${what} host must be ${hostChars} base32 characters`)
    const hostB = rfc4648Decode(base32Onion, host)
    if (hostB === undefined || hostB.length !== hostBytes) return invalid(`${what} host is not base32`)
    const port = parseDecimal(portText, 65535n)
    if (port === undefined || port === 0n) return invalid(`${what} port must be 1..65535`)
    const out = new Uint8Array(hostBytes + 2)
    out.set(hostB, 0)
    out.set(toUintBE(port, 2), hostBytes)
    return Result.succeed(out)
  },
  toString: (b) => {
    if (b.length !== hostBytes + 2) return invalid(`${what} value must be ${hostBytes + 2} bytes`)
    const port = (b[hostBytes]! << 8) | b[hostBytes + 1]!
    if (port === 0) return invalid(`${what} port must be 1..65535`)
    return Result.succeed(`${rfc4648Encode(base32Onion, b.subarray(0, hostBytes))}:${port}`)
  }
})

/** I2P base64 destination; at least 386 bytes (go-multiaddr's rule). Padded with `=`. */
const garlic64: Transcoder = (() => {
  const check = (b: Uint8Array) =>
    b.length >= 386 ? Result.succeed(b) : invalid(`garlic64 address is ${b.length} bytes, expected at least 386`)
  return {
    toBytes: (s) => {
      if (s.length % 4 !== 0) return invalid("garlic64 length must be a multiple of 4")
      const body = s.endsWith("==") ? s.slice(0, -2) : s.endsWith("=") ? s.slice(0, -1) : s
      const b = rfc4648Decode(base64Garlic, body)
      return b === undefined ? invalid("garlic64 is not I2P base64") : check(b)
    },
    toString: (b) =>
      Result.map(check(b), () => {
        const text = rfc4648Encode(base64Garlic, b)
        return text + "=".repeat((4 - (text.length % 4)) % 4)
      })
  }
})()

/** I2P base32: exactly 32 bytes, or at least 35 (encrypted lease set); unpadded lower-case. */
const garlic32: Transcoder = (() => {
  const check = (b: Uint8Array) =>
    b.length === 32 || b.length >= 35 ?
      Result.succeed(b) :
      invalid(`garlic32 address is ${b.length} bytes, expected 32 or at least 35`)
  return {
    toBytes: (s) => {
      const b = rfc4648Decode(base32Garlic, s)
      return b === undefined ? invalid("garlic32 is not lower-case base32") : check(b)
    },
    toString: (b) => Result.map(check(b), () => rfc4648Encode(base32Garlic, b))
  }
})()

/**
 * Peer id (peer-ids spec §String representation): a base58btc multihash when the
 * string starts with `Qm` or `1` (go-multiaddr's test), otherwise a multibase
 * CIDv1 whose codec is `libp2p-key` (0x72). Stored as the multihash bytes;
 * printed as base58btc.
 */
const p2p: Transcoder = {
  toBytes: (s) => {
    if (s.startsWith("Qm") || s.startsWith("1")) {
      const mh = Result.mapError(Multibase.baseDecode("base58btc", s), () => ({
        message: `peer id ${JSON.stringify(s)} is not base58btc`
      }))
      return Result.flatMap(mh, validatePeerIdMultihash)
    }
    const cid = Result.flatMap(multibaseDecode(s), cidV1)
    if (Result.isFailure(cid)) {
      return invalid(`peer id ${JSON.stringify(s)} is neither a base58btc multihash nor a CIDv1`)
    }
    if (cid.success.codec !== CID_LIBP2P_KEY) {
      return invalid(`peer id CID has codec 0x${cid.success.codec.toString(16)}, expected libp2p-key (0x72)`)
    }
    return validatePeerIdMultihash(cid.success.multihash)
  },
  toString: (b) => Result.map(validatePeerIdMultihash(b), () => Multibase.baseEncode("base58btc", b))
}

/**
 * Certificate hash (webtransport/webrtc-direct specs): a multibase-encoded
 * multihash (any base on input), printed as base64url (`u` prefix), as go and rust print it.
 */
const certhash: Transcoder = {
  toBytes: (s) => Result.flatMap(multibaseDecode(s), (b) => Result.map(readMultihash(b), () => b)),
  toString: (b) => Result.map(readMultihash(b), () => Multibase.encode("base64url", b))
}

/**
 * `unix` path value: the absolute path. Validation is go-multiaddr's: at least
 * two bytes, starts with `/`, does not end with `/`; plus UTF-8 (rust-multiaddr's
 * rule) so the path can be printed. The string-form rules (rest-of-string vs
 * js-libp2p's percent-encoded segment) live in `Multiaddr.ts`.
 */
const unixPath: Transcoder = (() => {
  const check = (s: string): Result.Result<string, ValueFailure> =>
    s.length < 2 ?
      invalid("unix path too short") :
      !s.startsWith("/") ?
      invalid("unix path must begin with '/'") :
      s.endsWith("/") ?
      invalid("unix path must not end with '/'") :
      !s.isWellFormed() ?
      invalid("unix path contains a lone UTF-16 surrogate") :
      Result.succeed(s)
  return {
    toBytes: (s) => Result.map(check(s), utf8Encode),
    toString: (b) => Result.flatMap(utf8Decode(b), check)
  }
})()

/**
 * `http-path` (multiaddr protocols/http-path.md): the string form is one
 * percent-encoded URI path segment (RFC 3986 §3.3 `segment-nz`); the binary
 * form is the raw path bytes, which must be non-empty.
 *
 * Printing escapes everything but RFC 3986 `unreserved`, as Go's
 * `url.QueryEscape` does, except that a space prints as `%20` (Go prints `+`,
 * which is form encoding, not path encoding). Parsing reads `+` as a literal
 * plus (Go reads a space), following RFC 3986 and rust-multiaddr.
 */
const httpPath: Transcoder = {
  toBytes: (s) =>
    Result.flatMap(percentDecode(s), (b) => b.length === 0 ? invalid("empty http-path") : Result.succeed(b)),
  toString: (b) => b.length === 0 ? invalid("empty http-path") : Result.succeed(percentEncode(b))
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

const port = unsigned(2, "port")
const dns = slashFree("domain name")

const row = (code: number, name: string, size: number, transcoder?: Transcoder, path = false): Protocol =>
  transcoder === undefined ? { code, name, size, path } : { code, name, size, path, transcoder }

/**
 * Every protocol we know, with the multicodec code (table.csv, tag `multiaddr`).
 * `memory` is registered in table.csv as `memorytransport` (0x0309, tag
 * `libp2p`); its value is 8 bytes, big-endian, as go and rust encode it
 * (protocols.csv still says variable length).
 */
export const PROTOCOLS: ReadonlyArray<Protocol> = [
  row(0x04, "ip4", 4, ip4),
  row(0x06, "tcp", 2, port),
  row(0x21, "dccp", 2, port),
  row(0x29, "ip6", 16, ip6),
  row(0x2a, "ip6zone", VARIABLE, slashFree("ip6zone")),
  row(0x2b, "ipcidr", 1, unsigned(1, "ipcidr")),
  row(0x35, "dns", VARIABLE, dns),
  row(0x36, "dns4", VARIABLE, dns),
  row(0x37, "dns6", VARIABLE, dns),
  row(0x38, "dnsaddr", VARIABLE, dns),
  row(0x84, "sctp", 2, port),
  row(0x0111, "udp", 2, port),
  row(0x0113, "p2p-webrtc-star", 0),
  row(0x0114, "p2p-webrtc-direct", 0),
  row(0x0115, "p2p-stardust", 0),
  row(0x0118, "webrtc-direct", 0),
  row(0x0119, "webrtc", 0),
  row(0x0122, "p2p-circuit", 0),
  row(0x012d, "udt", 0),
  row(0x012e, "utp", 0),
  row(0x0190, "unix", VARIABLE, unixPath, true),
  row(0x01a5, "p2p", VARIABLE, p2p),
  row(0x01bb, "https", 0),
  row(0x01bc, "onion", 12, onion(16, 10, "onion")),
  row(0x01bd, "onion3", 37, onion(56, 35, "onion3")),
  row(0x01be, "garlic64", VARIABLE, garlic64),
  row(0x01bf, "garlic32", VARIABLE, garlic32),
  row(0x01c0, "tls", 0),
  row(0x01c1, "sni", VARIABLE, dns),
  row(0x01c6, "noise", 0),
  row(0x01cc, "quic", 0),
  row(0x01cd, "quic-v1", 0),
  row(0x01d1, "webtransport", 0),
  row(0x01d2, "certhash", VARIABLE, certhash),
  row(0x01dd, "ws", 0),
  row(0x01de, "wss", 0),
  row(0x01df, "p2p-websocket-star", 0),
  row(0x01e0, "http", 0),
  row(0x01e1, "http-path", VARIABLE, httpPath),
  row(0x0309, "memory", 8, unsigned(8, "memory")),
  row(0x706c61, "plaintextv2", 0)
]

/** Names accepted on parse for another protocol (printed under the canonical name). */
export const ALIASES: ReadonlyMap<string, string> = new Map([["ipfs", "p2p"]])

export const BY_CODE: ReadonlyMap<number, Protocol> = new Map(PROTOCOLS.map((p) => [p.code, p]))
export const BY_NAME: ReadonlyMap<string, Protocol> = new Map([
  ...PROTOCOLS.map((p) => [p.name, p] as const),
  ...[...ALIASES].map(([alias, name]) => [alias, PROTOCOLS.find((p) => p.name === name)!] as const)
])
