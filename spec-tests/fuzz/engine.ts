/**
 * The fuzz engine: fast-check at scale, mutating a seed corpus, guided by
 * outcomes. `@jazzer.js/core` (libFuzzer, real coverage guidance) is not a
 * dependency of this project (see README "Fuzzing"); this engine is the
 * stand-in:
 *
 * - every input of the corpus is replayed first (the regression inputs of
 *   past crashes live there);
 * - then `runs` inputs, one in five random bytes, the others a corpus input
 *   with 1–6 mutations (bit flips, interesting bytes, inserted varints,
 *   insertions, deletions, duplications, truncation, splicing with another
 *   corpus input);
 * - an input whose outcome label (`Target.run`) was not seen before joins
 *   the corpus (at most `maxCorpus`), so inputs that reach new failure paths
 *   are mutated further;
 * - a throw is a crash, a run longer than `hangMillis` a hang: the run stops
 *   and reports the (shrunk) input.
 *
 * Synchronous on purpose: the decoders are, and a hang is measured, not
 * interrupted.
 */
import fc from "fast-check"
import * as Fs from "node:fs"
import * as Path from "node:path"
import type { Target } from "./support.ts"

export const CORPUS_DIR = Path.join(import.meta.dirname, "corpus")

export interface FuzzOptions {
  readonly runs: number
  readonly seed?: number
  /** A run slower than this is a hang (default 1,000 ms). */
  readonly hangMillis?: number
  readonly maxCorpus?: number
  /** Longest mutated input (default: the target's `maxLength`, else 4,096 bytes). */
  readonly maxLength?: number
}

export interface Finding {
  readonly kind: "crash" | "hang"
  readonly input: Uint8Array
  readonly error: string
}

export interface FuzzReport {
  readonly target: string
  readonly runs: number
  readonly millis: number
  readonly execsPerSecond: number
  /** Distinct outcome labels seen. */
  readonly labels: number
  readonly corpus: number
  readonly finding: Finding | undefined
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

/** The seed corpus of `name`: one hex input a line (`#` comments allowed). */
export const readCorpus = (name: string): Array<Uint8Array> => {
  const file = Path.join(CORPUS_DIR, `${name}.txt`)
  if (!Fs.existsSync(file)) return []
  return Fs.readFileSync(file, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => new Uint8Array(Buffer.from(l, "hex")))
}

export const writeCorpus = (name: string, inputs: ReadonlyArray<Uint8Array>, header: string): void => {
  Fs.mkdirSync(CORPUS_DIR, { recursive: true })
  Fs.writeFileSync(Path.join(CORPUS_DIR, `${name}.txt`), `# ${header}\n${inputs.map(hex).join("\n")}\n`)
}

type Op =
  | { readonly k: "flip"; readonly at: number; readonly bit: number }
  | { readonly k: "set"; readonly at: number; readonly v: number }
  | { readonly k: "insert"; readonly at: number; readonly bytes: Uint8Array }
  | { readonly k: "delete"; readonly at: number; readonly n: number }
  | { readonly k: "dup"; readonly at: number; readonly n: number }
  | { readonly k: "truncate"; readonly at: number }
  | { readonly k: "splice"; readonly at: number; readonly from: number }

const varintBytes = (v: bigint): Uint8Array => {
  const out: Array<number> = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v > 0n) b |= 0x80
    out.push(b)
  } while (v > 0n)
  return Uint8Array.from(out)
}

const interesting = [0, 1, 0x7f, 0x80, 0xff, 0x40, 0x20, 0x0a, 0x2f]
const bigValues = [
  0n,
  1n,
  127n,
  128n,
  255n,
  256n,
  65535n,
  65536n,
  2n ** 31n - 1n,
  2n ** 32n,
  2n ** 53n,
  2n ** 63n,
  2n ** 64n - 1n
]

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ k: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    k: fc.constant("set" as const),
    at: fc.nat(),
    v: fc.oneof(fc.constantFrom(...interesting), fc.nat(255))
  }),
  fc.record({
    k: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.constantFrom(...bigValues).map(varintBytes))
  }),
  fc.record({ k: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ k: fc.constant("dup" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ k: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("splice" as const), at: fc.nat(), from: fc.nat() })
)

const apply = (input: Uint8Array, ops: ReadonlyArray<Op>, other: Uint8Array, maxLength: number): Uint8Array => {
  let b = input
  for (const op of ops) {
    const at = b.length === 0 ? 0 : op.at % (b.length + 1)
    switch (op.k) {
      case "flip":
        if (b.length > 0) {
          b = b.slice()
          b[at % b.length]! ^= 1 << op.bit
        }
        break
      case "set":
        if (b.length > 0) {
          b = b.slice()
          b[at % b.length] = op.v
        }
        break
      case "insert":
        b = Buffer.concat([b.subarray(0, at), op.bytes, b.subarray(at)])
        break
      case "delete":
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + op.n)])
        break
      case "dup":
        b = Buffer.concat([b.subarray(0, at + op.n), b.subarray(at)])
        break
      case "truncate":
        b = b.subarray(0, at)
        break
      case "splice":
        b = Buffer.concat([b.subarray(0, at), other.subarray(other.length === 0 ? 0 : op.from % other.length)])
        break
    }
    if (b.length > maxLength) b = b.subarray(0, maxLength)
  }
  return new Uint8Array(b)
}

/** Run `target` on one input: a finding, or its label. */
const once = (target: Target, input: Uint8Array, hangMillis: number): string | Finding => {
  const started = performance.now()
  let l: string
  try {
    l = target.run(input)
  } catch (e) {
    return { kind: "crash", input, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) }
  }
  const took = performance.now() - started
  if (took > hangMillis) return { kind: "hang", input, error: `took ${took.toFixed(0)} ms` }
  return l
}

export const fuzz = (target: Target, corpus: ReadonlyArray<Uint8Array>, options: FuzzOptions): FuzzReport => {
  const hangMillis = options.hangMillis ?? 1000
  const maxCorpus = options.maxCorpus ?? 4096
  const maxLength = options.maxLength ?? target.maxLength ?? 4096
  const pool: Array<Uint8Array> = corpus.length > 0 ? [...corpus] : [new Uint8Array(0)]
  const seen = new Set<string>()
  const started = performance.now()
  const report = (runs: number, finding: Finding | undefined): FuzzReport => {
    const millis = performance.now() - started
    return {
      target: target.name,
      runs,
      millis,
      execsPerSecond: Math.round(runs / Math.max(millis, 1) * 1000),
      labels: seen.size,
      corpus: pool.length,
      finding
    }
  }
  // 1. the corpus as it is (past crashes are regression inputs there)
  for (const input of corpus) {
    const r = once(target, input, hangMillis)
    if (typeof r !== "string") return report(0, r)
    seen.add(r)
  }
  // 2. mutations and random inputs
  const arb = fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }) },
    {
      weight: 4,
      arbitrary: fc.tuple(fc.nat(), fc.array(opArb, { minLength: 1, maxLength: 6 }), fc.nat()).map(([i, ops, j]) =>
        apply(pool[i % pool.length]!, ops, pool[j % pool.length]!, maxLength)
      )
    }
  )
  let last: Finding | undefined
  const result = fc.check(
    fc.property(arb, (input) => {
      const r = once(target, input, hangMillis)
      if (typeof r !== "string") {
        last = r
        return false
      }
      if (!seen.has(r)) {
        seen.add(r)
        if (pool.length < maxCorpus) pool.push(input)
      }
      return true
    }),
    { numRuns: options.runs, ...(options.seed !== undefined ? { seed: options.seed } : {}) }
  )
  if (result.failed && result.counterexample !== null) {
    // the shrunk input, re-run for its own error
    const input = result.counterexample[0]
    const r = once(target, input, hangMillis)
    return report(result.numRuns, typeof r === "string" ? last : r)
  }
  return report(result.numRuns, undefined)
}
