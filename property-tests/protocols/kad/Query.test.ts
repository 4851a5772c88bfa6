/**
 * Properties of the iterative lookup state machine (kad-dht spec §Peer routing),
 * driven synchronously over random networks: it finds the true k closest peers
 * when every peer knows its own k closest (the Kademlia invariant), it never has
 * more than alpha requests in flight, it never asks us nor a peer twice, it ends
 * when the k closest live candidates have answered, and it survives peers that fail.
 * Disjoint paths (S/Kademlia): d states sharing one asked set never ask a peer twice
 * between them, and their union holds the true k closest.
 */
import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { ok } from "../../../spec-tests/support/result.ts"
import * as Multihash from "../../../src/core/Multihash.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Query from "../../../src/protocols/kad/Query.ts"
import * as RoutingTable from "../../../src/protocols/kad/RoutingTable.ts"

const digest = fc.uint8Array({ minLength: 32, maxLength: 32 })
const peerId = digest.map((d) => ok(PeerId.fromBytes(Multihash.make(0x12, d).bytes)))
const info = (p: PeerId.PeerId) => ({ peerId: p, addrs: [] })

const byDistance = (target: RoutingTable.KadKey, ps: ReadonlyArray<PeerId.PeerId>) =>
  [...ps].sort((a, b) => RoutingTable.compareDistance(target, RoutingTable.peerKey(a), RoutingTable.peerKey(b)))

/** A small deterministic generator: the next pick below `n`. */
const xorshift = (seed: number) => {
  let x = seed | 1
  return (n: number) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) % n
  }
}

/** Run a lookup to the end; answers come back in the order `order` picks among those in flight. */
const drive = (
  state: Query.QueryState,
  answer: (p: PeerId.PeerId) => ReadonlyArray<PeerId.PeerId> | undefined,
  order: (n: number) => number
) => {
  const inflight: Array<PeerId.PeerId> = []
  const asked = new Set<string>()
  let maxInflight = 0
  for (let steps = 0; steps < 100_000; steps++) {
    for (const c of Query.next(state)) {
      expect(asked.has(c.peer.peerId.toString())).toBe(false)
      asked.add(c.peer.peerId.toString())
      inflight.push(c.peer.peerId)
    }
    maxInflight = Math.max(maxInflight, inflight.length)
    if (Query.isDone(state) || inflight.length === 0) break
    const [p] = inflight.splice(order(inflight.length), 1)
    const closer = answer(p!)
    if (closer === undefined) Query.failed(state, p!)
    else Query.succeed(state, p!, closer.map(info))
  }
  return { asked, maxInflight }
}

describe("kad §Peer routing: the lookup state machine", () => {
  it("finds the true k closest when each peer returns its own k closest; ≤ alpha in flight; never asks us or twice", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(peerId, { minLength: 5, maxLength: 120, selector: (p) => p.toString() }),
        digest,
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer(),
        (all, target, k, alpha, seed) => {
          const [self, ...network] = all
          const key = RoutingTable.keyOf(target)
          // every peer knows the k peers closest to the target among the whole network, and
          // answers with them, leaving out itself and the requester (as go, js and our server do)
          const answer = (p: PeerId.PeerId) => byDistance(key, network.filter((q) => !PeerId.equals(q, p))).slice(0, k)
          const seeds = network.slice(0, 2).map(info)
          const state = Query.make(key, self!, seeds, { k, alpha })
          const { asked, maxInflight } = drive(state, answer, xorshift(seed))
          expect(maxInflight).toBeLessThanOrEqual(alpha)
          expect(asked.has(self!.toString())).toBe(false)
          expect(Query.isDone(state)).toBe(true)
          expect(Query.result(state).map((p) => p.peerId.toString())).toEqual(
            byDistance(key, network).slice(0, k).map(String)
          )
        }
      ),
      { numRuns: 200 }
    )
  })

  it("failed peers give their place to the next closest: the result is the k closest that answer", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(peerId, { minLength: 10, maxLength: 80, selector: (p) => p.toString() }),
        digest,
        fc.integer({ min: 1, max: 6 }),
        (all, target, k) => {
          const [self, ...network] = all
          const key = RoutingTable.keyOf(target)
          const dead = new Set(network.filter((_, i) => i % 3 === 0).map(String))
          const answer = (p: PeerId.PeerId) =>
            dead.has(p.toString()) ? undefined : byDistance(key, network).slice(0, k + dead.size)
          const state = Query.make(key, self!, network.slice(0, 3).map(info), { k, alpha: 3 })
          drive(state, answer, () => 0)
          const alive = byDistance(key, network).filter((p) => !dead.has(p.toString()))
          expect(Query.result(state).map((p) => p.peerId.toString())).toEqual(alive.slice(0, k).map(String))
        }
      ),
      { numRuns: 60 }
    )
  })

  it("disjoint paths: d paths sharing one asked set never ask a peer twice, and their union is the true k closest", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(peerId, { minLength: 6, maxLength: 100, selector: (p) => p.toString() }),
        digest,
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 4 }),
        fc.integer(),
        (all, target, k, alpha, d, seed) => {
          const [self, ...network] = all
          const key = RoutingTable.keyOf(target)
          const answer = (p: PeerId.PeerId) => byDistance(key, network.filter((q) => !PeerId.equals(q, p))).slice(0, k)
          const taken = new Set<string>()
          const seeds = network.slice(0, d + 1).map(info)
          const states = Array.from(
            { length: d },
            (_, i) => Query.make(key, self!, seeds.filter((_, j) => j % d === i), { k, alpha, taken })
          )
          const askedBy = new Map<string, number>()
          const inflight: Array<{ readonly path: number; readonly peer: PeerId.PeerId }> = []
          const pick = xorshift(seed)
          for (let steps = 0; steps < 100_000; steps++) {
            states.forEach((state, path) => {
              for (const c of Query.next(state)) {
                expect(askedBy.has(c.peer.peerId.toString())).toBe(false)
                askedBy.set(c.peer.peerId.toString(), path)
                inflight.push({ path, peer: c.peer.peerId })
              }
            })
            if (inflight.length === 0) break
            const [a] = inflight.splice(pick(inflight.length), 1)
            Query.succeed(states[a!.path]!, a!.peer, answer(a!.peer).map(info))
          }
          expect(askedBy.has(self!.toString())).toBe(false)
          const union = byDistance(key, states.flatMap((st) => Query.result(st).map((p) => p.peerId)))
          expect(union.slice(0, k).map(String)).toEqual(byDistance(key, network).slice(0, k).map(String))
        }
      ),
      { numRuns: 150 }
    )
  })
})
