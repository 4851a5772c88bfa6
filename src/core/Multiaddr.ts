/**
 * Multiaddr: self-describing, composable network addresses
 * (https://github.com/multiformats/multiaddr, README §Specification).
 *
 * - String form: `(/<protocol name>/<value>)+`, e.g. `/ip4/127.0.0.1/udp/1234`.
 * - Binary form: `(<uvarint protocol code><value>)+`; a value is either of a
 *   fixed size given by the protocol, or prefixed with its uvarint length.
 *
 * The protocol codes come from the multicodec table (table.csv, tag
 * `multiaddr`), which is the authority; protocols.csv in the multiaddr repo can
 * lag. Value formats and the edge cases the spec leaves open follow
 * go-multiaddr, whose conformance vectors (and rust-multiaddr's) the spec tests
 * run. Choices where implementations disagree:
 * - `/ipfs/<id>` is accepted as an alias and printed as `/p2p/<id>` (go, rust).
 * - A `/p2p` value may be a base58btc multihash or a CIDv1 with codec
 *   `libp2p-key` in any multibase (go); it is stored as the multihash and
 *   printed in base58btc (go, rust). rust-multiaddr accepts base58 only.
 * - `/unix` is a path protocol (go): in the spec form the rest of the string is
 *   the path (`/unix/tmp/x.sock` = path `/tmp/x.sock`). js-libp2p's
 *   `@multiformats/multiaddr` 13 writes the path as one percent-encoded
 *   segment (`/unix/%2Ftmp%2Fx.sock`), which can be followed by more
 *   components; we accept that form too (a segment starting with `%2F`), and
 *   print it only when the spec form would be read back differently (the unix
 *   component is not last, or the path's first segment starts with `%2F`).
 *   go rejects binary multiaddrs with a component after `/unix`; we accept them
 *   (js-libp2p builds `/unix/…/p2p/<id>`).
 * - Trailing slashes are ignored (`/ip4/1.2.3.4/tcp/1/` parses, as in go).
 * - Integers (ports, ipcidr, memory): ASCII decimal digits only, leading zeros
 *   accepted and dropped (go's `strconv.ParseUint`; js 13 rejects leading zeros).
 * - `/ip4` takes dotted decimal only and `/ip6` IPv6 text only; go's
 *   `net.ParseIP` would also take `/ip4/::ffff:1.2.3.4` and `/ip6/1.2.3.4`
 *   (rust refuses both, and so do we).
 * - `/memory` is 8 bytes big-endian (go, rust; js 13 writes UTF-8 text).
 * - `/http-path`: `+` is a literal plus and a space prints as `%20` (RFC 3986,
 *   rust); go reads `+` as a space and prints a space as `+`.
 * - Text values (dns*, sni, ip6zone, unix) must be UTF-8 in the binary form
 *   (rust's rule; go accepts any bytes), so every binary multiaddr we accept
 *   has a string form that parses back to the same bytes.
 *
 * A `Multiaddr` is immutable: it holds only its canonical binary form (the
 * source of truth for `toBytes`, `equals` and every derived multiaddr), as a
 * compact string; its components and string form are derived when asked for
 * (issue 6: a connection keeps two multiaddrs alive for its lifetime).
 * `toBytes` returns a copy; `components` are fresh frozen objects whose `bytes`
 * are not shared with the binary form (treat them as read-only all the same).
 *
 * @since 0.1.0
 */
import { Equal, Hash, Option, Pipeable, Predicate, Result, Schema } from "effect"
import { dual } from "effect/Function"
import { NodeInspectSymbol } from "effect/Inspectable"
import * as Strings from "../internal/strings.ts"
import * as Codec from "./internal/multiaddrCodec.ts"
import * as Varint from "./Varint.ts"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * Why a multiaddr was rejected.
 * - `Empty`: no components (`""`, `"/"`, zero bytes).
 * - `InvalidSyntax`: the string does not start with `/`, or has an empty protocol name (`//`).
 * - `UnknownProtocol`: a protocol name or code that is not in the table.
 * - `MissingValue`: the string ended where a protocol needs a value.
 * - `InvalidValue`: a value that its protocol does not accept (in either form).
 * - `InvalidVarint`: a protocol code or length that is not a minimal uvarint of at most 9 bytes.
 * - `Truncated`: the bytes ended inside a component.
 * - `Unsupported`: the multiaddr is valid but not of the shape an operation needs (e.g. {@link toNodeAddress}).
 */
export const MultiaddrErrorReason = Schema.Literals([
  "Empty",
  "InvalidSyntax",
  "UnknownProtocol",
  "MissingValue",
  "InvalidValue",
  "InvalidVarint",
  "Truncated",
  "Unsupported"
])
export type MultiaddrErrorReason = typeof MultiaddrErrorReason.Type

export class MultiaddrError extends Schema.TaggedError<MultiaddrError>()("MultiaddrError", {
  reason: MultiaddrErrorReason,
  message: Schema.String
}) {}

const fail = (reason: MultiaddrErrorReason, message: string): Result.Result<never, MultiaddrError> =>
  Result.fail(new MultiaddrError({ reason, message: `multiaddr: ${message}` }))

const preview = (s: string): string => JSON.stringify(s.length > 80 ? s.slice(0, 77) + "..." : s)

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

/** One `/<name>/<value>` component. */
export interface Component {
  /** Multicodec code of the protocol. */
  readonly code: number
  /** Canonical protocol name (`p2p`, never the `ipfs` alias). */
  readonly name: string
  /**
   * The value in its canonical string form (absent for protocols without a
   * value): `127.0.0.1`, `::1`, `4001`, a base58btc peer id, a base64url
   * certhash, a percent-encoded http-path, and for `unix` the path itself (`/tmp/x.sock`).
   */
  readonly value?: string
  /** The value's binary form, without the protocol code or length prefix (absent for protocols without a value). */
  readonly bytes?: Uint8Array
}

/** Static description of a protocol in the table. */
export interface ProtocolInfo {
  readonly code: number
  readonly name: string
  /** Value size in bytes: 0 = no value, > 0 = fixed, -1 = uvarint length-prefixed. */
  readonly size: number
  /** Whether the string form takes the rest of the address as the value (`unix`). */
  readonly path: boolean
}

const TypeId = "~effect-libp2p/Multiaddr" as const

/** A parsed, validated multiaddr. Compare with {@link equals} or `Equal.equals` (binary equality). */
export interface Multiaddr extends Equal.Equal, Pipeable.Pipeable {
  readonly [TypeId]: typeof TypeId
  /** The components in order (frozen). */
  readonly components: ReadonlyArray<Component>
  /** The canonical string form. */
  toString(): string
  toJSON(): string
}

class MultiaddrImpl extends Pipeable.Class implements Multiaddr {
  declare readonly [TypeId]: typeof TypeId
  /**
   * The canonical binary form, one character per byte (Latin-1 code units
   * 0..255), flat and internalized: the only state of a multiaddr (an idle one
   * costs its object and a string about as long as its bytes, and identical
   * addresses share the string). It is valid: every reader below may assume so.
   * Components and the string form are derived on demand, not cached.
   */
  readonly b: string

  constructor(b: string) {
    super()
    this.b = b
  }

  get components(): ReadonlyArray<Component> {
    const out: Array<Component> = []
    const c = new Cursor(this.b)
    while (c.next()) out.push(componentAt(c))
    return Object.freeze(out)
  }

  override toString(): string {
    return format(this.b)
  }

  toJSON(): string {
    return this.toString()
  }

  [NodeInspectSymbol](): string {
    return `Multiaddr(${this.toString()})`
  }

  [Equal.symbol](that: Equal.Equal): boolean {
    return that instanceof MultiaddrImpl && this.b === that.b
  }

  [Hash.symbol](): number {
    return Hash.string(this.b)
  }
}
Object.defineProperty(MultiaddrImpl.prototype, TypeId, { value: TypeId })

const impl = (ma: Multiaddr): MultiaddrImpl => ma as MultiaddrImpl

/** A multiaddr of a valid binary form (as a binary string). */
const make = (b: string): Multiaddr => new MultiaddrImpl(Strings.flat(b))

const varintToBinary = (n: number): string => Strings.binary(Varint.encode(n))

/**
 * Walks the components of a valid binary form: after each successful `next()`,
 * `code` is the component's protocol code and `start`, `value`, `end` its
 * offsets (where it starts, where its value starts, where it ends).
 */
class Cursor {
  readonly b: string
  code = 0
  start = 0
  value = 0
  end = 0
  constructor(b: string) {
    this.b = b
  }
  next(): boolean {
    if (this.end >= this.b.length) return false
    this.start = this.end
    this.value = this.start
    this.code = this.varint()
    const size = Codec.BY_CODE.get(this.code)!.size
    const length = size === Codec.VARIABLE ? this.varint() : size
    this.end = this.value + length
    return true
  }
  /** The uvarint at `value`, which moves past it. */
  private varint(): number {
    let n = 0
    for (let scale = 1;; scale *= 128) {
      const byte = this.b.charCodeAt(this.value++)
      n += (byte & 0x7f) * scale
      if (!(byte >= 0x80)) return n // (also past the end, which a valid form never reaches)
    }
  }
}

/** The canonical string of value bytes of a valid binary form. */
const valueString = (transcoder: Codec.Transcoder, bytes: Uint8Array): string => {
  const value = transcoder.toString(bytes)
  // A valid binary form has valid values: the fallback is never taken.
  return Result.isSuccess(value) ? value.success : Codec.percentEncode(bytes)
}

/** The component the cursor is on. */
const componentAt = (c: Cursor): Component => {
  const p = Codec.BY_CODE.get(c.code)!
  if (p.transcoder === undefined) return makeComponent(p)
  const bytes = Strings.toBytes(c.b, c.value, c.end)
  return makeComponent(p, valueString(p.transcoder, bytes), bytes)
}

/** Type guard. */
export const isMultiaddr = (u: unknown): u is Multiaddr => Predicate.hasProperty(u, TypeId)

/**
 * The multiaddr with no components. It is the result of decapsulating
 * everything (go returns nil there); it prints as `/` and is not itself
 * parseable (`fromString("/")` and `fromBytes(empty)` fail with `Empty`, as in go).
 */
export const empty: Multiaddr = new MultiaddrImpl("")

/** Whether `ma` has no components. */
export const isEmpty = (ma: Multiaddr): boolean => impl(ma).b.length === 0

// ---------------------------------------------------------------------------
// Protocol table access
// ---------------------------------------------------------------------------

/** Every protocol in the table (canonical names only). */
export const protocols: ReadonlyArray<ProtocolInfo> = Object.freeze(
  Codec.PROTOCOLS.map((p): ProtocolInfo => Object.freeze({ code: p.code, name: p.name, size: p.size, path: p.path }))
)

const INFO_BY_CODE: ReadonlyMap<number, ProtocolInfo> = new Map(protocols.map((p) => [p.code, p]))

/** Look a protocol up by name (aliases such as `ipfs` included). */
export const protocolByName = (name: string): Option.Option<ProtocolInfo> =>
  Option.fromUndefinedOr(INFO_BY_CODE.get(Codec.BY_NAME.get(name)?.code ?? -1))

/** Look a protocol up by multicodec code. */
export const protocolByCode = (code: number): Option.Option<ProtocolInfo> =>
  Option.fromUndefinedOr(INFO_BY_CODE.get(code))

/** Multicodec codes of the protocols, by name (for {@link decapsulateCode} and component matching). */
export const codes = {
  ip4: 0x04,
  tcp: 0x06,
  dccp: 0x21,
  ip6: 0x29,
  ip6zone: 0x2a,
  ipcidr: 0x2b,
  dns: 0x35,
  dns4: 0x36,
  dns6: 0x37,
  dnsaddr: 0x38,
  sctp: 0x84,
  udp: 0x0111,
  "p2p-webrtc-star": 0x0113,
  "p2p-webrtc-direct": 0x0114,
  "p2p-stardust": 0x0115,
  "webrtc-direct": 0x0118,
  webrtc: 0x0119,
  "p2p-circuit": 0x0122,
  udt: 0x012d,
  utp: 0x012e,
  unix: 0x0190,
  p2p: 0x01a5,
  https: 0x01bb,
  onion: 0x01bc,
  onion3: 0x01bd,
  garlic64: 0x01be,
  garlic32: 0x01bf,
  tls: 0x01c0,
  sni: 0x01c1,
  noise: 0x01c6,
  quic: 0x01cc,
  "quic-v1": 0x01cd,
  webtransport: 0x01d1,
  certhash: 0x01d2,
  ws: 0x01dd,
  wss: 0x01de,
  "p2p-websocket-star": 0x01df,
  http: 0x01e0,
  "http-path": 0x01e1,
  memory: 0x0309,
  plaintextv2: 0x706c61
} as const

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

const makeComponent = (p: Codec.Protocol, value?: string, bytes?: Uint8Array): Component =>
  Object.freeze(
    value === undefined || bytes === undefined
      ? { code: p.code, name: p.name }
      : { code: p.code, name: p.name, value, bytes }
  )

/** Binary form of one component: code, length prefix when variable, value. */
const componentToBinary = (p: Codec.Protocol, value: Uint8Array | undefined): string =>
  value === undefined ?
    varintToBinary(p.code) :
    varintToBinary(p.code) + (p.size === Codec.VARIABLE ? varintToBinary(value.length) : "") + Strings.binary(value)

/** The first components of `ma`, up to offset `end` of its binary form. */
const prefix = (ma: Multiaddr, end: number): Multiaddr => {
  if (end === 0) return empty
  const b = impl(ma).b
  return end === b.length ? ma : make(b.slice(0, end))
}

const startsWithEncodedSlash = (segment: string): boolean =>
  segment.length >= 3 && segment.charCodeAt(0) === 0x25 && segment.charCodeAt(1) === 0x32 &&
  (segment.charCodeAt(2) === 0x46 || segment.charCodeAt(2) === 0x66)

const mapValueFailure = (p: Codec.Protocol, f: Codec.ValueFailure): MultiaddrError =>
  new MultiaddrError({ reason: "InvalidValue", message: `multiaddr: /${p.name}: ${f.message}` })

/** Validate value bytes (as strictly in both forms: they must have a canonical string value). */
const checkValue = (
  p: Codec.Protocol,
  transcoder: Codec.Transcoder,
  bytes: Uint8Array
): MultiaddrError | undefined => {
  const value = transcoder.toString(bytes)
  return Result.isFailure(value) ? mapValueFailure(p, value.failure) : undefined
}

/**
 * Parse the string form (multiaddr README §Specification: `(/<protoName>/<value>)+`).
 * Fails with `Empty`, `InvalidSyntax`, `UnknownProtocol`, `MissingValue` or `InvalidValue`.
 */
export const fromString = (input: string): Result.Result<Multiaddr, MultiaddrError> => {
  let end = input.length
  while (end > 0 && input.charCodeAt(end - 1) === 0x2f) end--
  if (end === 0) return fail("Empty", `empty multiaddr ${preview(input)}`)
  if (input.charCodeAt(0) !== 0x2f) return fail("InvalidSyntax", `${preview(input)} must begin with '/'`)
  const parts = input.slice(1, end).split("/")
  let out = ""
  let i = 0
  while (i < parts.length) {
    const name = parts[i++]!
    if (name.length === 0) return fail("InvalidSyntax", `empty protocol name in ${preview(input)}`)
    const p = Codec.BY_NAME.get(name)
    if (p === undefined) return fail("UnknownProtocol", `unknown protocol ${preview(name)}`)
    const transcoder = p.transcoder
    if (transcoder === undefined) {
      out += componentToBinary(p, undefined)
      continue
    }
    if (i >= parts.length) return fail("MissingValue", `/${p.name} needs a value`)
    let bytes: Result.Result<Uint8Array, Codec.ValueFailure>
    const segment = parts[i]!
    if (p.path && startsWithEncodedSlash(segment)) {
      // js-libp2p form: the path is one percent-encoded segment.
      bytes = Codec.percentDecode(segment)
      i++
    } else if (p.path) {
      // Spec form: the rest of the string is the path.
      bytes = transcoder.toBytes("/" + parts.slice(i).join("/"))
      i = parts.length
    } else {
      bytes = transcoder.toBytes(segment)
      i++
    }
    if (Result.isFailure(bytes)) return Result.fail(mapValueFailure(p, bytes.failure))
    const invalid = checkValue(p, transcoder, bytes.success)
    if (invalid !== undefined) return Result.fail(invalid)
    out += componentToBinary(p, bytes.success)
  }
  return Result.succeed(make(out))
}

/**
 * Parse the binary form (multiaddr README §Specification: `(<protoCode uvarint><value []byte>)+`).
 * Each value is validated as strictly as in the string form; a variable-length
 * value may not be empty (go). Fails with `Empty`, `InvalidVarint`,
 * `UnknownProtocol`, `Truncated` or `InvalidValue`.
 */
export const fromBytes = (input: Uint8Array): Result.Result<Multiaddr, MultiaddrError> => {
  if (input.length === 0) return fail("Empty", "empty multiaddr bytes")
  let off = 0
  while (off < input.length) {
    const code = Varint.decode(input, off)
    if (Result.isFailure(code)) {
      return fail(
        code.failure.reason === "Truncated" ? "Truncated" : "InvalidVarint",
        `protocol code at byte ${off}: ${code.failure.message}`
      )
    }
    off += code.success.bytes
    const p = Codec.BY_CODE.get(code.success.value)
    if (p === undefined) return fail("UnknownProtocol", `unknown protocol code ${code.success.value}`)
    const transcoder = p.transcoder
    if (transcoder === undefined) continue
    let size = p.size
    if (size === Codec.VARIABLE) {
      const len = Varint.decode(input, off)
      if (Result.isFailure(len)) {
        return fail(
          len.failure.reason === "Truncated" ? "Truncated" : "InvalidVarint",
          `/${p.name} length: ${len.failure.message}`
        )
      }
      off += len.success.bytes
      size = len.success.value
      if (size === 0) return fail("InvalidValue", `/${p.name} has an empty value`)
    }
    if (off + size > input.length) {
      return fail("Truncated", `/${p.name} value needs ${size} bytes, ${input.length - off} left`)
    }
    const invalid = checkValue(p, transcoder, input.subarray(off, off + size))
    if (invalid !== undefined) return Result.fail(invalid)
    off += size
  }
  return Result.succeed(make(Strings.binary(input)))
}

// ---------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------

/** The canonical string form of a valid binary form (flat: callers may keep it). */
const format = (b: string): string => {
  if (b.length === 0) return "/"
  let out = ""
  const cursor = new Cursor(b)
  while (cursor.next()) {
    const c = componentAt(cursor)
    out += "/" + c.name
    if (c.value === undefined) continue
    if (c.code === codes.unix) {
      const last = cursor.end === b.length
      // Spec form `/unix/a/b` unless it would read back differently; then js-libp2p's form.
      out += last && !startsWithEncodedSlash(c.value.slice(1)) ? c.value : "/" + Codec.percentEncode(c.bytes!)
    } else {
      out += "/" + c.value
    }
  }
  return Strings.flat(out)
}

/** The canonical string form. */
export const toString = (ma: Multiaddr): string => ma.toString()

/**
 * A string that identifies the address: equal for equal addresses, distinct
 * for distinct ones (the binary form, one Latin-1 character per byte; not
 * for display). O(1): a map key, where `toString` would format the address.
 */
export const key = (ma: Multiaddr): string => impl(ma).b

/** The canonical binary form (a fresh copy). */
export const toBytes = (ma: Multiaddr): Uint8Array => {
  const b = impl(ma).b
  return Strings.toBytes(b, 0, b.length)
}

/** The components, in order. */
export const components = (ma: Multiaddr): ReadonlyArray<Component> => ma.components

/** Protocol names, in order (`["ip4", "tcp", "p2p"]`). */
export const protoNames = (ma: Multiaddr): ReadonlyArray<string> => {
  const out: Array<string> = []
  const c = new Cursor(impl(ma).b)
  while (c.next()) out.push(Codec.BY_CODE.get(c.code)!.name)
  return out
}

/** Whether `ma` has a component of protocol `code` (no value is decoded, unlike a search of `components`). */
export const hasCode = (ma: Multiaddr, code: number): boolean => {
  const c = new Cursor(impl(ma).b)
  while (c.next()) if (c.code === code) return true
  return false
}

/**
 * The first `n` components (all when there are fewer): only their values are
 * decoded (a trailing `/p2p/<id>` is not base58-encoded for nothing).
 */
const leading = (ma: Multiaddr, n: number): ReadonlyArray<Component> => {
  const out: Array<Component> = []
  const c = new Cursor(impl(ma).b)
  while (out.length < n && c.next()) out.push(componentAt(c))
  return out
}

/** Protocol codes, in order. */
export const protoCodes = (ma: Multiaddr): ReadonlyArray<number> => {
  const out: Array<number> = []
  const c = new Cursor(impl(ma).b)
  while (c.next()) out.push(c.code)
  return out
}

/** Binary equality (multiaddr protocols/http-path.md: "compare their binary representation"). */
export const equals: {
  (that: Multiaddr): (self: Multiaddr) => boolean
  (self: Multiaddr, that: Multiaddr): boolean
} = dual(2, (self: Multiaddr, that: Multiaddr): boolean => impl(self).b === impl(that).b)

// ---------------------------------------------------------------------------
// Encapsulation
// ---------------------------------------------------------------------------

const encapsulateMultiaddr = (self: Multiaddr, other: Multiaddr): Multiaddr => {
  if (isEmpty(other)) return self
  if (isEmpty(self)) return other
  return make(impl(self).b + impl(other).b)
}

/**
 * `self` followed by `other` (README §Interpreting multiaddrs: each component
 * wraps those on its left). A string argument is parsed first, so the result
 * is then a `Result`.
 */
export const encapsulate: {
  (other: Multiaddr): (self: Multiaddr) => Multiaddr
  (other: string): (self: Multiaddr) => Result.Result<Multiaddr, MultiaddrError>
  (self: Multiaddr, other: Multiaddr): Multiaddr
  (self: Multiaddr, other: string): Result.Result<Multiaddr, MultiaddrError>
} = dual(
  2,
  (self: Multiaddr, other: Multiaddr | string): Multiaddr | Result.Result<Multiaddr, MultiaddrError> =>
    typeof other === "string" ?
      Result.map(fromString(other), (o) => encapsulateMultiaddr(self, o)) :
      encapsulateMultiaddr(self, other)
)

const decapsulateMultiaddr = (self: Multiaddr, other: Multiaddr): Multiaddr => {
  const right = impl(other).b
  if (right.length === 0) return self
  // Components are equal exactly when their binary forms are, and a valid binary
  // form read from a component boundary ends on one: search the boundaries.
  const left = new Cursor(impl(self).b)
  let lastStart = -1
  while (left.next()) if (left.b.startsWith(right, left.start)) lastStart = left.start
  return lastStart < 0 ? self : prefix(self, lastStart)
}

/**
 * Remove the last occurrence of `other` (as a run of whole components) and
 * everything after it; `self` unchanged when `other` does not occur; {@link empty}
 * when it occurs at the start (go-multiaddr's `Decapsulate`). A string argument
 * is parsed first, so the result is then a `Result`.
 */
export const decapsulate: {
  (other: Multiaddr): (self: Multiaddr) => Multiaddr
  (other: string): (self: Multiaddr) => Result.Result<Multiaddr, MultiaddrError>
  (self: Multiaddr, other: Multiaddr): Multiaddr
  (self: Multiaddr, other: string): Result.Result<Multiaddr, MultiaddrError>
} = dual(
  2,
  (self: Multiaddr, other: Multiaddr | string): Multiaddr | Result.Result<Multiaddr, MultiaddrError> =>
    typeof other === "string" ?
      Result.map(fromString(other), (o) => decapsulateMultiaddr(self, o)) :
      decapsulateMultiaddr(self, other)
)

/** Remove the last component with protocol `code` and everything after it; `self` unchanged when absent (js-multiaddr). */
export const decapsulateCode: {
  (code: number): (self: Multiaddr) => Multiaddr
  (self: Multiaddr, code: number): Multiaddr
} = dual(2, (self: Multiaddr, code: number): Multiaddr => {
  const c = new Cursor(impl(self).b)
  let lastStart = -1
  while (c.next()) if (c.code === code) lastStart = c.start
  return lastStart < 0 ? self : prefix(self, lastStart)
})

/**
 * The value of the last `/p2p/<id>` component as its bytes (the peer id's multihash,
 * for `PeerId.fromBytes`), or `undefined`: no base58 round trip, for the dial path.
 */
export const getPeerIdBytes = (ma: Multiaddr): Uint8Array | undefined => {
  const c = new Cursor(impl(ma).b)
  let value = -1
  let end = -1
  while (c.next()) {
    if (c.code === codes.p2p) {
      value = c.value
      end = c.end
    }
  }
  return value < 0 ? undefined : Strings.toBytes(c.b, value, end)
}

/**
 * The value of the last `/p2p/<id>` component (base58btc), or `undefined`.
 * Kept as a string: `PeerId.ts` parses it.
 */
export const getPeerId = (ma: Multiaddr): string | undefined => {
  const bytes = getPeerIdBytes(ma)
  return bytes === undefined ? undefined : valueString(Codec.BY_CODE.get(codes.p2p)!.transcoder!, bytes)
}

// ---------------------------------------------------------------------------
// Transport helpers (go-multiaddr/net semantics)
// ---------------------------------------------------------------------------

/**
 * What a socket needs from a multiaddr. `family` follows Node's `net` option:
 * 4 or 6 for an IP literal or `/dns4` / `/dns6`, 0 ("either") for `/dns`.
 * An IPv6 zone (`/ip6zone/eth0/ip6/fe80::1`) is appended to `host` as `%eth0`.
 */
export interface NodeAddress {
  readonly family: 0 | 4 | 6
  readonly host: string
  readonly port: number
  readonly transport: "tcp" | "udp"
}

/** Drop a leading `/ip6zone/<z>` in front of `/ip6` (go's `zoneless`); Option.none for a zone not followed by ip6. */
const zoneless = (cs: ReadonlyArray<Component>): Option.Option<{ zone?: string; rest: ReadonlyArray<Component> }> => {
  const first = cs[0]
  if (first === undefined) return Option.none()
  if (first.code !== codes.ip6zone) return Option.some({ rest: cs })
  if (cs[1]?.code !== codes.ip6) return Option.none()
  return Option.some({ zone: first.value!, rest: cs.slice(1) })
}

/**
 * The host, port and transport of a multiaddr that starts with
 * `[/ip6zone/<z>]/ip4|ip6|dns|dns4|dns6/<host>/tcp|udp/<port>`; the components
 * after those are ignored (a transport interprets them). `Unsupported` otherwise
 * (e.g. `/dnsaddr`, which needs a TXT lookup first, or no port).
 */
export const toNodeAddress = (ma: Multiaddr): Result.Result<NodeAddress, MultiaddrError> => {
  const unsupported = () => fail("Unsupported", `${ma.toString()} is not <ip4|ip6|dns|dns4|dns6>/<tcp|udp>`)
  const z = zoneless(leading(ma, 3)) // [zone,] host, port
  if (Option.isNone(z)) return unsupported()
  const [host, transportC] = z.value.rest
  if (host === undefined || transportC === undefined || host.value === undefined) return unsupported()
  const family: 0 | 4 | 6 | undefined = host.code === codes.ip4 || host.code === codes.dns4 ?
    4 :
    host.code === codes.ip6 || host.code === codes.dns6 ?
    6 :
    host.code === codes.dns ?
    0 :
    undefined
  if (family === undefined) return unsupported()
  const transport = transportC.code === codes.tcp ? "tcp" : transportC.code === codes.udp ? "udp" : undefined
  if (transport === undefined) return unsupported()
  const hostText = z.value.zone === undefined ? host.value : `${host.value}%${z.value.zone}`
  return Result.succeed({ family, host: hostText, port: Number(transportC.value), transport })
}

/**
 * Inverse of {@link toNodeAddress}: `/ip4|ip6/<host>/tcp|udp/<port>` for an IP
 * literal (a `%zone` suffix becomes a leading `/ip6zone`), otherwise
 * `/dns4|dns6|dns/<host>/…` by `family`.
 */
export const fromNodeAddress = (address: NodeAddress): Result.Result<Multiaddr, MultiaddrError> => {
  const { family, host, port, transport } = address
  if (!Number.isInteger(port) || port < 0 || port > 65535) return fail("InvalidValue", `port ${port} is not 0..65535`)
  const percent = host.indexOf("%")
  const bare = percent < 0 ? host : host.slice(0, percent)
  let prefix: string
  if (Codec.parseIp4(bare) !== undefined && percent < 0) {
    prefix = `/ip4/${bare}`
  } else if (Codec.parseIp6(bare) !== undefined) {
    prefix = percent < 0 ? `/ip6/${bare}` : `/ip6zone/${host.slice(percent + 1)}/ip6/${bare}`
  } else {
    prefix = `/${family === 4 ? "dns4" : family === 6 ? "dns6" : "dns"}/${host}`
  }
  return fromString(`${prefix}/${transport}/${port}`)
}

/** The first address component, skipping a leading zone (go's `zoneless` + first component). */
const firstHost = (ma: Multiaddr): Component | undefined => {
  const z = zoneless(leading(ma, 2))
  return Option.isNone(z) ? undefined : z.value.rest[0]
}

/** The IP of the first component as IPv4 bytes (IPv4-mapped IPv6 unwrapped), or IPv6 bytes. */
const firstIp = (ma: Multiaddr): { readonly v4?: Uint8Array; readonly v6?: Uint8Array } | undefined => {
  const c = firstHost(ma)
  if (c?.bytes === undefined) return undefined
  if (c.code === codes.ip4) return { v4: c.bytes }
  if (c.code === codes.ip6) return Codec.isIp4Mapped(c.bytes) ? { v4: c.bytes.subarray(12) } : { v6: c.bytes }
  return undefined
}

/**
 * The IP the address starts with (after an optional `/ip6zone`): 4 bytes for
 * IPv4 (an IPv4-mapped IPv6 address unwrapped, as {@link isPrivate} judges
 * it), 16 for IPv6; `undefined` when the address does not start with an IP.
 * The bytes are the component's own (read them, do not write).
 */
export const ipBytes = (ma: Multiaddr): Uint8Array | undefined => {
  const ip = firstIp(ma)
  return ip === undefined ? undefined : ip.v4 ?? ip.v6
}

const inPrefix = (ip: Uint8Array, net: ReadonlyArray<number>, bits: number): boolean => {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3
    const bit = 0x80 >> (i & 7)
    if (((ip[byte]! ^ (net[byte] ?? 0)) & bit) !== 0) return false
  }
  return true
}

/**
 * "Thin waist" address (go-multiaddr/net `IsThinWaist`): `/ip4|ip6` (after an
 * optional zone), optionally followed by `/tcp`, `/udp`, `/ip4` or `/ip6`.
 */
export const isThinWaist = (ma: Multiaddr): boolean => {
  const z = zoneless(leading(ma, 3))
  if (Option.isNone(z)) return false
  const [a, b] = z.value.rest
  if (a === undefined || (a.code !== codes.ip4 && a.code !== codes.ip6)) return false
  return b === undefined || b.code === codes.tcp || b.code === codes.udp || b.code === codes.ip4 || b.code === codes.ip6
}

/**
 * Starts with a loopback IP (go-multiaddr/net `IsIPLoopback`): 127.0.0.0/8,
 * ::1, or ::ffff:127.0.0.0/104; a leading ip6zone is skipped.
 */
export const isLoopback = (ma: Multiaddr): boolean => {
  const ip = firstIp(ma)
  if (ip?.v4 !== undefined) return ip.v4[0] === 127
  if (ip?.v6 !== undefined) return inPrefix(ip.v6, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128)
  return false
}

/** Starts with the unspecified address (0.0.0.0 or ::), as used for "listen on all interfaces". */
export const isUnspecified = (ma: Multiaddr): boolean => {
  const c = firstHost(ma)
  return c?.bytes !== undefined && (c.code === codes.ip4 || c.code === codes.ip6) && c.bytes.every((b) => b === 0)
}

const PRIVATE4: ReadonlyArray<readonly [ReadonlyArray<number>, number]> = [
  [[127], 8], // loopback
  [[10], 8], // RFC 1918
  [[100, 64], 10], // RFC 6598 shared address space (CGNAT)
  [[172, 16], 12], // RFC 1918
  [[192, 168], 16], // RFC 1918
  [[169, 254], 16] // link local
]
const PRIVATE6: ReadonlyArray<readonly [ReadonlyArray<number>, number]> = [
  [[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 128], // loopback
  [[0xfc], 7], // unique local
  [[0xfe, 0x80], 10] // link local
]

/**
 * The address part is in a private network (go-multiaddr/net `IsPrivateAddr`):
 * IPv4 127/8, 10/8, 100.64/10, 172.16/12, 192.168/16, 169.254/16; IPv6 ::1,
 * fc00::/7, fe80::/10; `/dns*` names `localhost` and `*.localhost`. Unlike go,
 * an IPv4-mapped IPv6 address is judged by its IPv4 part.
 */
export const isPrivate = (ma: Multiaddr): boolean => {
  const c = firstHost(ma)
  if (c === undefined) return false
  if (c.code === codes.dns || c.code === codes.dns4 || c.code === codes.dns6 || c.code === codes.dnsaddr) {
    return c.value === "localhost" || c.value!.endsWith(".localhost")
  }
  const ip = firstIp(ma)
  if (ip?.v4 !== undefined) return PRIVATE4.some(([net, bits]) => inPrefix(ip.v4!, net, bits))
  if (ip?.v6 !== undefined) return PRIVATE6.some(([net, bits]) => inPrefix(ip.v6!, net, bits))
  return false
}
