/**
 * A small gossipsub network with 10 % misbehaving peers under TestClock
 * (`simulation.ts`): every valid message reaches every honest subscriber, no
 * invalid one reaches an honest application, and the P₄ penalty pushes the
 * misbehaving peers out of honest meshes. The same at 1,000 nodes:
 * `npm run sim -- gossipsub --nodes 1000`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Memory from "../../../src/transport/Memory.ts"
import { gossipsubSimulation } from "./simulation.ts"

const NODES = Number(process.env.GOSSIPSUB_SIM_NODES ?? 30)
const SEED = 11

describe(`gossipsub simulation, ${NODES} nodes, 10 % misbehaving, seed ${SEED}`, () => {
  it.live(
    "gossipsub-v1.1 §P₄: valid messages reach every honest node; invalid ones reach no honest application; the misbehaving peers leave honest meshes and fall below the graylist threshold [gossipsub-v1.1:extended-validators:4]",
    () =>
      Effect.gen(function*() {
        const r = yield* gossipsubSimulation({ nodes: NODES, seed: SEED, misbehaving: 0.1 })
        expect(r.misbehaving).toBe(Math.floor(NODES * 0.1))
        expect(r.delivery).toBe(1)
        expect(r.invalidDelivered).toBe(0)
        expect(r.badMeshShareStart).toBeGreaterThan(0)
        expect(r.badMeshShareEnd).toBe(0)
        expect(r.graylisted).toBe(1)
        expect(r.meshDegree.max).toBeLessThanOrEqual(12) // D_hi
      }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork)),
    { timeout: 300_000 }
  )
})
