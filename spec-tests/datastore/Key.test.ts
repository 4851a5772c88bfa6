import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Datastore from "../../src/datastore/Datastore.ts"

const k = (s: string) => s as Datastore.Key

describe("Datastore keys (go-datastore Key)", () => {
  it("accepts hierarchical printable-ASCII keys and the root", () => {
    for (const s of ["/", "/peers", "/peers/12D3KooWabc", "/dht/records/AFKREIG-~!", "/a/b/c/d", "/..."]) {
      expect(Datastore.isKey(s), s).toBe(true)
    }
  })

  it("rejects a missing leading /, empty segments, . and .., and non-printable or non-ASCII text", () => {
    for (const s of ["", "peers", "//", "/a//b", "/a/", "/./a", "/a/..", "/a b", "/a\u0000", "/é", "/a\n", "/😀"]) {
      expect(Datastore.isKey(s), JSON.stringify(s)).toBe(false)
    }
  })

  it.effect("key and child validate, failing with reason InvalidKey", () =>
    Effect.gen(function*() {
      expect(yield* Datastore.key("/peers/a")).toBe("/peers/a")
      expect(yield* Datastore.child(k("/peers"), "a", "addrs")).toBe("/peers/a/addrs")
      expect(yield* Datastore.child(Datastore.ROOT, "peers")).toBe("/peers")
      const e = yield* Effect.flip(Datastore.key("/a//b"))
      expect(e.reason).toBe("InvalidKey")
      expect(e.message).toContain("/a//b")
      expect((yield* Effect.flip(Datastore.child(k("/peers"), "a/b/"))).reason).toBe("InvalidKey")
      expect((yield* Effect.flip(Datastore.child(k("/peers"), ""))).reason).toBe("InvalidKey")
    }))

  it("segments, parent, name", () => {
    expect(Datastore.segments(k("/a/b/c"))).toEqual(["a", "b", "c"])
    expect(Datastore.segments(Datastore.ROOT)).toEqual([])
    expect(Datastore.parent(k("/a/b/c"))).toBe("/a/b")
    expect(Datastore.parent(k("/a"))).toBe("/")
    expect(Datastore.parent(Datastore.ROOT)).toBe("/")
    expect(Datastore.name(k("/a/b/c"))).toBe("c")
  })

  it("isAncestor works on segment boundaries: /a is above /a/b but not /ab", () => {
    expect(Datastore.isAncestor(k("/a"), k("/a/b"))).toBe(true)
    expect(Datastore.isAncestor(k("/a"), k("/a/b/c"))).toBe(true)
    expect(Datastore.isAncestor(k("/a"), k("/ab"))).toBe(false)
    expect(Datastore.isAncestor(k("/a"), k("/a"))).toBe(false)
    expect(Datastore.isAncestor(Datastore.ROOT, k("/a"))).toBe(true)
    expect(Datastore.isAncestor(Datastore.ROOT, Datastore.ROOT)).toBe(false)
  })
})
