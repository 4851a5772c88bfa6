/**
 * The conformance inventory and the claims tests make on it.
 *
 * - `clauses.json`: every normative statement of every spec in `sources.json`
 *   (written by `npm run conformance -- extract`, reviewed by hand).
 * - `review.json`: the hand review: clauses that are not applicable to us,
 *   where we deviate on purpose, or that the extractor took for normative
 *   when they are not; each with its reason.
 * - claims: a test claims a clause by naming its id (`[noise:wire-format:2]`)
 *   in its own name or a describe block's name. Any `<spec>:<section>:<n>`
 *   whose spec is one of ours counts as a claim, so a misspelt id is caught.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import type { Clause, Level } from "./extract.ts"

export const root = path.resolve(import.meta.dirname, "..")
export const dir = import.meta.dirname

export interface SpecSource {
  readonly id: string
  readonly path: string
  readonly title: string
  readonly ships: boolean
}
export interface RepoSource {
  readonly repo: string
  readonly commit: string
  readonly specs: ReadonlyArray<SpecSource>
}
export interface Sources {
  readonly repos: ReadonlyArray<RepoSource>
}

export interface Inventory {
  readonly specs: ReadonlyArray<SpecSource & { readonly repo: string; readonly commit: string; readonly url: string }>
  readonly clauses: ReadonlyArray<Clause>
}

export type ReviewStatus = "not-applicable" | "deviates" | "not-normative"
export interface Review {
  readonly status: ReviewStatus
  readonly reason: string
}

const readJson = <A>(file: string): A => JSON.parse(fs.readFileSync(file, "utf8")) as A

export const loadSources = (): Sources => readJson<Sources>(path.join(dir, "sources.json"))
export const loadInventory = (): Inventory => readJson<Inventory>(path.join(dir, "clauses.json"))
export const loadReview = (): Record<string, Review> => {
  const raw = readJson<Record<string, Review | string>>(path.join(dir, "review.json"))
  const out: Record<string, Review> = {}
  for (const [id, r] of Object.entries(raw)) if (typeof r !== "string" && id !== "comment") out[id] = r
  return out
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** A matcher for claims on the given spec ids. */
export const claimPattern = (specIds: ReadonlyArray<string>): RegExp =>
  new RegExp(
    `(?<![\\w.-])(${
      [...specIds].sort((a, b) => b.length - a.length).map(escape).join("|")
    }):([\\p{L}\\p{N}_-]+):(\\d+)(?![\\p{L}\\p{N}_])`,
    "gu"
  )

export const claimsIn = (text: string, pattern: RegExp): Array<string> =>
  [...text.matchAll(pattern)].map((m) => `${m[1]}:${m[2]}:${m[3]}`)

/** Every test source file (what vitest's `include` reads). */
export const testFiles = (): Array<string> => {
  const out: Array<string> = []
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith(".test.ts")) out.push(p)
    }
  }
  for (const top of ["spec-tests", "property-tests", "src", "layers"]) {
    const p = path.join(root, top)
    if (fs.existsSync(p)) walk(p)
  }
  return out.sort()
}

export interface Problem {
  readonly where: string
  readonly message: string
}

/** Claims of ids that do not exist, review entries for unknown ids, review entries without a reason. */
export const check = (
  inventory: Inventory,
  review: Record<string, Review>,
  files: ReadonlyArray<string> = testFiles()
): Array<Problem> => {
  const ids = new Set(inventory.clauses.map((c) => c.id))
  const pattern = claimPattern(inventory.specs.map((s) => s.id))
  const problems: Array<Problem> = []
  for (const file of files) {
    const lines = fs.readFileSync(file, "utf8").split("\n")
    lines.forEach((line, i) => {
      for (const id of claimsIn(line, pattern)) {
        if (!ids.has(id)) {
          problems.push({
            where: `${path.relative(root, file)}:${i + 1}`,
            message: `claims ${id}, which is not in conformance/clauses.json`
          })
        }
      }
    })
  }
  const statuses: ReadonlyArray<ReviewStatus> = ["not-applicable", "deviates", "not-normative"]
  for (const [id, r] of Object.entries(review)) {
    if (!ids.has(id)) {
      problems.push({
        where: "conformance/review.json",
        message: `reviews ${id}, which is not in conformance/clauses.json`
      })
    }
    if (!statuses.includes(r.status)) {
      problems.push({ where: "conformance/review.json", message: `${id}: unknown status ${r.status}` })
    }
    if (typeof r.reason !== "string" || r.reason.trim().length < 10) {
      problems.push({ where: "conformance/review.json", message: `${id}: a review needs its reason` })
    }
  }
  return problems
}

export const levels: ReadonlyArray<Level> = ["MUST", "MUST NOT", "SHOULD", "SHOULD NOT", "MAY"]
