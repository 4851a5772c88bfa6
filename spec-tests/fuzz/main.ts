/**
 * `npm run fuzz -- <target|all> [--runs N] [--seed S]`: fuzz one decoder (or
 * every one) and print executions per second; `npm run fuzz -- [<target>]
 * --write-corpus` rewrites the seed corpus of one target (or every one) from
 * its seeds (keeping the regression inputs listed after a `# regression`
 * line). A crash or hang is written to `spec-tests/fuzz/findings/` and the run exits with 1.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { CORPUS_DIR, fuzz, readCorpus, writeCorpus } from "./engine.ts"
import { byName, targets } from "./targets.ts"

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i < 0 ? undefined : args[i + 1]
}
/** The first argument that is neither a flag nor a flag's value. */
const firstPositional = args.find((a, i) =>
  !a.startsWith("--") && !(i > 0 && (args[i - 1] === "--runs" || args[i - 1] === "--seed"))
)

const regressionsOf = (name: string): Array<string> => {
  const file = Path.join(CORPUS_DIR, `${name}.txt`)
  if (!Fs.existsSync(file)) return []
  const lines = Fs.readFileSync(file, "utf8").split("\n")
  const at = lines.findIndex((l) => l.startsWith("# regression"))
  return at < 0 ? [] : lines.slice(at).filter((l) => l.trim() !== "")
}

const main = async () => {
  const name = firstPositional ?? "all"
  const chosen = name === "all" ? targets : [byName(name)].filter((t) => t !== undefined)
  if (chosen.length === 0) {
    console.error(`unknown target ${name}; targets: ${targets.map((t) => t.name).join(", ")}`)
    return 2
  }
  if (args.includes("--write-corpus")) {
    for (const t of chosen) {
      const seeds = await Effect.runPromise(t.seeds)
      const regressions = regressionsOf(t.name)
      writeCorpus(t.name, seeds, `seed corpus of the ${t.name} fuzz target (hex, one input a line)`)
      if (regressions.length > 0) {
        Fs.appendFileSync(Path.join(CORPUS_DIR, `${t.name}.txt`), `${regressions.join("\n")}\n`)
      }
      console.log(`${t.name}: ${seeds.length} seeds, ${Math.max(0, regressions.length - 1)} regression inputs`)
    }
    return 0
  }
  const runs = Number(flag("--runs") ?? 100_000)
  const seedText = flag("--seed")
  let failed = 0
  for (const t of chosen) {
    const r = fuzz(t, readCorpus(t.name), { runs, ...(seedText !== undefined ? { seed: Number(seedText) } : {}) })
    console.log(
      `${t.name.padEnd(20)} ${String(r.runs).padStart(10)} runs ${String(r.execsPerSecond).padStart(8)} exec/s  ${
        (r.millis / 1000).toFixed(1)
      } s  labels ${r.labels}  corpus ${r.corpus}${r.finding !== undefined ? `  ${r.finding.kind.toUpperCase()}` : ""}`
    )
    if (r.finding !== undefined) {
      failed++
      const dir = Path.join(import.meta.dirname, "findings")
      Fs.mkdirSync(dir, { recursive: true })
      const file = Path.join(dir, `${t.name}-${Date.now()}.txt`)
      Fs.writeFileSync(
        file,
        `# ${r.finding.kind}: ${r.finding.error}\n${Buffer.from(r.finding.input).toString("hex")}\n`
      )
      console.log(`  ${r.finding.kind}: ${r.finding.error}\n  input written to ${file}`)
    }
  }
  return failed > 0 ? 1 : 0
}

main().then((code) => process.exit(code), (e) => {
  console.error(e)
  process.exit(1)
})
