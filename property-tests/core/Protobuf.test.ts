import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as Protobuf from "../../src/core/Protobuf.ts"

const proto = Protobuf.define(`
syntax = "proto3";
message Inner { bytes data = 1; uint64 n = 2; }
message Msg {
  bytes b = 1;
  uint64 u = 2;
  int64 i = 3;
  sint64 s = 4;
  string str = 5;
  bool flag = 6;
  uint32 small = 7;
  repeated bytes many = 8;
  repeated uint64 nums = 9;
  repeated Inner inners = 10;
  optional Inner inner = 11;
  optional bytes maybe = 12;
}
`)
interface Inner {
  readonly data: Uint8Array
  readonly n: bigint
}
interface Msg {
  readonly b: Uint8Array
  readonly u: bigint
  readonly i: bigint
  readonly s: bigint
  readonly str: string
  readonly flag: boolean
  readonly small: number
  readonly many: ReadonlyArray<Uint8Array>
  readonly nums: ReadonlyArray<bigint>
  readonly inners: ReadonlyArray<Inner>
  readonly inner?: Inner
  readonly maybe?: Uint8Array
}
const Lenient = proto.codec<Msg>("Msg")
const Canonical = proto.codec<Msg>("Msg", { canonical: true })

const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })
const i64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n })
const inner = fc.record({ data: fc.uint8Array({ maxLength: 20 }), n: u64 }, { noNullPrototype: true })
const msg: fc.Arbitrary<Msg> = fc.record(
  {
    b: fc.uint8Array({ maxLength: 40 }),
    u: u64,
    i: i64,
    s: i64,
    str: fc.string({ maxLength: 20 }),
    flag: fc.boolean(),
    small: fc.nat({ max: 0xffffffff }),
    many: fc.array(fc.uint8Array({ maxLength: 10 }), { maxLength: 4 }),
    nums: fc.array(u64, { maxLength: 4 }),
    inners: fc.array(inner, { maxLength: 3 }),
    inner,
    maybe: fc.uint8Array({ maxLength: 10 })
  },
  { requiredKeys: ["b", "u", "i", "s", "str", "flag", "small", "many", "nums", "inners"], noNullPrototype: true }
)

describe("protobuf codec properties (protobuf encoding spec)", () => {
  it("round-trip: decode(encode(m)) = m, with bytes as Uint8Array and 64-bit integers as bigint", () => {
    fc.assert(
      fc.property(msg, (m) => {
        const bytes = Lenient.encode(m)
        expect(Result.getOrThrow(Lenient.decode(bytes))).toStrictEqual(m)
        expect(Result.getOrThrow(Canonical.decode(bytes))).toStrictEqual(m)
      })
    )
  })

  it("deterministic: equal values encode to equal bytes, and a decoded value re-encodes to its input (canonical codec)", () => {
    fc.assert(
      fc.property(msg, (m) => {
        const bytes = Lenient.encode(m)
        const again = Lenient.encode(Result.getOrThrow(Lenient.decode(bytes)))
        expect(again).toEqual(bytes)
      })
    )
  })

  it("arbitrary bytes never crash decode; a canonical success re-encodes to exactly the input", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (bytes) => {
        const lenient = Lenient.decode(bytes)
        if (Result.isFailure(lenient)) expect(lenient.failure._tag).toBe("ProtobufError")
        const canonical = Canonical.decode(bytes)
        if (Result.isSuccess(canonical)) expect(Canonical.encode(canonical.success)).toEqual(bytes)
        else expect(canonical.failure._tag).toBe("ProtobufError")
      }),
      { numRuns: 2000 }
    )
  })

  it("a valid encoding with one byte changed still decodes or fails typed, never throws", () => {
    fc.assert(
      fc.property(msg, fc.nat(), fc.integer({ min: 1, max: 255 }), (m, at, delta) => {
        const bytes = Lenient.encode(m)
        fc.pre(bytes.length > 0)
        bytes[at % bytes.length] = (bytes[at % bytes.length]! + delta) & 0xff
        const r = Lenient.decode(bytes)
        if (Result.isFailure(r)) expect(r.failure._tag).toBe("ProtobufError")
      }),
      { numRuns: 500 }
    )
  })
})
