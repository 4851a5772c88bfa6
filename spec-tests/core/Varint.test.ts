import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Varint from "../../src/core/Varint.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

interface VarintVectors {
  readonly valid: ReadonlyArray<{ readonly value: number; readonly hex: string }>
  readonly invalid: ReadonlyArray<{ readonly hex: string; readonly error: string }>
  readonly encoded_size: ReadonlyArray<{ readonly name: string; readonly value: string; readonly bytes: number }>
}
const vectors = readJson<VarintVectors>("varint/unsigned-varint.json")

describe("unsigned-varint spec §Format (vectors)", () => {
  for (const v of vectors.valid) {
    it(`encodes and decodes ${v.value} as ${v.hex}`, () => {
      expect(toHex(Varint.encode(v.value))).toBe(v.hex)
      const decoded = Result.getOrThrow(Varint.decode(fromHex(v.hex)))
      expect(decoded).toEqual({ value: v.value, bytes: v.hex.length / 2 })
    })
  }
  for (const v of vectors.invalid) {
    it(`rejects ${v.hex || "(empty)"}: ${v.error}`, () => {
      expect(Result.isFailure(Varint.decode(fromHex(v.hex)))).toBe(true)
      expect(Result.isFailure(Varint.decodeBigInt(fromHex(v.hex)))).toBe(true)
    })
  }
  for (const v of vectors.encoded_size) {
    const value = BigInt(v.value)
    it(`§Practical maximum: size of ${v.name} (${v.value}) is ${v.bytes} bytes, and > 9 bytes is rejected`, () => {
      if (v.bytes <= Varint.MAX_BYTES) {
        const bytes = Varint.encodeBigInt(value)
        expect(bytes.length).toBe(v.bytes)
        expect(Result.getOrThrow(Varint.decodeBigInt(bytes)).value).toBe(value)
      } else {
        // Go's encoder would emit 10 bytes; a conforming decoder must refuse them.
        const tenBytes = new Uint8Array(10).fill(0xff)
        tenBytes[9] = 0x01
        const r = Varint.decodeBigInt(tenBytes)
        expect(Result.isFailure(r) && r.failure.reason).toBe("Overflow")
      }
    })
  }
})
