import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Multibase from "../../src/core/Multibase.ts"
import { readText } from "../support/vectors.ts"

/** Encodings of the multibase table that `multiformats` does not implement (see the module doc). */
const UNSUPPORTED = ["base45", "proquint"]

/** `name, "value"` rows; the header row carries the input string (with `\xNN` escapes). */
const parseCsv = (file: string) => {
  const lines = readText(`multibase/${file}`).split("\n").filter((l) => l.trim() !== "")
  const cell = (line: string) => {
    const comma = line.indexOf(",")
    const raw = line.slice(comma + 1).trim()
    return [line.slice(0, comma).trim(), raw.slice(1, -1)] as const
  }
  const [, header] = cell(lines[0]!)
  const input = header.replace(/\\x([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
  return {
    input: Uint8Array.from(input, (c) => c.charCodeAt(0)),
    rows: lines.slice(1).map(cell)
  }
}

const isSupported = (name: string): name is Multibase.Encoding =>
  (Multibase.encodings as ReadonlyArray<string>).includes(name)

describe("multibase §Format: test vectors (tests/*.csv)", () => {
  for (const file of ["basic.csv", "leading_zero.csv", "two_leading_zeros.csv"]) {
    const { input, rows } = parseCsv(file)
    for (const [name, encoded] of rows) {
      it(`${file}: ${name}`, () => {
        // every encoding in these files is one we support; none is skipped
        expect(isSupported(name)).toBe(true)
        if (!isSupported(name)) return
        expect(Multibase.encode(name, input)).toBe(encoded)
        const decoded = Result.getOrThrow(Multibase.decode(encoded))
        expect(decoded.encoding).toBe(name)
        expect(decoded.bytes).toEqual(input)
      })
    }
  }

  const insensitive = parseCsv("case_insensitivity.csv")
  for (const [name, encoded] of insensitive.rows) {
    it(`case_insensitivity.csv: ${name} decodes whatever the letter case`, () => {
      expect(isSupported(name)).toBe(true)
      const decoded = Result.getOrThrow(Multibase.decode(encoded))
      expect(decoded.encoding).toBe(name)
      expect(decoded.bytes).toEqual(insensitive.input)
    })
  }
})

describe("multibase §Multibase Table (multibase.csv)", () => {
  const rows = readText("multibase/multibase.csv")
    .split("\n")
    .slice(1)
    .filter((l) => l.trim() !== "")
    .map((l) => l.split(",").map((c) => c.trim()))
  it("every named encoding is supported with the registry's prefix, except base45 and proquint", () => {
    const named = rows.filter((r) => r[2] !== "none")
    expect(named.length).toBeGreaterThan(20)
    for (const [unicode, , name] of named) {
      const prefix = String.fromCodePoint(parseInt(unicode!.slice(2), 16))
      if (UNSUPPORTED.includes(name!)) {
        expect(isSupported(name!)).toBe(false)
        expect(Result.isFailure(Multibase.encodingOf(prefix))).toBe(true)
        continue
      }
      expect(isSupported(name!), name).toBe(true)
      expect(Result.getOrThrow(Multibase.encodingOf(prefix + "x"))).toBe(name)
    }
    // and we support nothing the registry does not name
    for (const e of Multibase.encodings) expect(named.some((r) => r[2] === e), e).toBe(true)
  })
  it("reserved prefixes and the empty string are rejected", () => {
    for (const r of rows.filter((r) => r[2] === "none")) {
      const prefix = String.fromCodePoint(parseInt(r[0]!.slice(2), 16))
      const result = Multibase.decode(prefix + "abc")
      expect(Result.isFailure(result) && result.failure.reason).toBe("UnknownPrefix")
    }
    const empty = Multibase.decode("")
    expect(Result.isFailure(empty) && empty.failure.reason).toBe("Empty")
  })
  it("characters outside the alphabet and non-zero trailing bits are InvalidEncoding", () => {
    for (const text of ["z0OIl", "f0g", "b1", "bab", "m!"]) {
      const result = Multibase.decode(text)
      expect(Result.isFailure(result) && result.failure.reason, text).toBe("InvalidEncoding")
    }
  })
})
