/**
 * A small gossipsub network with 10 % misbehaving peers under TestClock
 * (`simulation.ts`): every valid message reaches every honest subscriber, no
 * invalid one reaches an honest application, and the P₄ penalty pushes the
 * misbehaving peers out of honest meshes; with peers that never forward,
 * delivery stays at least 99.9 %. Both also report latency, hops, duplicates,
 * control bytes and mesh degrees over the run. The same at 1,000 nodes:
 * `npm run sim -- gossipsub --nodes 1000`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Memory from "../../../src/transport/Memory.ts"
import { gossipsubSimulation, type GossipsubSimulationResult } from "./simulation.ts"

/** Latency, hops, duplicates and control bytes were measured and are consistent. */
const expectPropagationMeasured = (r: GossipsubSimulationResult) => {
  expect(r.hops.median).toBeGreaterThanOrEqual(1)
  expect(r.hops.max).toBeLessThan(NODES)
  expect(r.hops.p99).toBeLessThanOrEqual(r.hops.max)
  expect(r.latencyMs.median).toBeLessThanOrEqual(r.latencyMs.max)
  expect(r.duplicatesPerMessage).toBeGreaterThan(0) // a mesh of degree > 1 sends copies
  expect(r.controlBytesPerMessage).toBeGreaterThan(0)
  expect(r.meshDegreeOverRun.min).toBeLessThanOrEqual(r.meshDegreeOverRun.mean)
  expect(r.meshDegreeOverRun.max).toBeLessThanOrEqual(12) // D_hi
}

const NODES = Number(process.env.GOSSIPSUB_SIM_NODES ?? 30)
const SEED = 11

describe(`gossipsub simulation, ${NODES} nodes, 10 % misbehaving (invalid, silent), seed ${SEED}`, () => {
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
        expectPropagationMeasured(r)
      }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork)),
    { timeout: 300_000 }
  )
  it.live(
    "gossipsub-v1.1 §Peer Scoring, §P₃: with misbehaving peers that never forward, at least 99.9 % of valid messages still reach every honest node and P₃ pushes them out of honest meshes [gossipsub-v1.1:extended-validators:4]",
    () =>
      Effect.gen(function*() {
        const r = yield* gossipsubSimulation({ nodes: NODES, seed: SEED, misbehaving: 0.1, misbehaviour: "silent" })
        expect(r.misbehaviour).toBe("silent")
        expect(r.misbehaving).toBe(Math.floor(NODES * 0.1))
        expect(r.delivery).toBeGreaterThanOrEqual(0.999)
        expect(r.invalidDelivered).toBe(0)
        expect(r.badMeshShareStart).toBeGreaterThan(0)
        expect(r.badMeshShareEnd).toBeLessThan(r.badMeshShareStart / 2) // P₃/P₃b prune them
        expect(r.graylisted).toBeGreaterThan(0) // the ones that were meshed
        expect(r.meshDegree.max).toBeLessThanOrEqual(12) // D_hi
        expectPropagationMeasured(r)
      }).pipe(Effect.scoped, Effect.provide(Memory.layerNetwork)),
    { timeout: 300_000 }
  )
})
