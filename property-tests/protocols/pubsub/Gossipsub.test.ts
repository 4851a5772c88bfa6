/**
 * Gossipsub properties on the memory transport under TestClock (gossipsub-v1.0 §Heartbeat,
 * §Message Propagation), for seeded random connected networks:
 * - after every heartbeat of a node, its mesh is within [min(D_lo, eligible), D_hi], where
 *   eligible counts its subscribed peers not in backoff (the heartbeat grafts up to D from them);
 * - every published message reaches every other subscriber exactly once (no duplicate delivery,
 *   nothing lost: flood publish, the mesh and IHAVE/IWANT gossip over a connected network).
 *
 * Heartbeats are run by hand (the scheduled one is an hour apart) so that the check follows
 * each node's own heartbeat exactly; virtual time advances one heartbeat interval per round.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Stream } from "effect"
import { TestClock } from "effect/testing"
import fc from "fast-check"
import { prng } from "../../../spec-tests/support/bytes.ts"
import { decode, pubsubNode, text } from "../../../spec-tests/support/pubsub.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Gossipsub from "../../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as Memory from "../../../src/transport/Memory.ts"

/**
 * A connected graph: a random spanning tree plus `extra` random edges (i dials j), and with
 * `hub`, node 0 dials every other node: their GRAFTs come over connections the hub dialed,
 * which it accepts beyond D_hi (v1.1 keeps outbound peers), so its heartbeat has to prune.
 */
const randomGraph = (n: number, extra: number, seed: number, hub: boolean) => {
  const next = prng(seed)
  const rand = () => next() / 0x1_0000_0000
  const edges = new Set<string>()
  const add = (i: number, j: number) => {
    if (i !== j) edges.add(i < j ? `${i}-${j}` : `${j}-${i}`)
  }
  for (let i = 1; i < n; i++) add(i, Math.floor(rand() * i))
  for (let k = 0; k < extra; k++) add(Math.floor(rand() * n), Math.floor(rand() * n))
  if (hub) { for (let j = 1; j < n; j++) add(0, j) }
  return [...edges].map((e) => e.split("-").map(Number) as [number, number])
}

/** Small degrees so that random graphs overflow D_hi and underflow D_lo. */
const params = { D: 3, Dlo: 2, Dhi: 4, Dlazy: 3, Dscore: 1, Dout: 1, heartbeatInterval: "1 hour" } as const
const TOPIC = "prop"

/** Let the fibers of the in-flight RPCs run (real time, a few ms). */
const settle = TestClock.withLive(Effect.sleep("15 millis"))

const runNetwork = (n: number, extra: number, seed: number, hub: boolean, publishers: number) =>
  Effect.gen(function*() {
    const nodes = yield* Effect.forEach(Array.from({ length: n }), () =>
      Effect.map(
        pubsubNode(Gossipsub.layer(params), { yamux: { enableKeepAlive: false } }),
        (node) => ({ ...node, gs: Context.get(node.context, Gossipsub.Gossipsub) })
      ))
    const received = nodes.map(() => [] as Array<string>)
    for (const [i, node] of nodes.entries()) {
      const sub = yield* node.pubsub.subscribe(TOPIC)
      yield* Effect.forkScoped(Stream.runForEach(sub, (m) => Effect.sync(() => received[i]!.push(decode(m.data)))))
    }
    for (const [i, j] of randomGraph(n, extra, seed, hub)) yield* nodes[i]!.host.dial(nodes[j]!.addr)
    yield* settle
    const violations: Array<string> = []
    const round = Effect.gen(function*() {
      for (const [i, node] of nodes.entries()) {
        yield* node.gs.heartbeat
        const mesh = node.gs.mesh(TOPIC)
        const size = mesh.length
        const eligible = new Set([
          ...mesh.map(PeerId.toString),
          ...node.pubsub.peers(TOPIC).filter((p) => !node.gs.inBackoff(TOPIC, p)).map(PeerId.toString)
        ]).size
        if (size > params.Dhi) violations.push(`node ${i}: mesh ${size} > D_hi`)
        if (size < Math.min(params.Dlo, eligible)) {
          violations.push(`node ${i}: mesh ${size} < min(D_lo, ${eligible})`)
        }
      }
      yield* settle
      yield* TestClock.adjust("1 second")
    })
    for (let r = 0; r < 4; r++) yield* round
    const sent = Array.from({ length: publishers }, (_, k) => `m${k} from ${k % n}`)
    for (const [k, t] of sent.entries()) yield* nodes[k % n]!.pubsub.publish(TOPIC, text(t))
    yield* settle
    for (let r = 0; r < 4; r++) yield* round
    return { violations, received, sent, n }
  }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork), Effect.provide(TestClock.layer()))

describe("gossipsub properties (memory transport, TestClock)", () => {
  it.effect(
    "property: the mesh stays within [D_lo, D_hi] after every heartbeat; every message is delivered exactly once",
    () =>
      Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 6, max: 12 }),
            fc.integer({ min: 0, max: 30 }),
            fc.integer(),
            fc.boolean(),
            fc.integer({ min: 1, max: 4 }),
            async (n, extra, seed, hub, publishers) => {
              const { received, sent, violations } = await Effect.runPromise(
                runNetwork(n, extra, seed, hub, publishers)
              )
              expect(violations).toEqual([])
              for (const [i, got] of received.entries()) {
                const expected = sent.filter((t) => !t.endsWith(` from ${i}`)).sort()
                expect([...got].sort(), `node ${i}`).toEqual(expected)
              }
            }
          ),
          { numRuns: 6 }
        )
      ),
    120_000
  )
})
