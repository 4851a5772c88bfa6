/**
 * The conformance report, from a real test run: vitest's JSON reporter output
 * (written by `npm test` to `conformance/results.json`) joined with the
 * inventory, the hand review and the claims in the test names.
 */
import * as path from "node:path"
import type { Clause, Level } from "./extract.ts"
import { claimPattern, claimsIn, type Inventory, levels, type Review, root } from "./inventory.ts"

/** The part of vitest's JSON report we read. */
export interface VitestJson {
  readonly startTime?: number
  readonly numTotalTests?: number
  readonly numPassedTests?: number
  readonly numFailedTests?: number
  readonly testResults: ReadonlyArray<{
    readonly name: string
    readonly assertionResults: ReadonlyArray<{
      readonly fullName?: string
      readonly title: string
      readonly ancestorTitles?: ReadonlyArray<string>
      readonly status: string
      readonly location?: { readonly line: number; readonly column: number } | null
    }>
  }>
}

export type Status = "passing" | "failing" | "untested" | "not-applicable" | "deviates" | "not-normative"

export interface TestRef {
  readonly file: string
  readonly line: number | undefined
  readonly name: string
  readonly status: string
}

export interface ClauseResult {
  readonly clause: Clause
  readonly status: Status
  readonly tests: ReadonlyArray<TestRef>
  readonly reason: string | undefined
}

export interface Coverage {
  readonly total: number
  readonly applicable: number
  readonly passing: number
  readonly failing: number
  readonly untested: number
}

export interface Report {
  readonly run: { readonly date: string; readonly tests: number; readonly passed: number; readonly failed: number }
  readonly specs: ReadonlyArray<{
    readonly spec: Inventory["specs"][number]
    readonly clauses: ReadonlyArray<ClauseResult>
    readonly byLevel: Record<Level, Coverage>
  }>
  readonly headline: Record<"MUST" | "SHOULD", Coverage>
}

const coverage = (results: ReadonlyArray<ClauseResult>): Coverage => {
  const applicable = results.filter((r) => r.status !== "not-applicable" && r.status !== "not-normative")
  return {
    total: results.length,
    applicable: applicable.length,
    passing: applicable.filter((r) => r.status === "passing" || (r.status === "deviates" && r.tests.length > 0)).length,
    failing: applicable.filter((r) => r.status === "failing").length,
    untested: applicable.filter((r) => r.status === "untested").length
  }
}

/** A test file's path in the repository, also when the run was made in another checkout (CI's clone). */
const repoPath = (file: string): string => {
  const m = /(?:^|\/)((?:spec-tests|property-tests|src|layers)\/.*)$/.exec(file.replace(/\\/g, "/"))
  return m !== null ? m[1]! : path.relative(root, file)
}

export const build = (inventory: Inventory, review: Record<string, Review>, run: VitestJson): Report => {
  const pattern = claimPattern(inventory.specs.map((s) => s.id))
  const byClause = new Map<string, Array<TestRef>>()
  let tests = 0
  for (const file of run.testResults) {
    for (const a of file.assertionResults) {
      tests++
      const name = a.fullName ?? [...(a.ancestorTitles ?? []), a.title].join(" ")
      for (const id of new Set(claimsIn(name, pattern))) {
        const list = byClause.get(id) ?? []
        list.push({ file: repoPath(file.name), line: a.location?.line, name: a.title, status: a.status })
        byClause.set(id, list)
      }
    }
  }
  const specs = inventory.specs.map((spec) => {
    const clauses = inventory.clauses.filter((c) => c.spec === spec.id).map((clause): ClauseResult => {
      const refs = byClause.get(clause.id) ?? []
      const ran = refs.filter((t) => t.status === "passed" || t.status === "failed")
      const r = review[clause.id]
      const status: Status = r?.status === "not-applicable" || r?.status === "not-normative"
        ? r.status
        : ran.some((t) => t.status === "failed")
        ? "failing"
        : r?.status === "deviates"
        ? "deviates"
        : ran.length > 0
        ? "passing"
        : "untested"
      return { clause, status, tests: refs, reason: r?.reason }
    })
    const byLevel = Object.fromEntries(
      levels.map((l) => [l, coverage(clauses.filter((c) => c.clause.level === l))])
    ) as Record<
      Level,
      Coverage
    >
    return { spec, clauses, byLevel }
  })
  const shipped = specs.filter((s) => s.spec.ships).flatMap((s) => s.clauses)
  return {
    run: {
      date: new Date(run.startTime ?? 0).toISOString(),
      tests,
      passed: run.numPassedTests ?? 0,
      failed: run.numFailedTests ?? 0
    },
    specs,
    headline: {
      MUST: coverage(shipped.filter((c) => c.clause.level === "MUST" || c.clause.level === "MUST NOT")),
      SHOULD: coverage(shipped.filter((c) => c.clause.level === "SHOULD" || c.clause.level === "SHOULD NOT"))
    }
  }
}

const pct = (c: Coverage) => (c.applicable === 0 ? "—" : `${Math.round((100 * c.passing) / c.applicable)} %`)
const frac = (c: Coverage) => `${c.passing}/${c.applicable}`
const md = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ")
const link = (t: TestRef, from: string) =>
  `${path.relative(from, path.join(root, t.file))}${t.line === undefined ? "" : `#L${t.line}`}`

const mergeLevels = (a: Coverage, b: Coverage): Coverage => ({
  total: a.total + b.total,
  applicable: a.applicable + b.applicable,
  passing: a.passing + b.passing,
  failing: a.failing + b.failing,
  untested: a.untested + b.untested
})

export const markdown = (report: Report, outDir: string): string => {
  const out: Array<string> = []
  out.push("# Spec conformance report", "")
  out.push(
    `Generated by \`npm run conformance\` from the test run of ${report.run.date} (${report.run.tests} tests: ${report.run.passed} passed, ${report.run.failed} failed).`,
    "A clause is **passing** when a test that claims it (its id in the test's name) ran and passed, **failing** when one failed, **untested** when none ran.",
    "Clauses reviewed as not applicable, as deviating on purpose, or as not normative after all carry the reviewer's reason (`conformance/review.json`).",
    "Inventory: `conformance/clauses.json`, extracted from the spec commits in `conformance/sources.json` by `npm run conformance -- extract`.",
    ""
  )
  out.push("## Headline (specs we ship)", "")
  out.push("| level | tested and passing | coverage | failing | untested |", "|---|---|---|---|---|")
  for (const l of ["MUST", "SHOULD"] as const) {
    const c = report.headline[l]
    out.push(`| ${l} (and ${l} NOT) | ${frac(c)} | ${pct(c)} | ${c.failing} | ${c.untested} |`)
  }
  out.push("", "## Per spec", "")
  out.push("| spec | ships | clauses | MUST | SHOULD | MAY | untested MUST |", "|---|---|---|---|---|---|---|")
  for (const s of report.specs) {
    const must = mergeLevels(s.byLevel.MUST, s.byLevel["MUST NOT"])
    const should = mergeLevels(s.byLevel.SHOULD, s.byLevel["SHOULD NOT"])
    out.push(
      `| [${s.spec.title}](#${s.spec.id.replace(/\./g, "")}) | ${
        s.spec.ships ? "yes" : "not yet"
      } | ${s.clauses.length} | ${frac(must)} (${pct(must)}) | ${frac(should)} (${pct(should)}) | ${
        frac(s.byLevel.MAY)
      } | ${must.untested} |`
    )
  }
  for (const s of report.specs) {
    out.push("", `## ${s.spec.id}`, "")
    out.push(
      `${s.spec.title}: [${s.spec.repo} ${s.spec.path}](${s.spec.url}) at \`${s.spec.commit.slice(0, 12)}\`.`,
      ""
    )
    out.push("| id | level | status | tests | clause |", "|---|---|---|---|---|")
    for (const r of s.clauses) {
      const tests = r.tests.map((t) =>
        `[${t.status === "passed" ? "✓" : t.status === "failed" ? "✗" : "·"}](${link(t, outDir)})`
      ).join(" ")
      const why = r.reason === undefined ? "" : ` — *${md(r.reason)}*`
      out.push(
        `| \`${r.clause.id}\` | ${r.clause.level}${r.clause.informal ? "¹" : ""} | ${r.status} | ${tests} | ${
          md(r.clause.text)
        }${why} |`
      )
    }
  }
  out.push("", "¹ stated in lower case in the spec (no RFC 2119 capitals); read as the same level.", "")
  return out.join("\n")
}

const html = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

export const page = (report: Report, outDir: string): string => {
  const rows = report.specs.flatMap((s) =>
    s.clauses.map((r) => {
      const tests = r.tests
        .map((t) =>
          `<a href="${html(link(t, outDir))}" title="${html(t.name)}">${
            t.status === "passed" ? "✓" : t.status === "failed" ? "✗" : "·"
          }</a>`
        )
        .join(" ")
      return `<tr class="${r.status}" data-spec="${html(s.spec.id)}" data-level="${r.clause.level}"><td><code>${
        html(r.clause.id)
      }</code></td><td>${r.clause.level}</td><td>${r.status}</td><td>${tests}</td><td>${html(r.clause.text)}${
        r.reason === undefined ? "" : `<br><em>${html(r.reason)}</em>`
      }</td></tr>`
    })
  )
  const summary = report.specs.map((s) => {
    const must = mergeLevels(s.byLevel.MUST, s.byLevel["MUST NOT"])
    const should = mergeLevels(s.byLevel.SHOULD, s.byLevel["SHOULD NOT"])
    return `<tr><td>${html(s.spec.title)}</td><td>${
      s.spec.ships ? "yes" : "not yet"
    }</td><td>${s.clauses.length}</td><td>${frac(must)} (${pct(must)})</td><td>${frac(should)} (${
      pct(should)
    })</td></tr>`
  })
  const specOptions = report.specs.map((s) => `<option value="${html(s.spec.id)}">${html(s.spec.title)}</option>`).join(
    ""
  )
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>effect-libp2p spec conformance</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:80em}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
tr.passing td:nth-child(3){color:#070}tr.failing td:nth-child(3){color:#b00;font-weight:bold}tr.untested td:nth-child(3){color:#a60}
tr.not-applicable,tr.not-normative{color:#888}a{text-decoration:none}
</style></head><body>
<h1>Spec conformance</h1>
<p>From the test run of ${
  html(report.run.date)
}: ${report.run.tests} tests, ${report.run.passed} passed, ${report.run.failed} failed.
MUST: <strong id="must">${frac(report.headline.MUST)} (${pct(report.headline.MUST)})</strong>,
SHOULD: <strong id="should">${frac(report.headline.SHOULD)} (${
  pct(report.headline.SHOULD)
})</strong> tested and passing, in the specs we ship.</p>
<table><thead><tr><th>spec</th><th>ships</th><th>clauses</th><th>MUST</th><th>SHOULD</th></tr></thead><tbody>${
  summary.join("")
}</tbody></table>
<h2>Clauses</h2>
<p><label>spec <select id="spec"><option value="">all</option>${specOptions}</select></label>
<label>status <select id="status"><option value="">all</option><option>passing</option><option>failing</option><option>untested</option><option>deviates</option><option>not-applicable</option><option>not-normative</option></select></label></p>
<table id="clauses"><thead><tr><th>id</th><th>level</th><th>status</th><th>tests</th><th>clause</th></tr></thead><tbody>
${rows.join("\n")}
</tbody></table>
<script>
const spec=document.getElementById("spec"),status=document.getElementById("status")
const apply=()=>{for(const tr of document.querySelectorAll("#clauses tbody tr")){tr.hidden=(spec.value&&tr.dataset.spec!==spec.value)||(status.value&&tr.className!==status.value)}}
spec.onchange=apply;status.onchange=apply
</script>
</body></html>
`
}
