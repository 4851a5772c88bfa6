/**
 * Properties of the shared byte-stream framing (Duplex, Reader, LengthPrefixed):
 * - unsigned-varint length-prefixed messages (multistream-select spec §Protocol
 *   negotiation framing; identify/kad use the same framing) survive any chunking
 *   of the byte stream;
 * - an oversized prefix is rejected before the body is buffered;
 * - arbitrary bytes never crash the reader: they decode or fail typed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Result } from "effect"
import fc from "fast-check"
import * as Duplex from "../../src/core/Duplex.ts"
import * as LengthPrefixed from "../../src/core/LengthPrefixed.ts"
import * as Reader from "../../src/core/Reader.ts"
import * as Varint from "../../src/core/Varint.ts"

/** Split a buffer at the given cut points into chunks, then into batches. */
const rechunk = (bytes: Uint8Array, cuts: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let prev = 0
  for (const p of [...points, bytes.length]) {
    if (p > prev) out.push(bytes.subarray(prev, p))
    prev = Math.max(prev, p)
  }
  return out
}

const run = <A, E>(eff: Effect.Effect<A, E, import("effect").Scope.Scope>) => Effect.runPromiseExit(Effect.scoped(eff))

describe("framing properties", () => {
  it("length-prefixed messages arrive intact and in order under arbitrary chunking", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        async (msgs, cuts) => {
          const wire = Duplex.concat(msgs.map(LengthPrefixed.encode))
          const exit = await run(Effect.gen(function*() {
            const [a, b] = yield* Duplex.pair()
            const chunks = rechunk(wire, cuts)
            yield* Effect.forkScoped(Effect.gen(function*() {
              for (const c of chunks) yield* a.write([c])
              yield* a.closeWrite
            }))
            const reader = Reader.make(b)
            const got: Array<Uint8Array> = []
            while (true) {
              const m = yield* LengthPrefixed.read(reader, 1024)
              if (m === undefined) break
              got.push(m)
            }
            return got
          }))
          expect(Exit.isSuccess(exit)).toBe(true)
          if (Exit.isSuccess(exit)) expect(exit.value.map((m) => Array.from(m))).toEqual(msgs.map((m) => Array.from(m)))
        }
      ),
      { numRuns: 100 }
    )
  })

  it("a length prefix above the limit fails TooLarge without waiting for the body", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 11, max: 1 << 30 }), async (len) => {
        const exit = await run(Effect.gen(function*() {
          const [a, b] = yield* Duplex.pair()
          // only the prefix is ever sent: a reader that waited for the body would hang
          yield* a.write([Varint.encode(len)])
          return yield* LengthPrefixed.read(Reader.make(b), 10)
        }))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(JSON.stringify(exit)).toContain("TooLarge")
      }),
      { numRuns: 50 }
    )
  })

  it("arbitrary bytes never crash the reader: each read decodes or fails with a typed error", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 64 }), async (bytes) => {
        const exit = await run(Effect.gen(function*() {
          const [a, b] = yield* Duplex.pair()
          yield* a.write([bytes])
          yield* a.closeWrite
          const reader = Reader.make(b)
          while (true) {
            const m = yield* LengthPrefixed.read(reader, 16)
            if (m === undefined) return
          }
        }))
        if (Exit.isFailure(exit)) {
          const s = JSON.stringify(exit)
          expect(s.includes("ReaderError")).toBe(true)
        }
      }),
      { numRuns: 200 }
    )
  })

  it("LengthPrefixed.decode agrees with the streaming reader on whole buffers", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (msg) => {
      const r = LengthPrefixed.decode(LengthPrefixed.encode(msg), 1000)
      expect(Result.isSuccess(r) && Array.from(r.success.message)).toEqual(Array.from(msg))
      if (msg.length > 0) {
        expect(Result.isFailure(LengthPrefixed.decode(LengthPrefixed.encode(msg), msg.length - 1))).toBe(true)
      }
    }))
  })
})
