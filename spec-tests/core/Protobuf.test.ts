import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Protobuf from "../../src/core/Protobuf.ts"
import { fromHex, toHex } from "../support/vectors.ts"

const proto3 = Protobuf.define(`
syntax = "proto3";
package test;
message Inner { bytes data = 1; uint64 n = 2; }
message Outer {
  bytes b = 1;
  uint64 u = 2;
  int64 i = 3;
  sint64 s = 4;
  fixed64 f = 5;
  string str = 6;
  bool flag = 7;
  uint32 small = 8;
  repeated bytes many = 9;
  repeated uint64 nums = 10;
  Inner inner = 11;
  repeated Inner inners = 12;
  optional bytes maybe = 13;
  optional uint64 maybeN = 14;
}
`)

interface Inner {
  readonly data: Uint8Array
  readonly n: bigint
}
interface Outer {
  readonly b: Uint8Array
  readonly u: bigint
  readonly i: bigint
  readonly s: bigint
  readonly f: bigint
  readonly str: string
  readonly flag: boolean
  readonly small: number
  readonly many: ReadonlyArray<Uint8Array>
  readonly nums: ReadonlyArray<bigint>
  readonly inner?: Inner
  readonly inners: ReadonlyArray<Inner>
  readonly maybe?: Uint8Array
  readonly maybeN?: bigint
}
const Outer = proto3.codec<Outer>("test.Outer")
const Inner = proto3.codec<Inner>("test.Inner")
const CanonicalInner = proto3.codec<Inner>("test.Inner", { canonical: true })

const proto2 = Protobuf.define(`
syntax = "proto2";
message Req { required uint32 a = 1; optional bytes b = 2; }
`)
const Req = proto2.codec<{ readonly a: number; readonly b?: Uint8Array }>("Req")

const empty: Outer = {
  b: new Uint8Array(0),
  u: 0n,
  i: 0n,
  s: 0n,
  f: 0n,
  str: "",
  flag: false,
  small: 0,
  many: [],
  nums: [],
  inners: []
}

describe("protobuf encoding §Scalar types: 64-bit integers are bigint", () => {
  it("uint64 2^64-1, int64 -1, sint64 -2^63 and fixed64 round-trip with their wire bytes", () => {
    const value: Outer = { ...empty, u: (1n << 64n) - 1n, i: -1n, s: -(1n << 63n), f: 0x0102030405060708n }
    const bytes = Outer.encode(value)
    // u: field 2 varint, ten bytes; i: -1 as ten-byte varint; s: zigzag(-2^63) = 2^64-1; f: fixed 8 LE bytes
    expect(toHex(bytes)).toBe(
      "10ffffffffffffffffff01" + "18ffffffffffffffffff01" + "20ffffffffffffffffff01" + "290807060504030201"
    )
    expect(Result.getOrThrow(Outer.decode(bytes))).toEqual(value)
  })
  it("a real go-libp2p seq above 2^53 (1598453001624231000) survives exactly", () => {
    const bytes = Inner.encode({ data: new Uint8Array(0), n: 1598453001624231000n })
    expect(toHex(bytes)).toBe("10d8b8e0bf9391b69716")
    expect(Result.getOrThrow(Inner.decode(bytes)).n).toBe(1598453001624231000n)
  })
})

describe("protobuf encoding §Default values (proto3): absent fields", () => {
  it("the empty message decodes to defaults: empty Uint8Array, 0n, \"\", false, 0, [] and no optional fields", () => {
    const decoded = Result.getOrThrow(Outer.decode(new Uint8Array(0)))
    expect(decoded).toStrictEqual(empty)
    expect(decoded.b).toBeInstanceOf(Uint8Array)
    expect("inner" in decoded).toBe(false)
    expect("maybe" in decoded).toBe(false)
  })
  it("defaults are not written (canonical proto3), but explicit optional fields are, even when empty", () => {
    expect(Outer.encode(empty).length).toBe(0)
    expect(toHex(Outer.encode({ ...empty, maybe: new Uint8Array(0), maybeN: 0n }))).toBe("6a007000")
    const decoded = Result.getOrThrow(Outer.decode(fromHex("6a007000")))
    expect(decoded.maybe).toEqual(new Uint8Array(0))
    expect(decoded.maybeN).toBe(0n)
  })
})

describe("protobuf encoding §Length-delimited: bytes, nested and repeated messages", () => {
  it("bytes come out as plain Uint8Array views even from a Node Buffer input", () => {
    const value: Outer = {
      ...empty,
      b: Uint8Array.of(1, 2, 3),
      many: [Uint8Array.of(4), new Uint8Array(0)],
      nums: [0n, 300n],
      inner: { data: Uint8Array.of(9), n: 7n },
      inners: [{ data: new Uint8Array(0), n: 0n }, { data: Uint8Array.of(8), n: 1n }]
    }
    const bytes = Outer.encode(value)
    const decoded = Result.getOrThrow(Outer.decode(Buffer.from(bytes)))
    expect(decoded).toStrictEqual(value)
    expect(decoded.b.constructor).toBe(Uint8Array)
    expect(decoded.inner!.data.constructor).toBe(Uint8Array)
  })
  it("unknown fields are skipped by a default codec", () => {
    const withUnknown = Uint8Array.of(...Inner.encode({ data: Uint8Array.of(1), n: 2n }), 0x1a, 0x01, 0xff)
    expect(Result.getOrThrow(Inner.decode(withUnknown))).toEqual({ data: Uint8Array.of(1), n: 2n })
  })
})

describe("protobuf errors are typed, never thrown", () => {
  const reason = <A>(
    r: Result.Result<A, Protobuf.ProtobufError>
  ) => (Result.isFailure(r) ? r.failure.reason : undefined)
  it("truncated input, a length past the end, an invalid wire type: Malformed", () => {
    expect(reason(Outer.decode(fromHex("0a05")))).toBe("Malformed")
    expect(reason(Outer.decode(fromHex("10ff")))).toBe("Malformed")
    expect(reason(Outer.decode(fromHex("0f")))).toBe("Malformed")
    expect(reason(Outer.decode(fromHex("32028080")))).toBe("Malformed") // invalid UTF-8 in a proto3 string
  })
  it("a missing proto2 required field: MissingRequired", () => {
    expect(reason(Req.decode(fromHex("1200")))).toBe("MissingRequired")
    expect(Result.getOrThrow(Req.decode(fromHex("0801")))).toEqual({ a: 1 })
  })
  it("a canonical codec rejects padded varints, reordered, duplicate and unknown fields: NonCanonical", () => {
    const good = CanonicalInner.encode({ data: Uint8Array.of(1), n: 2n })
    expect(toHex(good)).toBe("0a01011002")
    expect(Result.isSuccess(CanonicalInner.decode(good))).toBe(true)
    // padded varint, reordered, duplicate field, unknown field, trailing zero tag
    for (const hex of ["0a0101108200", "10020a0101", "0a01010a01011002", "0a010110021801", "0a0101100200"]) {
      expect(Result.isFailure(CanonicalInner.decode(fromHex(hex))), hex).toBe(true)
    }
    expect(Result.getOrThrow(Inner.decode(fromHex("0a0101108200")))).toEqual({ data: Uint8Array.of(1), n: 2n })
    expect(reason(CanonicalInner.decode(fromHex("10020a0101")))).toBe("NonCanonical")
    expect(reason(CanonicalInner.decode(fromHex("0a010110021801")))).toBe("NonCanonical")
    // an explicitly encoded default is not canonical proto3 either
    expect(reason(CanonicalInner.decode(fromHex("0a00")))).toBe("NonCanonical")
  })
})
