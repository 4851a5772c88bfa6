/**
 * A flame graph of a V8 `.cpuprofile` (what `node --cpu-prof` writes) as one
 * self-contained SVG file a person opens in a browser: each box is a function
 * on a call path, its width its share of the busy time (idle ticks are left
 * out and counted in the title; program and GC ticks are their own boxes
 * under the root), callers below their callees
 * (flame: the root at the bottom). Boxes of our code (`src/`, `layers/`) are
 * blue, everything else (effect, node, js-libp2p) warm; hovering a box shows
 * its function, file:line, milliseconds and percent. Frames of the same
 * function on the same path are merged, so the graph sums over the whole
 * window (bench/cpuprofile.ts's window: one scenario's rounds).
 *
 * Run: node bench/flamegraph.ts <file.cpuprofile> [out.svg]
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { type Profile, shortUrl, type Window } from "./cpuprofile.ts"

interface Frame {
  readonly name: string
  readonly where: string
  us: number
  readonly children: Map<string, Frame>
}

/** The merged call tree, and the idle time left out of it. */
export interface Tree {
  readonly root: Frame
  readonly idleUs: number
}

const frame = (name: string, where: string): Frame => ({ name, where, us: 0, children: new Map() })

/** The call tree of `profile`'s samples inside `window`, merged by function along each path. */
export const tree = (profile: Profile, window?: Window): Tree => {
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const root = frame("all", "")
  let idleUs = 0
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue
    if (byId.get(profile.samples[i]!)?.callFrame.functionName === "(idle)") {
      idleUs += dt
      continue
    }
    const stack: Array<number> = []
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parent.get(id)) stack.push(id)
    root.us += dt
    let f = root
    for (let j = stack.length - 1; j >= 0; j--) {
      const cf = byId.get(stack[j]!)?.callFrame
      if (cf === undefined || cf.functionName === "(root)") continue
      const name = cf.functionName === "" ? "(anonymous)" : cf.functionName
      const where = cf.url === "" ? "" : `${shortUrl(cf.url)}:${cf.lineNumber + 1}`
      const key = `${name}@${where}`
      let child = f.children.get(key)
      if (child === undefined) f.children.set(key, child = frame(name, where))
      child.us += dt
      f = child
    }
  }
  return { root, idleUs }
}

const escape = (s: string): string =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

/** A stable colour per function: blue for our code, warm for the rest, grey for GC and program. */
const colour = (f: Frame): string => {
  let h = 0
  for (let i = 0; i < f.name.length; i++) h = (h * 31 + f.name.charCodeAt(i)) >>> 0
  const v = h % 40
  if (f.name === "(garbage collector)" || f.name === "(program)") {
    return `rgb(${170 + v},${170 + v},${170 + v})`
  }
  if (/^(src|layers)\//.test(f.where)) return `rgb(${60 + v},${130 + v},${200 + (v >> 1)})`
  return `rgb(${215 + (v >> 1)},${100 + 2 * v},${40 + v})`
}

const WIDTH = 1600
const ROW = 17
const MIN_WIDTH = 0.3

/** Render the tree as an SVG flame graph. */
export const render = ({ idleUs, root }: Tree, title: string): string => {
  const scale = root.us > 0 ? WIDTH / root.us : 0
  // the depth of the boxes drawn (frames narrower than MIN_WIDTH are left out)
  let depth = 0
  const measure = (f: Frame, d: number): void => {
    if (f.us * scale < MIN_WIDTH) return
    depth = Math.max(depth, d)
    for (const c of f.children.values()) measure(c, d + 1)
  }
  measure(root, 0)
  const height = (depth + 1) * ROW + 40
  const boxes: Array<string> = []
  const draw = (f: Frame, x: number, d: number): void => {
    const w = f.us * scale
    if (w < MIN_WIDTH) return
    const y = height - (d + 1) * ROW - 10
    const ms = f.us / 1000
    const pct = root.us > 0 ? (100 * f.us) / root.us : 0
    const label = `${f.name}${f.where === "" ? "" : ` ${f.where}`} — ${ms.toFixed(1)} ms, ${pct.toFixed(2)} %`
    const text = w > 40 ? escape(f.name.slice(0, Math.floor(w / 7))) : ""
    boxes.push(
      `<g><title>${escape(label)}</title><rect x="${x.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${
        ROW - 1
      }" fill="${colour(f)}" rx="1"/>${
        text === "" ? "" : `<text x="${(x + 3).toFixed(2)}" y="${y + ROW - 5}">${text}</text>`
      }</g>`
    )
    let cx = x
    for (const c of [...f.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      draw(c, cx, d + 1)
      cx += c.us * scale
    }
  }
  draw(root, 0, 0)
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`,
    `<style>text{font:11px monospace;fill:#000;pointer-events:none}rect:hover{stroke:#000;stroke-width:0.8}</style>`,
    `<text x="4" y="16" style="font-size:13px">${escape(title)} — busy ${(root.us / 1e6).toFixed(2)} s (idle ${
      (idleUs / 1e6).toFixed(2)
    } s left out); blue: our code (src/, layers/); hover a box for its time</text>`,
    ...boxes,
    `</svg>`
  ].join("\n")
}

/** Read a `.cpuprofile`, write its flame graph next to it (`.svg`) or to `out`; the path written. */
export const write = (file: string, window?: Window, out?: string): string => {
  const profile = JSON.parse(Fs.readFileSync(file, "utf8")) as Profile
  const target = out ?? file.replace(/\.cpuprofile$/, "") + ".svg"
  Fs.writeFileSync(target, render(tree(profile, window), Path.basename(file)))
  return target
}

if (import.meta.main) {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write("usage: node bench/flamegraph.ts <file.cpuprofile> [out.svg]\n")
    process.exit(2)
  }
  process.stdout.write(`${write(file, undefined, process.argv[3])}\n`)
}
