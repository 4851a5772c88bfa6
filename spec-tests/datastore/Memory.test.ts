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
})
