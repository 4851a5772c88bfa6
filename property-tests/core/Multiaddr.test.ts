/**
 * Multiaddr properties implied by the multiaddr spec (README §Specification):
 * the string and binary forms are two encodings of one value, so
 * - every valid binary multiaddr prints to a string that parses back to the same bytes;
 * - every valid string parses to bytes that print to a canonical string, which is a fixed point;
 * - encapsulation is concatenation of binary forms, and decapsulating what was
 *   just encapsulated gives the original (README §Interpreting multiaddrs);
 * - any input, however malformed, yields a multiaddr or a typed `MultiaddrError`, never a throw.
 * Generators build values per protocol (the protocol table is checked against
 * the multicodec table in spec-tests/core/Multiaddr.test.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import { Option, Result } from "effect"
import fc from "fast-check"
import { base58btc } from "multiformats/bases/base58"
import { base64url } from "multiformats/bases/base64"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Varint from "../../src/core/Varint.ts"

const utf8 = (s: string) => new TextEncoder().encode(s)
const concat = (parts: ReadonlyArray<Uint8Array>) => Uint8Array.from(parts.flatMap((p) => [...p]))
const sizeOf = (name: string) => Option.getOrThrow(Multiaddr.protocolByName(name)).size
const codeOf = (name: string) => Option.getOrThrow(Multiaddr.protocolByName(name)).code

/** Binary component per README §Specification: uvarint code, uvarint length if variable, value. */
const encodeComponent = (name: string, value?: Uint8Array): Uint8Array =>
  concat([
    Varint.encode(codeOf(name)),
    ...(value === undefined ? [] : sizeOf(name) === -1 ? [Varint.encode(value.length), value] : [value])
  ])

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })
const u16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff)

/** Well-formed text (any code point) that is not empty and has no '/'. */
const slashFreeText = fc.string({ unit: "binary", minLength: 1, maxLength: 12 }).filter((s) => !s.includes("/"))

const unixSegment = fc.oneof(
  fc.string({ unit: "binary", maxLength: 6 }).map((s) => s.replaceAll("/", "")),
  // segments that look like js-libp2p's percent-encoded form must still round-trip
  fc.constantFrom("%2F", "%2fx", "%2Ftmp%2Fx", "%", "%zz", "a%2F")
)
const unixPath = fc
  .array(unixSegment, { minLength: 1, maxLength: 4 })
  .map((segments) => "/" + segments.join("/"))
  .filter((p) => p.length >= 2 && !p.endsWith("/"))

const sha256Multihash = bytes(32).map((d) => concat([Uint8Array.of(0x12, 0x20), d]))
const identityMultihash = fc.uint8Array({ maxLength: 42 }).map((d) => concat([Uint8Array.of(0x00, d.length), d]))
const anyMultihash = fc
  .tuple(fc.nat({ max: 0x3fff }), fc.uint8Array({ maxLength: 64 }))
  .map(([code, d]) => concat([Varint.encode(code), Varint.encode(d.length), d]))

const ip6Bytes = fc.oneof(
  bytes(16),
  // zero runs, IPv4-mapped, loopback: the interesting shapes for RFC 5952 compression
  fc.array(fc.constantFrom(0, 0, 0, 1, 0xffff, 0xabcd), { minLength: 8, maxLength: 8 }).map((gs) =>
    concat(gs.map(u16))
  ),
  bytes(4).map((v4) => concat([new Uint8Array(10), Uint8Array.of(0xff, 0xff), v4]))
)

/** A valid component in binary form, one arbitrary per protocol of the table. */
const binaryComponent: fc.Arbitrary<Uint8Array> = fc.oneof(
  bytes(4).map((v) => encodeComponent("ip4", v)),
  ip6Bytes.map((v) => encodeComponent("ip6", v)),
  fc.constantFrom("tcp", "udp", "dccp", "sctp").chain((n) => bytes(2).map((v) => encodeComponent(n, v))),
  bytes(1).map((v) => encodeComponent("ipcidr", v)),
  bytes(8).map((v) => encodeComponent("memory", v)),
  fc.constantFrom("dns", "dns4", "dns6", "dnsaddr", "sni", "ip6zone").chain((n) =>
    slashFreeText.map((s) => encodeComponent(n, utf8(s)))
  ),
  unixPath.map((p) => encodeComponent("unix", utf8(p))),
  fc.oneof(sha256Multihash, identityMultihash).map((mh) => encodeComponent("p2p", mh)),
  anyMultihash.map((mh) => encodeComponent("certhash", mh)),
  fc.tuple(bytes(10), fc.integer({ min: 1, max: 65535 })).map(([h, p]) =>
    encodeComponent("onion", concat([h, u16(p)]))
  ),
  fc.tuple(bytes(35), fc.integer({ min: 1, max: 65535 })).map(([h, p]) =>
    encodeComponent("onion3", concat([h, u16(p)]))
  ),
  fc.uint8Array({ minLength: 386, maxLength: 400 }).map((v) => encodeComponent("garlic64", v)),
  fc.oneof(bytes(32), fc.uint8Array({ minLength: 35, maxLength: 40 })).map((v) => encodeComponent("garlic32", v)),
  fc.uint8Array({ minLength: 1, maxLength: 24 }).map((v) => encodeComponent("http-path", v)),
  fc.constantFrom(...Multiaddr.protocols.filter((p) => p.size === 0).map((p) => p.name)).map((n) => encodeComponent(n))
)

const binaryMultiaddr = fc.array(binaryComponent, { minLength: 1, maxLength: 6 }).map(concat)

// Canonical string forms, written independently of the codec under test.
const port = fc.integer({ min: 0, max: 65535 }).map(String)
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/)
const stringComponent: fc.Arbitrary<string> = fc.oneof(
  bytes(4).map((b) => `/ip4/${[...b].join(".")}`),
  // WHATWG URL host serialisation is RFC 5952 compression, except for IPv4-mapped addresses
  // (which RFC 5952 §5 and go print as ::ffff:a.b.c.d).
  ip6Bytes.map((b) => {
    const groups = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(":")
    const mapped = b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff
    return mapped
      ? `/ip6/::ffff:${[...b.subarray(12)].join(".")}`
      : `/ip6/${new URL(`http://[${groups}]`).hostname.slice(1, -1)}`
  }),
  fc.constantFrom("tcp", "udp", "dccp", "sctp").chain((n) => port.map((p) => `/${n}/${p}`)),
  fc.array(label, { minLength: 1, maxLength: 3 }).chain((ls) =>
    fc.constantFrom("dns", "dns4", "dns6", "dnsaddr", "sni").map((n) => `/${n}/${ls.join(".")}`)
  ),
  sha256Multihash.map((mh) => `/p2p/${base58btc.baseEncode(mh)}`),
  sha256Multihash.map((mh) => `/certhash/${base64url.encode(mh)}`),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((n) => `/memory/${n}`),
  fc.integer({ min: 0, max: 255 }).map((n) => `/ipcidr/${n}`),
  fc.stringMatching(/^[A-Za-z0-9._~-]{1,10}$/).map((s) => `/http-path/${s}`),
  fc.constantFrom(...Multiaddr.protocols.filter((p) => p.size === 0).map((p) => `/${p.name}`))
)
const unixTail = fc
  .array(fc.stringMatching(/^[a-z0-9._-]{1,8}$/), { minLength: 1, maxLength: 3 })
  .map((segments) => `/unix/${segments.join("/")}`)
const canonicalString = fc
  .tuple(fc.array(stringComponent, { minLength: 1, maxLength: 6 }), fc.option(unixTail, { nil: undefined }))
  .map(([cs, unix]) => cs.join("") + (unix ?? ""))

const isTypedFailure = (r: Result.Result<Multiaddr.Multiaddr, Multiaddr.MultiaddrError>) =>
  Result.isFailure(r) && r.failure._tag === "MultiaddrError" &&
  Multiaddr.MultiaddrErrorReason.literals.includes(r.failure.reason)

describe("multiaddr properties (README §Specification: two encodings of one value)", () => {
  it("bytes -> string -> bytes is the identity for every valid binary multiaddr", () => {
    fc.assert(
      fc.property(binaryMultiaddr, (b) => {
        const ma = Result.getOrThrow(Multiaddr.fromBytes(b))
        expect(Multiaddr.toBytes(ma)).toEqual(b)
        const reparsed = Result.getOrThrow(Multiaddr.fromString(ma.toString()))
        expect(Multiaddr.toBytes(reparsed)).toEqual(b)
        expect(reparsed.toString()).toBe(ma.toString())
      }),
      { numRuns: 2000 }
    )
  })

  it("string -> bytes -> string is the identity on canonical strings", () => {
    fc.assert(
      fc.property(canonicalString, (s) => {
        const ma = Result.getOrThrow(Multiaddr.fromString(s))
        expect(ma.toString()).toBe(s)
        expect(Result.getOrThrow(Multiaddr.fromBytes(Multiaddr.toBytes(ma))).toString()).toBe(s)
      }),
      { numRuns: 2000 }
    )
  })

  it("ip6: every address parses back from its printed form (RFC 5952), also from the uncompressed form", () => {
    fc.assert(
      fc.property(ip6Bytes, (b) => {
        const full = Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16).toUpperCase())
          .join(":")
        const ma = Result.getOrThrow(Multiaddr.fromString(`/ip6/${full}`))
        expect(ma.components[0]!.bytes).toEqual(b)
        expect(Multiaddr.toBytes(Result.getOrThrow(Multiaddr.fromString(ma.toString())))).toEqual(Multiaddr.toBytes(ma))
      })
    )
  })

  it("a string's canonical form is a fixed point for any string that parses", () => {
    fc.assert(
      fc.property(canonicalString, fc.constantFrom("", "/", "//"), (s, suffix) => {
        const ma = Result.getOrThrow(Multiaddr.fromString(s + suffix))
        const canonical = ma.toString()
        expect(Result.getOrThrow(Multiaddr.fromString(canonical)).toString()).toBe(canonical)
      })
    )
  })
})

describe("multiaddr properties (README §Interpreting multiaddrs: encapsulation)", () => {
  const ma = binaryMultiaddr.map((b) => Result.getOrThrow(Multiaddr.fromBytes(b)))

  it("encapsulate concatenates the binary forms; decapsulate undoes it", () => {
    fc.assert(
      fc.property(ma, ma, (a, b) => {
        const ab = Multiaddr.encapsulate(a, b)
        expect(Multiaddr.toBytes(ab)).toEqual(concat([Multiaddr.toBytes(a), Multiaddr.toBytes(b)]))
        expect(ab.components.length).toBe(a.components.length + b.components.length)
        expect(Multiaddr.equals(Multiaddr.decapsulate(ab, b), a)).toBe(true)
        // The concatenated bytes parse on their own, and to the same components.
        expect(Multiaddr.equals(Result.getOrThrow(Multiaddr.fromBytes(Multiaddr.toBytes(ab))), ab)).toBe(true)
      }),
      { numRuns: 500 }
    )
  })

  it("encapsulate is associative; decapsulateCode removes an appended /p2p", () => {
    const p2p = sha256Multihash.map((mh) => Result.getOrThrow(Multiaddr.fromBytes(encodeComponent("p2p", mh))))
    fc.assert(
      fc.property(ma, ma, ma, p2p, (a, b, c, id) => {
        const left = Multiaddr.encapsulate(Multiaddr.encapsulate(a, b), c)
        const right = Multiaddr.encapsulate(a, Multiaddr.encapsulate(b, c))
        expect(Multiaddr.equals(left, right)).toBe(true)
        const withId = Multiaddr.encapsulate(a, id)
        expect(Multiaddr.equals(Multiaddr.decapsulateCode(withId, Multiaddr.codes.p2p), a)).toBe(true)
        expect(Multiaddr.getPeerId(withId)).toBe(id.components[0]!.value)
      }),
      { numRuns: 300 }
    )
  })
})

describe("multiaddr properties: malformed input is a typed failure, never a throw", () => {
  it("arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const r = Multiaddr.fromBytes(b)
        if (Result.isSuccess(r)) expect(Multiaddr.toBytes(r.success)).toEqual(b)
        else expect(isTypedFailure(r)).toBe(true)
      }),
      { numRuns: 5000 }
    )
  })

  it("valid components with corrupted bytes (flipped, truncated, extended)", () => {
    fc.assert(
      fc.property(
        binaryMultiaddr,
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.constantFrom("flip", "cut", "append"),
        (b, at, x, how) => {
          const i = b.length === 0 ? 0 : at % b.length
          const mutated = how === "flip" ?
            b.map((v, j) => (j === i ? v ^ (x | 1) : v)) :
            how === "cut" ?
            b.subarray(0, i) :
            concat([b, Uint8Array.of(x)])
          const r = Multiaddr.fromBytes(mutated)
          if (Result.isSuccess(r)) {
            expect(Multiaddr.toBytes(r.success)).toEqual(mutated)
            expect(Multiaddr.toBytes(Result.getOrThrow(Multiaddr.fromString(r.success.toString())))).toEqual(mutated)
          } else {
            expect(isTypedFailure(r)).toBe(true)
          }
        }
      ),
      { numRuns: 3000 }
    )
  })

  it("arbitrary strings, and strings made of protocol names and junk values", () => {
    const names = fc.constantFrom(...Multiaddr.protocols.map((p) => p.name), "ipfs", "", "IP4")
    const junk = fc.oneof(
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.stringMatching(/^[0-9a-fA-F:.%]{0,20}$/),
      fc.constantFrom("%2F", "%2Ftmp%2Fx", "%", "%zz", "::", "-1", "+1", "0", "65536", "1.2.3.4", "::1%eth0")
    )
    const structured = fc.array(fc.tuple(names, fc.option(junk, { nil: undefined })), { maxLength: 5 }).map((parts) =>
      parts.map(([n, v]) => `/${n}${v === undefined ? "" : "/" + v}`).join("")
    )
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary" }), structured), (s) => {
        const r = Multiaddr.fromString(s)
        if (Result.isSuccess(r)) {
          const canonical = r.success.toString()
          expect(Multiaddr.toBytes(Result.getOrThrow(Multiaddr.fromString(canonical)))).toEqual(
            Multiaddr.toBytes(r.success)
          )
        } else {
          expect(isTypedFailure(r)).toBe(true)
        }
      }),
      { numRuns: 5000 }
    )
  })
})
