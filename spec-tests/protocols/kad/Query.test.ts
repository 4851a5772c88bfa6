/**
 * The lookup loop (kad-dht spec §Peer routing) under TestClock with scripted peers:
 * the per-peer timeout fails one peer with `PeerTimeout` and the lookup goes on; the
 * whole-query timeout ends a lookup where nobody answers with `QueryTimeout`, and one
 * where some answered with what it has (`complete: false`); at most alpha requests
 * are in flight.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Multihash from "../../../src/core/Multihash.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Query from "../../../src/protocols/kad/Query.ts"
import * as RoutingTable from "../../../src/protocols/kad/RoutingTable.ts"

const peer = (n: number) => {
  const id = PeerId.fromBytes(Multihash.make(0x12, new Uint8Array(32).fill(n)).bytes)
  if (id._tag === "Failure") throw new Error("bad id")
  return { peerId: id.success, addrs: [] }
}
const self = peer(0).peerId
const peers = Array.from({ length: 6 }, (_, i) => peer(i + 1))
const target = RoutingTable.keyOf(Uint8Array.of(1, 2, 3))
const options = (peerMs: number, queryMs: number): Query.RunOptions => ({
  k: 20,
  alpha: 3,
  peerTimeout: Duration.millis(peerMs),
  queryTimeout: Duration.millis(queryMs)
})

describe("kad §Peer routing: the lookup loop", () => {
  it.effect("a silent peer fails PeerTimeout after the per-peer timeout; the others' answers make the result", () =>
    Effect.gen(function*() {
      const silent = peers[0]!.peerId.toString()
      let inflight = 0
      let maxInflight = 0
      const ask = (p: { readonly peerId: PeerId.PeerId }) =>
        p.peerId.toString() === silent
          ? Effect.never
          : Effect.sync(() => {
            maxInflight = Math.max(maxInflight, ++inflight)
          }).pipe(
            Effect.andThen(Effect.yieldNow),
            Effect.ensuring(Effect.sync(() => inflight--)),
            Effect.as({ closer: peers })
          )
      const state = Query.make(target, self, peers.slice(0, 2), { k: 20, alpha: 3 })
      const fiber = yield* Effect.forkChild(Query.run(state, ask, options(1000, 60_000)))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* TestClock.adjust("1 second")
      const outcome = yield* Fiber.join(fiber)
      expect(outcome.complete).toBe(true)
      expect(outcome.closest.map((p) => p.peerId.toString()).sort()).toEqual(
        peers.slice(1).map((p) => p.peerId.toString()).sort()
      )
      expect(outcome.failures.map((e) => e.reason._tag)).toEqual(["PeerTimeout"])
      expect(maxInflight).toBeLessThanOrEqual(3)
    }))

  it.effect("a chain of answers: hops count the answers on the way to the farthest result, requests every ask", () =>
    Effect.gen(function*() {
      // peer i names only peer i+1: the lookup has to walk the chain, one hop per answer
      const chain = peers.slice(0, 5)
      const ask = (p: { readonly peerId: PeerId.PeerId }) =>
        Effect.succeed({
          closer: chain.filter((_, i) => i > 0 && chain[i - 1]!.peerId.toString() === p.peerId.toString())
        })
      const state = Query.make(target, self, chain.slice(0, 1), { k: 20, alpha: 3 })
      const outcome = yield* Query.run(state, ask, options(1000, 60_000))
      expect(outcome.closest).toHaveLength(5)
      expect(outcome.hops).toBe(5)
      expect(outcome.requests).toBe(5)
      // a peer named by a seed too is reached in fewer hops: the fewest count
      const shortcut = Query.make(target, self, [chain[0]!, chain[3]!], { k: 20, alpha: 3 })
      const again = yield* Query.run(shortcut, ask, options(1000, 60_000))
      expect(again.hops).toBe(3) // chain[4] is one answer after chain[3], a seed (1 + 1); chain[2] is 3 via chain[0]
      expect(again.requests).toBe(5)
    }))

  it.effect("nobody answers before the whole-query timeout: QueryTimeout", () =>
    Effect.gen(function*() {
      const state = Query.make(target, self, peers, { k: 20, alpha: 3 })
      const fiber = yield* Effect.forkChild(Effect.exit(Query.run(state, () => Effect.never, options(10_000, 2000))))
      yield* Effect.yieldNow
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(fiber)
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" && exit.cause.reasons[0].error.reason._tag)
        .toBe("QueryTimeout")
    }))

  it.effect("some answered before the whole-query timeout: their result, marked incomplete", () =>
    Effect.gen(function*() {
      const answering = peers[5]!.peerId.toString()
      const state = Query.make(target, self, peers, { k: 20, alpha: 6 })
      const fiber = yield* Effect.forkChild(
        Query.run(
          state,
          (p) => p.peerId.toString() === answering ? Effect.succeed({ closer: [] }) : Effect.never,
          options(10_000, 2000)
        )
      )
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow
      yield* TestClock.adjust("2 seconds")
      const outcome = yield* Fiber.join(fiber)
      expect(outcome.complete).toBe(false)
      expect(outcome.closest.map((p) => p.peerId.toString())).toEqual([answering])
    }))
})

describe("kad §Peer routing: disjoint paths (S/Kademlia)", () => {
  /** 60 scripted peers: each names its 3 ring neighbours each side and the 2 peers closest to the target below it. */
  const world = Array.from({ length: 60 }, (_, i) => peer(i + 1))
  const byDistance = [...world].sort((a, b) =>
    RoutingTable.compareDistance(target, RoutingTable.peerKey(a.peerId), RoutingTable.peerKey(b.peerId))
  )
  const answerOf = (i: number) => {
    const ring = [-3, -2, -1, 1, 2, 3].map((o) => world[(i + o + world.length) % world.length]!)
    const rank = byDistance.indexOf(world[i]!)
    return [...ring, ...byDistance.slice(Math.max(0, rank - 2), rank)]
  }
  const k = 5

  it.effect("d = 2: no peer is asked by two paths, both paths ask, and the result is the true k closest", () =>
    Effect.gen(function*() {
      const asked = new Map<string, Array<number>>()
      const outcome = yield* Query.runDisjoint(
        target,
        self,
        [world[0]!, world[20]!, world[40]!, world[50]!],
        2,
        (p, path) =>
          Effect.sync(() => {
            const id = p.peerId.toString()
            asked.set(id, [...(asked.get(id) ?? []), path])
            return { closer: answerOf(world.findIndex((w) => w.peerId.toString() === id)) }
          }).pipe(Effect.tap(() => Effect.yieldNow)),
        { ...options(1000, 60_000), k }
      )
      expect([...asked.values()].filter((paths) => paths.length > 1)).toEqual([])
      expect(new Set([...asked.values()].flat())).toEqual(new Set([0, 1]))
      expect(outcome.complete).toBe(true)
      expect(outcome.closest.map((p) => p.peerId.toString())).toEqual(
        byDistance.slice(0, k).map((p) => p.peerId.toString())
      )
    }))

  it.effect("d = 1 is the plain lookup: the same peers asked and the same result as run", () =>
    Effect.gen(function*() {
      const seeds = [world[0]!, world[20]!, world[40]!]
      const trace = (log: Array<string>) => (p: { readonly peerId: PeerId.PeerId }) =>
        Effect.sync(() => {
          log.push(p.peerId.toString())
          return { closer: answerOf(world.findIndex((w) => PeerId.equals(w.peerId, p.peerId))) }
        })
      const plainLog: Array<string> = []
      const plain = yield* Query.run(Query.make(target, self, seeds, { k, alpha: 3 }), trace(plainLog), {
        ...options(1000, 60_000),
        k
      })
      const oneLog: Array<string> = []
      const one = yield* Query.runDisjoint(target, self, seeds, 1, trace(oneLog), { ...options(1000, 60_000), k })
      expect(oneLog).toEqual(plainLog)
      expect(one.closest).toEqual(plain.closest)
    }))
})
