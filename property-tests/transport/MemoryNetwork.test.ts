/**
 * The memory transport runs whole networks in one process with no sockets and
 * no real timers, so a test under TestClock is deterministic from a seed.
 *
 * Property: for any random small network (nodes, and a random set of edges),
 * every edge's dialer can ping the listener across the full stack
 * (multistream-select → Noise → Yamux → ping), and each node ends up with
 * exactly one connection per distinct neighbour (connections are reused).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { memoryNode } from "../../spec-tests/support/node.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Memory from "../../src/transport/Memory.ts"

/** A deterministic PRNG (mulberry32) so a network is a function of its seed. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/** Random edges (i → j, i ≠ j) of a network with `n` nodes. */
const randomEdges = (n: number, count: number, seed: number): Array<readonly [number, number]> => {
  const rand = prng(seed)
  const edges: Array<readonly [number, number]> = []
  for (let k = 0; k < count; k++) {
    const i = Math.floor(rand() * n)
    let j = Math.floor(rand() * (n - 1))
    if (j >= i) j++
    edges.push([i, j])
  }
  return edges
}

/**
 * `concurrency`: pings in flight at once. Duplicate edges pinged concurrently may be refused: the
 * ping spec lets a listener refuse more than 2 concurrent ping streams per peer (we and js-libp2p do).
 */
const runNetwork = (n: number, edges: ReadonlyArray<readonly [number, number]>, concurrency: number) =>
  Effect.gen(function*() {
    const nodes = yield* Effect.forEach(
      Array.from({ length: n }),
      () => memoryNode({ yamux: { enableKeepAlive: false } })
    )
    const rtts = yield* Effect.forEach(
      edges,
      ([i, j]) => nodes[i]!.ping.ping(nodes[j]!.addr, { count: 1 }),
      { concurrency }
    )
    // distinct neighbours of each node (edges are undirected once connected)
    const neighbours = nodes.map(() => new Set<string>())
    for (const [i, j] of edges) {
      neighbours[i]!.add(PeerId.toString(nodes[j]!.host.peerId))
      neighbours[j]!.add(PeerId.toString(nodes[i]!.host.peerId))
    }
    const connected = nodes.map((node) => new Set(node.host.connections().map((c) => PeerId.toString(c.remotePeer))))
    return { rtts, neighbours, connected }
  }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork))

describe("memory network (virtual time)", () => {
  it.effect(
    "100 nodes under TestClock: every node pings a seeded random peer, all succeed, no real time needed",
    () =>
      Effect.gen(function*() {
        const edges = randomEdges(100, 100, 20261120)
        const { rtts } = yield* runNetwork(100, edges, 8)
        expect(rtts).toHaveLength(100)
        // virtual time never advanced: every RTT is 0 on the TestClock
        for (const r of rtts) expect(r).toEqual([0])
      }),
    120_000
  )

  it.effect(
    "property: random small networks — every edge pings; each node is connected to exactly its neighbours",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 2, max: 8 }),
            fc.integer({ min: 1, max: 16 }),
            fc.integer(),
            async (n, count, seed) => {
              const edges = randomEdges(n, count, seed)
              const { rtts, neighbours, connected } = await Effect.runPromise(runNetwork(n, edges, 1))
              expect(rtts).toHaveLength(edges.length)
              expect(connected.map((s) => [...s].sort())).toEqual(neighbours.map((s) => [...s].sort()))
            }
          ),
          { numRuns: 10 }
        )
      ),
    120_000
  )
})
