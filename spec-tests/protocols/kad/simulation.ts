/**
 * A Kad-DHT network on the memory transport (kad-dht spec §Peer routing,
 * §Bootstrap process), reproducible from a seed: `nodes` seeded identities,
 * each connected to the one before it and to 3 others picked by a seeded
 * PRNG, each running one refresh (a self lookup). Then `lookups` lookups of
 * random keys from random nodes, compared with the true k closest peers of
 * the whole network, and a record and a provider looked up from far nodes.
 * Each lookup's requests and depth in hops are reported (`Kad.LookupStats`).
 * With `latencyMillis` (a network from `Memory.layerNetworkWith({ latency: true })`)
 * every write in the lookup phase arrives that much later in virtual time
 * (the network is built without delay), the TestClock is advanced 1 ms at a
 * time while a lookup runs, and each lookup's virtual duration is reported.
 *
 * Run under TestClock by `Simulation.test.ts` (50 nodes, in `npm test`) and by
 * `npm run sim -- dht --nodes 1000`.
 */
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Kad from "../../../src/protocols/kad/Kad.ts"
import { MemoryNetwork } from "../../../src/transport/Memory.ts"
import { prng } from "../../support/bytes.ts"
import { type Distribution, distribution } from "../../support/distribution.ts"
import { connect, type KadNode, kadNode, trueClosest } from "./support.ts"

export interface KadSimulationResult {
  readonly nodes: number
  readonly seed: number
  readonly lookups: number
  /** Lookups whose result was exactly the true k closest peers, in order. */
  readonly exact: number
  readonly valueFound: boolean
  readonly providerFound: boolean
  /** Requests sent per lookup (the `lookups` phase). */
  readonly requests: Distribution
  /** Depth of each lookup in hops (the `lookups` phase). */
  readonly hops: Distribution
  /** One-way delay per write in the lookup phase (0: none). */
  readonly latencyMillis: number
  /** Virtual milliseconds per lookup (all 0 without a latency). */
  readonly lookupMillis: Distribution
}

/** Needs a MemoryNetwork and a Scope; runs under whatever Clock is provided (TestClock in the test and the sim). */
export const kadSimulation = (options: {
  readonly nodes: number
  readonly seed: number
  readonly lookups: number
  readonly latencyMillis?: number
}) =>
  Effect.gen(function*() {
    const { nodes: count, seed, lookups } = options
    const network = yield* MemoryNetwork
    // a latency needs a network made with Memory.layerNetworkWith({ latency: true })
    const latencyMillis = network.latency === true ? options.latencyMillis ?? 0 : 0
    /** Run `effect` while the TestClock moves 1 ms at a time (only with a latency: nothing sleeps otherwise). */
    const inVirtualTime = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      latencyMillis === 0 ? effect : Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(effect)
        while (fiber.pollUnsafe() === undefined) yield* TestClock.adjust("1 millis")
        return yield* Fiber.join(fiber)
      })
    const next = prng(seed)
    const rand = (n: number) => next() % n
    const nodes: Array<KadNode> = []
    let measuring = false
    const measured: Array<Kad.LookupStats> = []
    const onLookup = (s: Kad.LookupStats) => {
      if (measuring) measured.push(s)
    }
    // plaintext (/plaintext/2.0.0, peer ids still authenticated by their keys): the simulation is
    // about Kad, and Noise handshakes were half its CPU (60 nodes: 40 → 19 CPU s, heap 450 → 230 MiB)
    for (let i = 0; i < count; i++) {
      nodes.push(yield* kadNode({ onLookup }, 1000 * seed + i, { security: ["plaintext"] }))
    }
    for (let i = 1; i < count; i++) {
      yield* connect(nodes[i]!, nodes[i - 1]!)
      for (let j = 0; j < 3; j++) yield* connect(nodes[i]!, nodes[rand(i)]!)
    }
    for (const n of nodes) yield* n.kad.refresh
    const ids = nodes.map((n) => n.host.peerId)

    let exact = 0
    network.latencyMillis = latencyMillis
    measuring = true
    for (let q = 0; q < lookups; q++) {
      const from = nodes[rand(count)]!
      const key = Uint8Array.of(q, seed, 0xaa, rand(256))
      const others = ids.filter((id) => !PeerId.equals(id, from.host.peerId))
      const got = (yield* inVirtualTime(from.kad.getClosestPeers(key))).map((p) => p.peerId.toString())
      if (JSON.stringify(got) === JSON.stringify(trueClosest(key, others, Kad.defaults.k))) exact++
    }
    measuring = false
    network.latencyMillis = 0
    // what is still in flight arrives, so later writes (queued behind it) are not held up
    if (latencyMillis > 0) yield* TestClock.adjust(`${2 * latencyMillis} millis`)

    // §Value routing and §Content routing across the network
    const key = yield* Keys.generate("Ed25519")
    const pk = Kad.pkKey(PeerId.fromPrivateKey(key))
    yield* nodes[0]!.kad.put(pk, Keys.marshalPublicKey(key.publicKey))
    const value = yield* Effect.option(nodes[count - 1]!.kad.get(pk))
    const cid = Uint8Array.of(0x12, 0x20, ...new Uint8Array(32).fill(seed & 0xff))
    yield* nodes[1]!.kad.provide(cid)
    const providers = yield* nodes[count - 2]!.kad.findProviders(cid)
    return {
      nodes: count,
      seed,
      lookups,
      exact,
      valueFound: value._tag === "Some" && Keys.marshalPublicKey(key.publicKey).every((b, i) => value.value[i] === b),
      providerFound: providers.some((p) => PeerId.equals(p.peerId, nodes[1]!.host.peerId)),
      requests: distribution(measured.map((s) => s.requests)),
      hops: distribution(measured.map((s) => s.hops)),
      latencyMillis,
      lookupMillis: distribution(measured.map((s) => s.millis))
    } satisfies KadSimulationResult
  })
