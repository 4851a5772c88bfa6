/**
 * A small Kad-DHT network on the memory transport under TestClock (kad-dht spec
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

/** 50 by default (about 25 CPU s here); KAD_SIM_NODES overrides. */
const NODES = Number(process.env.KAD_SIM_NODES ?? 50)
const SEED = 7
const LOOKUPS = 20

describe(`Kad simulation, ${NODES} nodes, seed ${SEED}`, () => {
  it.effect(
    "§Peer routing: lookups return exactly the true k closest peers; values and providers are found [kad-dht:kademlia-routing-table:1] [kad-dht:bootstrap-process:1]",
    () =>
      Effect.gen(function*() {
        const { hops, requests, ...result } = yield* kadSimulation({ nodes: NODES, seed: SEED, lookups: LOOKUPS })
        expect(result).toEqual({
          nodes: NODES,
          seed: SEED,
          lookups: LOOKUPS,
          exact: LOOKUPS,
          valueFound: true,
          providerFound: true
        })
        // every lookup ended with k peers that answered: at least k requests, at least one hop
        expect(requests.median).toBeGreaterThanOrEqual(20)
        expect(hops.median).toBeGreaterThanOrEqual(1)
        expect(hops.max).toBeLessThan(NODES)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    { timeout: 300_000 }
  )
})
