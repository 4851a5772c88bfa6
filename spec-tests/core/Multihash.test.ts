import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Multibase from "../../src/core/Multibase.ts"
import * as Multihash from "../../src/core/Multihash.ts"
import { fromHex, readJson, readText, toHex } from "../support/vectors.ts"

/** test_cases.csv names sha3-512 by its legacy name `sha3`. */
const nameOf = (algorithm: string): Multihash.HashName =>
  (algorithm === "sha3" ? "sha3-512" : algorithm) as Multihash.HashName

const cases = readText("multihash/test_cases.csv")
  .split("\n")
  .slice(1)
  .filter((l) => l.trim() !== "")
  .map((l) => {
    const [algorithm, bits, input, multihash] = l.split(",").map((c) => c.trim())
    return { algorithm: algorithm!, bits: Number(bits), input: input!, multihash: multihash! }
  })

interface ReadmeExample {
  readonly function: string
  readonly code: string
  readonly input_utf8: string
  readonly hex: string
  readonly base32: string
  readonly base58btc: string
  readonly base64: string
}
const readme = readJson<{
  readonly examples: ReadonlyArray<ReadmeExample>
  readonly binary_example: { readonly bits: string }
}>("multihash/readme-examples.json")

describe("multihash §Format: tests/values/test_cases.csv (input hashed as its ASCII text)", () => {
  it("the file has the 260 cases the collector checked", () => {
    expect(cases.length).toBe(260)
  })
  for (const c of cases) {
    it(`${c.algorithm} truncated to ${c.bits} bits of "${c.input.slice(0, 12)}…"`, () => {
      const ascii = new TextEncoder().encode(c.input)
      const mh = Result.getOrThrow(Multihash.digest(nameOf(c.algorithm), ascii, c.bits / 8))
      expect(toHex(mh.bytes)).toBe(c.multihash)
      const decoded = Result.getOrThrow(Multihash.decode(fromHex(c.multihash)))
      expect(decoded.code).toBe(Multihash.codes[nameOf(c.algorithm)])
      expect(decoded.digest.length).toBe(c.bits / 8)
    })
  }
})

describe("multihash README §Example", () => {
  for (const e of readme.examples) {
    it(`${e.function} of "${e.input_utf8}" in hex, base32, base58btc and base64`, () => {
      const mh = Result.getOrThrow(
        Multihash.digest(e.function as Multihash.HashName, new TextEncoder().encode(e.input_utf8))
      )
      expect(mh.code).toBe(Number(e.code))
      expect(toHex(mh.bytes)).toBe(e.hex)
      expect(Multibase.baseEncode("base58btc", mh.bytes)).toBe(e.base58btc)
      expect(Multibase.baseEncode("base32padupper", mh.bytes)).toBe(e.base32)
      expect(Multibase.baseEncode("base64pad", mh.bytes)).toBe(e.base64)
    })
  }
  it("the binary example: sha1 (0x11), length 4, digest b6f85cb5", () => {
    const bytes = Uint8Array.from(readme.binary_example.bits.split(" "), (b) => parseInt(b, 2))
    const mh = Result.getOrThrow(Multihash.decode(bytes))
    expect(mh.code).toBe(0x11)
    expect(toHex(mh.digest)).toBe("b6f85cb5")
  })
})

describe("multihash §Format: malformed input", () => {
  it("a digest shorter or longer than its declared length is rejected", () => {
    for (const hex of ["1220", "12030102", "1202010203"]) {
      const r = Multihash.decode(fromHex(hex))
      expect(Result.isFailure(r) && r.failure.reason, hex).toBe("LengthMismatch")
    }
  })
  it("a truncated or non-minimal varint code or length is rejected", () => {
    for (const hex of ["", "80", "8100", "12", "128000"]) {
      const r = Multihash.decode(fromHex(hex))
      expect(Result.isFailure(r) && r.failure.reason, hex).toBe("InvalidVarint")
    }
  })
  it("truncating beyond the digest size is refused", () => {
    const r = Multihash.digest("sha2-256", new Uint8Array(1), 33)
    expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidLength")
  })
})
