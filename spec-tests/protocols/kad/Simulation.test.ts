/**
 * A Kad-DHT network of 200 nodes on the memory transport under TestClock (kad-dht spec
 * §Peer routing, §Bootstrap process; the network is built by `simulation.ts`):
 * lookups of random keys from random nodes must return exactly the true k
 * closest peers, computed from the whole network; a record and a provider are
 * found from a far node. Reproducible from SEED. The same network at 1,000
 * nodes: `npm run sim -- dht --nodes 1000`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Memory from "../../../src/transport/Memory.ts"
import { kadSimulation } from "./simulation.ts"

/** 200 by default (about 135 CPU s on the 2-core machine, over /plaintext/2.0.0); KAD_SIM_NODES overrides. */
const NODES = Number(process.env.KAD_SIM_NODES ?? 200)
const SEED = 7
const LOOKUPS = 20

describe(`Kad simulation, ${NODES} nodes, seed ${SEED}`, () => {
  it.effect(
    "§Peer routing: lookups return exactly the true k closest peers; values and providers are found [kad-dht:kademlia-routing-table:1] [kad-dht:bootstrap-process:1]",
    () =>
      Effect.gen(function*() {
        const { hops, latencyMillis, lookupMillis, requests, ...result } = yield* kadSimulation({
          nodes: NODES,
          seed: SEED,
          lookups: LOOKUPS
        })
        expect([latencyMillis, lookupMillis.max]).toEqual([0, 0]) // no latency: no virtual time
        expect(result).toEqual({
          nodes: NODES,
          seed: SEED,
          lookups: LOOKUPS,
          exact: LOOKUPS,
          valueFound: true,
          providerFound: true
        })
        // every lookup ended with k peers that answered: at least k requests, at least one hop
        expect(requests.median).toBeGreaterThanOrEqual(Math.min(20, NODES - 1))
        expect(hops.median).toBeGreaterThanOrEqual(1)
        expect(hops.max).toBeLessThan(NODES)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    { timeout: 900_000 }
  )

  it.effect(
    "§Peer routing with a 20 ms one-way latency (30 nodes): the same exact answers, each lookup takes virtual time",
    () =>
      Effect.gen(function*() {
        const r = yield* kadSimulation({ nodes: 30, seed: SEED, lookups: 5, latencyMillis: 20 })
        expect([r.exact, r.valueFound, r.providerFound]).toEqual([5, true, true])
        expect(r.latencyMillis).toBe(20)
        // a request on a new stream is at least the protocol negotiation and the request: 2 round trips
        expect(r.lookupMillis.median).toBeGreaterThanOrEqual(2 * 2 * 20)
        // and a lookup asks in rounds of alpha: not everything at once
        expect(r.lookupMillis.max).toBeGreaterThan(r.requests.median / 3 * 2 * 20)
      }).pipe(Effect.provide(Memory.layerNetworkWith({ latency: true }))),
    { timeout: 300_000 }
  )
})
