import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as Memory from "../../src/datastore/Memory.ts"
import { datastoreCompliance } from "./compliance.ts"

datastoreCompliance("Memory", Memory.make)

describe("Memory datastore", () => {
  it.effect("a query is a snapshot: writes made while it is consumed are not seen", () =>
    Effect.gen(function*() {
      const ds = yield* Memory.make
      const key = (s: string) => s as Datastore.Key
      yield* ds.put(key("/q/1"), new Uint8Array([1]))
      yield* ds.put(key("/q/3"), new Uint8Array([3]))
      const seen = yield* ds.keys({ prefix: key("/q") }).pipe(
        Stream.tap((k) => k === "/q/1" ? ds.put(key("/q/2"), new Uint8Array([2])) : Effect.void),
        Stream.runCollect
      )
      expect(seen).toEqual(["/q/1", "/q/3"])
      expect(yield* ds.has(key("/q/2"))).toBe(true)
    }))

  it.effect("keys added in runs (spliced one by one, or sorted and merged) come out in order, removals too", () =>
    Effect.gen(function*() {
      const ds = yield* Memory.make
      const key = (i: number) => `/r/${((i * 7919) % 1000).toString().padStart(3, "0")}` as Datastore.Key
      const expected = new Set<string>()
      const check = Effect.gen(function*() {
        expect(yield* Stream.runCollect(ds.keys({ prefix: "/r" as Datastore.Key }))).toEqual([...expected].sort())
      })
      // runs of 1, 3, 8 (spliced) and 9, 50, 200 (merged) new keys, each followed by a query or a removal
      let next = 0
      for (const run of [1, 3, 8, 9, 50, 200]) {
        for (let i = 0; i < run; i++, next++) {
          yield* ds.put(key(next), new Uint8Array([1]))
          yield* ds.put(key(next), new Uint8Array([2])) // a second put of an added key adds it once
          expected.add(key(next))
        }
        if (run % 2 === 0) yield* check
        else {
          yield* ds.delete(key(next - 1))
          expected.delete(key(next - 1))
        }
      }
      yield* ds.batch([Datastore.putOp(key(next), new Uint8Array([3])), Datastore.deleteOp(key(next))])
      yield* check
    }))

  it.effect("values overwritten many times (slab compaction) read back right; a query snapshot keeps its values", () =>
    Effect.gen(function*() {
      const ds = yield* Memory.make
      const key = (i: number) => `/v/${i.toString().padStart(4, "0")}` as Datastore.Key
      // 1,000 values of 200 bytes (some of 5,000, outside the slabs), rewritten 8 times: several compactions
      const value = (i: number, round: number) => new Uint8Array(i % 100 === 0 ? 5000 : 200).fill((i + round) % 256)
      const rewrite = (round: number) =>
        Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => i),
          (i) => i % 2 === 0 ? ds.put(key(i), value(i, round)) : ds.batch([Datastore.putOp(key(i), value(i, round))]),
          { discard: true }
        )
      yield* rewrite(0)
      yield* rewrite(1)
      // a query started now, with rounds 2 to 7 written after its first entry: it still yields round 1
      const snapshot = yield* Stream.runCollect(
        ds.query({ prefix: "/v" as Datastore.Key }).pipe(
          Stream.tap((e) => e.key === key(0) ? Effect.forEach([2, 3, 4, 5, 6, 7], rewrite) : Effect.void)
        )
      )
      for (let i = 0; i < 1000; i++) expect(yield* ds.get(key(i))).toEqual(value(i, 7))
      expect(Array.from(snapshot).map((e) => e.value)).toEqual(Array.from({ length: 1000 }, (_, i) => value(i, 1)))
      for (let i = 0; i < 1000; i += 3) yield* ds.delete(key(i))
      yield* ds.put(key(1), value(1, 9))
      expect(yield* ds.get(key(1))).toEqual(value(1, 9))
      expect(yield* ds.get(key(2))).toEqual(value(2, 7))
    }))
})
