/**
 * LIP-99's pluggable components, checked on their own: the delay strategy of
 * §6.2 (`sampleDelay`, exponential with the header's mean) and the spam
 * protection interface of §9.6 (`proofOfWork`, per-hop proofs of §9.2.2).
 * The network tests (Mix.test.ts) show them at work between nodes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import * as Mix from "../../../src/protocols/mix/Mix.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"

const packet = () => new Uint8Array(crypto.randomBytes(Sphinx.PACKET_SIZE))

describe("mix pluggable components", () => {
  it("LIP-99 §8.5.2 step 2: paths are an unbiased sample of distinct discovered nodes [mix:852-construction-steps:7] [mix:61-discovery:3]", () => {
    const pool = Array.from({ length: 12 }, (_, i) => i)
    const trials = 12_000
    const counts = new Array<number>(pool.length).fill(0)
    const firsts = new Array<number>(pool.length).fill(0)
    for (let t = 0; t < trials; t++) {
      const path = Mix.sample(pool, 3)
      expect(new Set(path).size).toBe(3)
      for (const x of path) counts[x]!++
      firsts[path[0]!]!++
    }
    // Each node is on 3/12 of the paths and first on 1/12 of them; the bounds are about 6 standard deviations wide.
    for (const c of counts) expect(Math.abs(c - trials / 4)).toBeLessThan(300)
    for (const c of firsts) expect(Math.abs(c - trials / 12)).toBeLessThan(180)
  })

  it("LIP-99 §6.2: delays are exponential with the header's mean, sampled independently, spread (not clustered) [mix:62-delay-strategy:3] [mix:62-delay-strategy:4] [mix:62-delay-strategy:5] [mix:41-mixing-strategy:1]", () => {
    // The inverse CDF: u = e^-1 gives exactly the mean; the tail is cut at mean·ln(10^6).
    expect(Mix.sampleDelay(100, Math.exp(-1))).toBeCloseTo(100, 9)
    expect(Mix.sampleDelay(100, 1e-9)).toBeCloseTo(100 * Math.log(1e6), 9)
    expect(Mix.sampleDelay(0)).toBe(0)
    // Many draws with crypto randomness: mean ≈ 100, standard deviation ≈ mean (exponential), no two hops alike.
    const n = 20_000
    const xs = Array.from({ length: n }, () => Mix.sampleDelay(100))
    const mean = xs.reduce((a, b) => a + b, 0) / n
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / n)
    expect(mean).toBeGreaterThan(90)
    expect(mean).toBeLessThan(110)
    expect(sd / mean).toBeGreaterThan(0.85)
    expect(new Set(xs).size).toBeGreaterThan(n * 0.99)
    // Consecutive draws (one per hop) are uncorrelated.
    const lag = xs.slice(1).reduce((a, b, i) => a + (b - mean) * (xs[i]! - mean), 0) / (n - 1) / sd ** 2
    expect(Math.abs(lag)).toBeLessThan(0.05)
  })

  it.effect(
    "LIP-99 §9.6: proofOfWork has a fixed proof size, verifies its own packet only, and returns false for malformed proofs [mix:96-spam-protection-interface:1] [mix:96-spam-protection-interface:2] [mix:96-spam-protection-interface:3] [mix:962-interface-procedures:1] [mix:9621-proof-generation:3] [mix:9622-proof-verification:2] [mix:9224-impact-on-packet-size:1] [mix:91-spam-protection-mechanism-requirements:4] [mix:91-spam-protection-mechanism-requirements:5] [mix:91-spam-protection-mechanism-requirements:6] [mix:91-spam-protection-mechanism-requirements:7] [mix:94-anonymity-and-security-considerations:3] [mix:9622-proof-verification:1] [mix:932-for-per-hop-generated-proofs:2] [mix:91-spam-protection-mechanism-requirements:9] [mix:91-spam-protection-mechanism-requirements:3]",
    () =>
      Effect.gen(function*() {
        const spam = Mix.proofOfWork(8)
        const a = packet()
        const b = packet()
        const proofA = yield* spam.generateProof(a)
        const proofB = yield* spam.generateProof(b)
        expect(proofA.byteLength).toBe(spam.proofSize)
        expect(proofB.byteLength).toBe(spam.proofSize)
        expect(yield* spam.verifyProof(proofA, a)).toBe(true)
        // Bound to its packet: a proof for one hop's packet is not a proof for another packet.
        let reused = 0
        for (let i = 0; i < 16; i++) if (yield* spam.verifyProof(proofA, packet())) reused++
        expect(reused).toBeLessThan(4)
        // The proof is a function of the packet alone: nothing about the node or the sender is in it.
        expect(yield* spam.generateProof(a)).toEqual(proofA)
        // Truncated, extended and empty proofs are false, never a failure.
        expect(yield* spam.verifyProof(proofA.subarray(0, 7), a)).toBe(false)
        expect(yield* spam.verifyProof(new Uint8Array([...proofA, 0]), a)).toBe(false)
        expect(yield* spam.verifyProof(new Uint8Array(0), a)).toBe(false)
      })
  )
})
