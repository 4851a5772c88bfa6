/**
 * `npm run conformance [-- <command>]`
 *
 *   extract --snapshot <owner/name>=<git dir> …
 *       reads each spec of sources.json at its pinned commit from a local
 *       clone or mirror of its repository and writes clauses.json
 *   check
 *       claims of unknown ids and malformed review entries (exit 1)
 *   report [--results <vitest json>] [--out <dir>]      (the default command)
 *       REPORT.md and report.html from a real test run: the JSON that
 *       `npm test` writes to conformance/results.json
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { extract } from "./extract.ts"
import { check, dir, type Inventory, loadInventory, loadReview, loadSources } from "./inventory.ts"
import { build, markdown, page, type VitestJson } from "./report.ts"

const args = process.argv.slice(2)
const command = args[0] !== undefined && !args[0].startsWith("--") ? args.shift()! : "report"
const flag = (name: string): Array<string> => {
  const out: Array<string> = []
  args.forEach((a, i) => {
    if (a === `--${name}` && args[i + 1] !== undefined) out.push(args[i + 1]!)
  })
  return out
}

const fail = (message: string): never => {
  process.stderr.write(`conformance: ${message}\n`)
  process.exit(1)
}

const runExtract = () => {
  const snapshots = new Map(
    flag("snapshot").map((s) => {
      const at = s.indexOf("=")
      return [s.slice(0, at), s.slice(at + 1)] as const
    })
  )
  const sources = loadSources()
  const specs: Array<Inventory["specs"][number]> = []
  const clauses: Array<Inventory["clauses"][number]> = []
  for (const repo of sources.repos) {
    const gitDir = snapshots.get(repo.repo) ?? fail(`no --snapshot ${repo.repo}=<git dir> given`)
    for (const spec of repo.specs) {
      const text = execFileSync("git", ["--git-dir", gitDir, "show", `${repo.commit}:${spec.path}`], {
        encoding: "utf8",
        maxBuffer: 1 << 26
      })
      specs.push({
        ...spec,
        repo: repo.repo,
        commit: repo.commit,
        url: `https://github.com/${repo.repo}/blob/${repo.commit}/${spec.path}`
      })
      clauses.push(...extract(spec.id, text))
    }
  }
  const inventory: Inventory = { specs, clauses }
  fs.writeFileSync(path.join(dir, "clauses.json"), `${JSON.stringify(inventory, null, 2)}\n`)
  process.stdout.write(`conformance: ${clauses.length} clauses from ${specs.length} specs → conformance/clauses.json\n`)
}

const runCheck = () => {
  const problems = check(loadInventory(), loadReview())
  for (const p of problems) process.stderr.write(`${p.where}: ${p.message}\n`)
  if (problems.length > 0) process.exit(1)
  process.stdout.write("conformance: claims and review entries name existing clauses\n")
}

const runReport = () => {
  const resultsFile = flag("results")[0] ?? path.join(dir, "results.json")
  if (!fs.existsSync(resultsFile)) {
    fail(`${resultsFile} does not exist: run \`npm test\` first (it writes the test run's JSON there)`)
  }
  const inventory = loadInventory()
  const review = loadReview()
  const problems = check(inventory, review)
  if (problems.length > 0) fail(problems.map((p) => `${p.where}: ${p.message}`).join("\n"))
  const run = JSON.parse(fs.readFileSync(resultsFile, "utf8")) as VitestJson
  const out = path.resolve(flag("out")[0] ?? dir)
  fs.mkdirSync(out, { recursive: true })
  const report = build(inventory, review, run)
  fs.writeFileSync(path.join(out, "REPORT.md"), markdown(report, out))
  fs.writeFileSync(path.join(out, "report.html"), page(report, out))
  const h = report.headline
  process.stdout.write(
    `conformance: MUST ${h.MUST.passing}/${h.MUST.applicable}, SHOULD ${h.SHOULD.passing}/${h.SHOULD.applicable} tested and passing; ${
      h.MUST.failing + h.SHOULD.failing
    } failing → ${path.relative(process.cwd(), out) || "."}/REPORT.md, report.html\n`
  )
}

if (command === "extract") runExtract()
else if (command === "check") runCheck()
else if (command === "report") runReport()
else fail(`unknown command ${command} (extract | check | report)`)
