/**
 * Summarize a V8 `.cpuprofile` (what `node --cpu-prof` writes): the
 * functions with the most self time. The file is JSON: `nodes` (a call tree,
 * each with a `callFrame` {functionName, url, lineNumber}), `samples` (the
 * node id on top of the stack at each tick) and `timeDeltas` (µs before each
 * tick). Self time of a function = the ticks where it was on top, summed over
 * every tree node of that function. An optional window (µs on the monotonic
 * clock the profile's `startTime` uses, i.e. `process.hrtime` / 1000 in the
 * profiled process) keeps only the ticks inside it, e.g. one scenario.
 *
 * Run: node bench/cpuprofile.ts <file.cpuprofile> [top=15]
 */
import * as Fs from "node:fs"
import * as Path from "node:path"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}
interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  /** ids of the nodes it called */
  readonly children?: ReadonlyArray<number>
}
export interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

export interface Entry {
  readonly name: string
  /** file:line, relative to the repository (node_modules shortened) */
  readonly where: string
  readonly selfMs: number
  /** share of the busy (non-idle) time */
  readonly percent: number
}

export interface Summary {
  readonly totalMs: number
  readonly idleMs: number
  readonly busyMs: number
  readonly entries: ReadonlyArray<Entry>
}

const ROOT = Path.resolve(import.meta.dirname, "..")

/** A script URL relative to the repository (node_modules shortened). */
export const shortUrl = (url: string): string => {
  if (url === "") return ""
  let p = url.startsWith("file://") ? decodeURIComponent(url.slice("file://".length)) : url
  const nm = p.lastIndexOf("/node_modules/")
  if (nm >= 0) p = p.slice(nm + "/node_modules/".length)
  else if (p.startsWith(ROOT + "/")) p = p.slice(ROOT.length + 1)
  return p
}

export interface Window {
  readonly fromUs: number
  readonly toUs: number
}

export const summarize = (file: string, window?: Window): Summary => {
  const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as Profile
  const byId = new Map<number, ProfileNode>()
  for (const n of profile.nodes) byId.set(n.id, n)
  const self = new Map<string, { name: string; where: string; us: number }>()
  let total = 0
  let idle = 0
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!)
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue
    if (node === undefined) continue
    total += dt
    const f = node.callFrame
    if (f.functionName === "(idle)") {
      idle += dt
      continue
    }
    const where = f.url === "" ? "" : `${shortUrl(f.url)}:${f.lineNumber + 1}`
    const name = f.functionName === "" ? "(anonymous)" : f.functionName
    const key = `${name}@${where}`
    const entry = self.get(key)
    if (entry === undefined) self.set(key, { name, where, us: dt })
    else entry.us += dt
  }
  const busy = total - idle
  const entries = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, percent: busy > 0 ? (100 * e.us) / busy : 0 }))
  return { totalMs: total / 1000, idleMs: idle / 1000, busyMs: busy / 1000, entries }
}

export const render = (summary: Summary, top = 15): string => {
  const lines = [
    `profiled ${(summary.totalMs / 1000).toFixed(2)} s, busy ${(summary.busyMs / 1000).toFixed(2)} s, idle ${
      (summary.idleMs / 1000).toFixed(2)
    } s; top ${top} by self time (% of busy):`
  ]
  for (const e of summary.entries.slice(0, top)) {
    lines.push(
      `  ${e.selfMs.toFixed(0).padStart(7)} ms ${e.percent.toFixed(1).padStart(5)} %  ${e.name}${
        e.where === "" ? "" : `  ${e.where}`
      }`
    )
  }
  return lines.join("\n")
}

if (import.meta.main) {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write("usage: node bench/cpuprofile.ts <file.cpuprofile> [top]\n")
    process.exit(2)
  }
  process.stdout.write(render(summarize(file), Number(process.argv[3] ?? "15")) + "\n")
}
