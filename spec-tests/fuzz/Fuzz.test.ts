/**
 * A short run of every fuzz target (ARCHITECTURE.md §5: bad input from the
 * network is a typed failure, never a throw or a hang): its seed corpus —
 * valid inputs and the regression inputs of past crashes — replayed, then
 * 2,000 mutated or random inputs with a fixed seed (so a failure replays).
 * Long runs: `npm run fuzz -- <target> --runs N`.
 */
import { describe, expect, it } from "vitest"
import { fuzz, readCorpus } from "./engine.ts"
import { targets } from "./targets.ts"

describe("fuzz: every decoder returns a value or a typed failure (short run)", () => {
  for (const target of targets) {
    it(`ARCHITECTURE §5 bad input: ${target.name} never throws nor hangs (corpus + 2,000 runs)`, () => {
      const corpus = readCorpus(target.name)
      expect(corpus.length).toBeGreaterThan(0)
      const report = fuzz(target, corpus, { runs: 2000, seed: 23, hangMillis: 2000 })
      expect(report.finding).toBeUndefined()
      expect(report.runs).toBe(2000)
    }, 30_000)
  }
})
