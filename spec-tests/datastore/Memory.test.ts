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
})
