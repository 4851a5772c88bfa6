/**
 * The Duplex contract (ARCHITECTURE.md §3) on the in-memory pair: EOF as an
 * empty batch, half-close, reset, scope-owned release, prepend and Stream adapters.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Reader from "../../src/core/Reader.ts"

const bytes = (...xs: Array<number>) => Uint8Array.from(xs)

describe("Duplex (in-memory pair)", () => {
  it.effect("what one end writes the other reads, and closeWrite is EOF (an empty batch)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* a.write([bytes(1, 2), bytes(3)])
      yield* a.closeWrite
      expect((yield* b.read).map((c) => Array.from(c))).toEqual([[1, 2], [3]])
      expect(Duplex.isEOF(yield* b.read)).toBe(true)
      expect(Duplex.isEOF(yield* b.read)).toBe(true)
      // half-close: the other direction still works
      yield* b.write([bytes(9)])
      expect(Array.from(Duplex.concat(yield* a.read))).toEqual([9])
      // writing after closeWrite is a typed Closed error
      const err = yield* Effect.flip(a.write([bytes(1)]))
      expect(err.reason).toBe("Closed")
    }))

  it.effect("reset fails pending reads on both ends with Reset", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const pending = yield* Effect.forkChild(b.read)
      yield* Effect.yieldNow
      yield* a.reset
      const exit = yield* Fiber.await(pending)
      expect(Exit.isFailure(exit) && JSON.stringify(exit).includes("Reset")).toBe(true)
      expect((yield* Effect.flip(a.read)).reason).toBe("Reset")
    }))

  it.effect("closing the owning scope resets both ends", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const [a] = yield* Scope.provide(Duplex.pair(), scope)
      yield* Scope.close(scope, Exit.void)
      expect((yield* Effect.flip(a.read)).reason).toBe("Reset")
    }))

  it.effect("writes suspend when the reader lags (bounded buffer: backpressure)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair({ capacity: 2 })
      const writer = yield* Effect.forkChild(a.write([bytes(1), bytes(2), bytes(3), bytes(4)]))
      yield* Effect.yieldNow
      expect(writer.pollUnsafe()).toBeUndefined()
      const got: Array<number> = []
      while (got.length < 4) for (const c of yield* b.read) got.push(...c)
      yield* Fiber.join(writer)
      expect(got).toEqual([1, 2, 3, 4])
    }))

  it.effect("prepend hands leftover bytes to the next reader first", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* a.write([bytes(1, 2, 3, 4)])
      const r1 = Reader.make(b)
      expect(Array.from(yield* r1.readExactly(1))).toEqual([1])
      const next = Duplex.prepend(b, r1.rest())
      yield* a.write([bytes(5)])
      yield* a.closeWrite
      const r2 = Reader.make(next)
      expect(Array.from(yield* r2.readExactly(4))).toEqual([2, 3, 4, 5])
      expect((yield* Effect.flip(r2.readExactly(1))).reason).toBe("UnexpectedEOF")
    }))

  it.effect("toStream / fromStream move a whole stream and end at EOF", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* Effect.forkChild(Duplex.fromStream(a, Stream.make(bytes(1), bytes(2, 3))))
      const all = yield* Stream.runCollect(Duplex.toStream(b))
      expect(all.flatMap((c) => Array.from(c))).toEqual([1, 2, 3])
    }))
})

describe("Duplex.release (freeing a chunk its owner has consumed)", () => {
  it("a chunk that is the whole of its ArrayBuffer, of at least RELEASE_MIN bytes, is detached (its memory freed, it reads as empty); views into a larger buffer, small chunks and Node's pooled Buffers are left alone", () => {
    const whole = new Uint8Array(Duplex.RELEASE_MIN)
    const larger = new Uint8Array(4 * Duplex.RELEASE_MIN)
    const view = larger.subarray(0, 2 * Duplex.RELEASE_MIN)
    const tail = larger.subarray(Duplex.RELEASE_MIN)
    const small = new Uint8Array(Duplex.RELEASE_MIN - 1)
    const pooled = Buffer.allocUnsafe(100)
    Duplex.releaseAll([whole, view, tail, small, pooled])
    expect(whole.byteLength).toBe(0)
    expect(whole.buffer.detached).toBe(true)
    expect([view.byteLength, tail.byteLength, small.byteLength, pooled.byteLength]).toEqual([
      2 * Duplex.RELEASE_MIN,
      3 * Duplex.RELEASE_MIN,
      Duplex.RELEASE_MIN - 1,
      100
    ])
    expect(larger.buffer.detached).toBe(false)
    Duplex.release(whole) // twice: nothing left to do
    expect(whole.byteLength).toBe(0)
  })
})

/** A duplex whose reads are `batches`, one per read, then EOF; `owned` declares OwnedReads. */
const scripted = (batches: ReadonlyArray<Duplex.Chunks>, owned: boolean): Duplex.Duplex => {
  let i = 0
  const d: Duplex.Duplex = {
    read: Effect.sync(() => batches[i++] ?? Duplex.EOF),
    write: () => Effect.void,
    closeWrite: Effect.void,
    reset: Effect.void
  }
  return owned ? Duplex.withOwnedReads(d) : d
}

/** `n` bytes counting up from `from` (mod 256), as a chunk of its own ArrayBuffer. */
const counting = (from: number, n: number) => Uint8Array.from({ length: n }, (_, k) => (from + k) & 0xff)

describe("Duplex.OwnedReads through the wrappers and the Reader", () => {
  it.effect("prepend keeps OwnedReads of the duplex it wraps, and does not add it to one without", () =>
    Effect.gen(function*() {
      const owned = Duplex.prepend(scripted([], true), [bytes(1)])
      const plain = Duplex.prepend(scripted([], false), [bytes(1)])
      expect([Duplex.ownsReads(owned), Duplex.ownsReads(plain)]).toEqual([true, false])
      expect(Array.from(Duplex.concat(yield* owned.read))).toEqual([1])
    }))

  it.effect("a Reader over an OwnedReads duplex frees each chunk a request copied from its first byte to its last, and nothing it handed out a view of", () =>
    Effect.gen(function*() {
      const N = Duplex.RELEASE_MIN
      // a: the first 10 bytes go out as a view, the rest is copied by the next request (not freed)
      // b: copied whole by that request (freed); c: its head copied, its tail read as a view later
      const a = counting(0, N)
      const b = counting(N, N)
      const c = counting(2 * N, N)
      const reader = Reader.make(scripted([[a], [b], [c]], true))
      const first = yield* reader.readExactly(10)
      const spanning = yield* reader.readExactly(2 * N) // a[10..] + b + c[..10]
      const last = yield* reader.readExactly(N - 10) // c[10..]: one chunk, a view
      expect(Array.from(first)).toEqual(Array.from(counting(0, 10)))
      expect(Array.from(spanning)).toEqual(Array.from(counting(10, 2 * N)))
      expect(Array.from(last)).toEqual(Array.from(counting(2 * N + 10, N - 10)))
      expect([a.buffer.detached, b.buffer.detached, c.buffer.detached]).toEqual([false, true, false])
      expect(first.byteLength).toBe(10)
    }))

  it.effect("a Reader over a duplex without OwnedReads frees nothing", () =>
    Effect.gen(function*() {
      const N = Duplex.RELEASE_MIN
      const a = counting(0, N)
      const b = counting(N, N)
      const c = counting(2 * N, 1)
      const reader = Reader.make(scripted([[a], [b], [c]], false))
      const all = yield* reader.readExactly(2 * N + 1)
      expect(Array.from(all)).toEqual(Array.from(counting(0, 2 * N + 1)))
      expect([a.buffer.detached, b.buffer.detached]).toEqual([false, false])
    }))
})
