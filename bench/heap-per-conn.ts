/**
 * heap-per-conn: what one idle, fully upgraded connection costs our listener's
 * heap, and which objects make up that cost (issue 6 item 3, "make it fast":
 * the memory scenario of bench/main.ts).
 *
 * The listener (layers/Node.ts `Default`, connection caps raised) runs in THIS
 * process; the dialers are our nodes in a child process (bench/ours-peer.ts,
 * `spawnNodes`), so nothing of the dialing side lands in the measured heap.
 * Steps: `warmup` connections (first-use costs: code, caches), forced GC, heap
 * snapshot A; `n` more connections, settle, forced GC, snapshot B. The
 * snapshots are parsed (V8 .heapsnapshot JSON) and the self sizes are summed
 * per (node type, constructor/name); B − A divided by `n` is the per-connection
 * bill, printed largest first. With `--retainers=<name>[,<name>]` it also
 * prints, for new objects of those names, what holds them (the retaining
 * edge's owner name and edge name, counted), which is how a cost is traced
 * back to the code that keeps it.
 *
 * Run: npm exec -- node --expose-gc bench/heap-per-conn.ts [n=200] [--warmup=10] [--top=40]
 *        [--retainers=Array,Closure] [--keep] (keep the .heapsnapshot files in bench/results/, named by label and pid so that runs never collide)
 *        [--rss] (no snapshots: where the resident memory per connection goes, by process.memoryUsage and V8 heap space)
 * Needs --expose-gc. Prints heapUsed per connection (process.memoryUsage after GC)
 * as well, the figure bench/main.ts reports.
 */
import { Context, Effect, Exit, Layer, Logger, References, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import * as Readline from "node:readline"
import * as V8 from "node:v8"
import * as Nodes from "../layers/Node.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import * as PeerId from "../src/core/PeerId.ts"
import { Host } from "../src/host/Host.ts"

const ROOT = Path.resolve(import.meta.dirname, "..")
const RESULTS = Path.join(ROOT, "bench", "results")

const argv = process.argv.slice(2)
const flag = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const N = Number(argv.find((a) => /^\d+$/.test(a)) ?? 200)
const WARMUP = Number(flag("warmup") ?? 10)
const TOP = Number(flag("top") ?? 40)
const RETAINERS = (flag("retainers") ?? "").split(",").filter((s) => s !== "")
const KEEP = argv.includes("--keep")
/** strings by their text, code objects by their name */
const DETAIL = argv.includes("--detail")
const MIN_SIZE = Number(flag("min-size") ?? 0)
const DEPTH = Number(flag("depth") ?? 4)

const gcFn = (globalThis as { gc?: () => void }).gc
if (gcFn === undefined) {
  process.stderr.write("heap-per-conn needs node --expose-gc\n")
  process.exit(2)
}
const gc = gcFn
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
const progress = (msg: string) => process.stderr.write(`[heap-per-conn] ${msg}\n`)

// ---------------------------------------------------------------- listener (in this process)

const scope = Effect.runSync(Scope.make())
const logging = Layer.mergeAll(
  Logger.layer([Logger.withConsoleError(Logger.formatSimple)]),
  Layer.succeed(References.MinimumLogLevel, "Warn")
)
const ctx = await Effect.runPromise(
  Layer.buildWithScope(
    Nodes.Default({
      listen: [Multiaddr.fromString("/ip4/127.0.0.1/tcp/0").pipe((r) => r._tag === "Success" ? r.success : undefined)!],
      connectionManager: { maxConnections: 10_000, highWater: 10_000, lowWater: 9_000 },
      resources: { system: { connectionsInbound: 10_000, connections: 20_000 } }
    }).pipe(Layer.provideMerge(logging)),
    scope
  )
)
const host = Context.get(ctx as Context.Context<Host>, Host)
const addr = Multiaddr.toString(host.addrs()[0]!)
progress(`listener ${PeerId.toString(host.peerId)} at ${addr}`)

// ---------------------------------------------------------------- dialers (child process)

const child = ChildProcess.spawn(process.execPath, [
  Path.join(ROOT, "bench", "ours-peer.ts"),
  JSON.stringify({ listen: [] })
], {
  cwd: ROOT,
  stdio: ["pipe", "pipe", "inherit"]
})
let nextId = 1
const pending = new Map<number, (r: Record<string, unknown>) => void>()
const ready = new Promise<void>((resolve) => {
  Readline.createInterface({ input: child.stdout!, crlfDelay: Infinity }).on("line", (line) => {
    const msg = JSON.parse(line) as Record<string, unknown>
    if (msg["event"] === "ready") return resolve()
    const p = pending.get(msg["id"] as number)
    if (p !== undefined) {
      pending.delete(msg["id"] as number)
      p(msg)
    }
  })
})
const call = (cmd: string, args: Record<string, unknown> = {}) =>
  new Promise<Record<string, unknown>>((resolve) => {
    const id = nextId++
    pending.set(id, resolve)
    child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + "\n")
  })
await ready

const spawnConns = async (count: number) => {
  let done = 0
  while (done < count) {
    const k = Math.min(100, count - done)
    const r = await call("spawnNodes", { addr, count: k, concurrency: 8 })
    if (r["ok"] !== true || Number(r["failed"] ?? 0) > 0) progress(`spawnNodes: ${JSON.stringify(r)}`)
    done += k
  }
}

/**
 * The bench's memory scenario collects the same way (bench/ours-peer.ts `cpu`):
 * V8's "last resort" collection also drops code and caches the first
 * connections warmed, which an ordinary GC keeps in the baseline; without it
 * this script read 9.9 KiB per connection where the bench read 13.4.
 */
const settle = async () => {
  await sleep(2000)
  gc()
  await sleep(50)
  gc()
  ;(gc as (options?: object) => void)({ type: "major", execution: "sync", flavor: "last-resort" })
}

// ---------------------------------------------------------------- heap snapshots

interface Agg {
  count: number
  size: number
}
interface Parsed {
  readonly byName: Map<string, Agg>
  readonly ids: Set<number>
  readonly total: number
  /** for --retainers: node index by id, and the raw arrays */
  readonly raw: Snapshot
}
const EMPTY: Snapshot = {
  snapshot: { meta: { node_fields: [], node_types: [], edge_fields: [], edge_types: [] } },
  nodes: [],
  edges: [],
  strings: []
}
interface Snapshot {
  readonly snapshot: {
    readonly meta: {
      readonly node_fields: ReadonlyArray<string>
      readonly node_types: ReadonlyArray<ReadonlyArray<string> | string>
      readonly edge_fields: ReadonlyArray<string>
      readonly edge_types: ReadonlyArray<ReadonlyArray<string> | string>
    }
  }
  readonly nodes: ReadonlyArray<number>
  readonly edges: ReadonlyArray<number>
  readonly strings: ReadonlyArray<string>
}

const write = (label: string): string =>
  V8.writeHeapSnapshot(Path.join(RESULTS, `heap-${label}-${process.pid}.heapsnapshot`))

/** Field offsets and type tables of a V8 heap snapshot (its `meta` section). */
const layoutOf = (raw: Snapshot) => {
  const meta = raw.snapshot.meta
  return {
    nf: meta.node_fields.length,
    ef: meta.edge_fields.length,
    fType: meta.node_fields.indexOf("type"),
    fName: meta.node_fields.indexOf("name"),
    fId: meta.node_fields.indexOf("id"),
    fSize: meta.node_fields.indexOf("self_size"),
    fEdges: meta.node_fields.indexOf("edge_count"),
    eType: meta.edge_fields.indexOf("type"),
    eName: meta.edge_fields.indexOf("name_or_index"),
    eTo: meta.edge_fields.indexOf("to_node"),
    ntypes: meta.node_types[0] as ReadonlyArray<string>,
    etypes: meta.edge_types[0] as ReadonlyArray<string>
  }
}

const parse = (file: string, keepRaw: boolean): Parsed => {
  const raw = JSON.parse(Fs.readFileSync(file, "utf8")) as Snapshot
  if (!KEEP) Fs.unlinkSync(file)
  const { nf, fType, fName, fId, fSize, ntypes: types } = layoutOf(raw)
  const byName = new Map<string, Agg>()
  const ids = new Set<number>()
  let total = 0
  for (let i = 0; i < raw.nodes.length; i += nf) {
    const type = types[raw.nodes[i + fType]!]!
    let name = raw.strings[raw.nodes[i + fName]!]!
    if (type === "string" || type === "concatenated string" || type === "sliced string") {
      name = DETAIL ? JSON.stringify(name.slice(0, 50)) : "(string)"
    } else if (type === "number") name = "(number)"
    else if (type === "code" && !DETAIL) name = "(code)"
    else if (name.length > 60) name = name.slice(0, 60) + "…"
    const key = `${type}\t${name}`
    const size = raw.nodes[i + fSize]!
    const a = byName.get(key)
    if (a === undefined) byName.set(key, { count: 1, size })
    else {
      a.count++
      a.size += size
    }
    ids.add(raw.nodes[i + fId]!)
    total += size
  }
  return { byName, ids, total, raw: keepRaw ? raw : EMPTY }
}

/**
 * For new nodes named `target` (with at least MIN_SIZE self size): the chain of
 * what holds them, DEPTH levels up (each level: the first strong retainer that is
 * not a system/hidden/code object, so the path names JS objects and their
 * properties), aggregated by chain.
 */
const retainersOf = (p: Parsed, before: Parsed, target: string) => {
  const raw = p.raw
  const { nf, ef, fType, fName, fId, fSize, fEdges, eType, eName, eTo, ntypes, etypes } = layoutOf(raw)
  const count = raw.nodes.length / nf
  // reverse edges: for node k, retainers (owner node index, edge offset)
  const firstIn = new Int32Array(count + 1)
  let edge = 0
  for (let i = 0; i < raw.nodes.length; i += nf) {
    const n = raw.nodes[i + fEdges]!
    for (let e = 0; e < n; e++, edge += ef) firstIn[raw.edges[edge + eTo]! / nf + 1]!++
  }
  for (let k = 0; k < count; k++) firstIn[k + 1]! += firstIn[k]!
  const inOwner = new Int32Array(firstIn[count]!)
  const inEdge = new Int32Array(firstIn[count]!)
  const fill = firstIn.slice(0, count)
  edge = 0
  for (let i = 0; i < raw.nodes.length; i += nf) {
    const n = raw.nodes[i + fEdges]!
    for (let e = 0; e < n; e++, edge += ef) {
      const k = raw.edges[edge + eTo]! / nf
      const at = fill[k]!++
      inOwner[at] = i
      inEdge[at] = edge
    }
  }
  const label = (i: number) => `${ntypes[raw.nodes[i + fType]!]}:${raw.strings[raw.nodes[i + fName]!]!.slice(0, 40)}`
  const edgeLabel = (e: number) => {
    const et = etypes[raw.edges[e + eType]!]!
    return et === "element" || et === "hidden"
      ? `[${et === "hidden" ? "h" : raw.edges[e + eName]}]`
      : String(raw.strings[raw.edges[e + eName]!])
  }
  const boring = (i: number) => {
    const t = ntypes[raw.nodes[i + fType]!]
    const nm = raw.strings[raw.nodes[i + fName]!]!
    return t === "hidden" || t === "code" || t === "array" || nm.startsWith("system /")
  }
  const out = new Map<string, Agg>()
  for (let i = 0; i < raw.nodes.length; i += nf) {
    if (raw.strings[raw.nodes[i + fName]!] !== target) continue
    if (before.ids.has(raw.nodes[i + fId]!)) continue
    const size = raw.nodes[i + fSize]!
    if (size < MIN_SIZE) continue
    const path: Array<string> = []
    let cur = i
    const seen = new Set<number>([cur])
    for (let d = 0; d < DEPTH; d++) {
      let pick = -1
      let pickEdge = -1
      const k = cur / nf
      for (let j = firstIn[k]!; j < firstIn[k + 1]!; j++) {
        const o = inOwner[j]!
        const et = etypes[raw.edges[inEdge[j]! + eType]!]!
        if (et === "weak" || seen.has(o)) continue
        if (pick < 0 || (boring(pick) && !boring(o))) {
          pick = o
          pickEdge = inEdge[j]!
        }
      }
      if (pick < 0) break
      path.push(`${label(pick)}.${edgeLabel(pickEdge)}`)
      seen.add(pick)
      cur = pick
    }
    const key = path.join(" <- ")
    const a = out.get(key)
    if (a === undefined) out.set(key, { count: 1, size })
    else {
      a.count++
      a.size += size
    }
  }
  return out
}

/**
 * New closures, and the function contexts they close over, by the function's
 * source location (file:line name): which code creates them per connection.
 * A context is charged to the first new closure that points at it.
 */
const closuresByLocation = (p: Parsed, before: Parsed) => {
  const raw = p.raw
  const { nf, ef, fType, fName, fId, fSize, fEdges, eName, eTo, ntypes } = layoutOf(raw)
  const locs = (raw as unknown as { locations: ReadonlyArray<number> }).locations
  const lf = 4
  const lineOf = new Map<number, number>()
  for (let i = 0; i < locs.length; i += lf) lineOf.set(locs[i]!, locs[i + 2]!)
  const charged = new Set<number>()
  const out = new Map<string, Agg>()
  let edge = 0
  for (let i = 0; i < raw.nodes.length; i += nf) {
    const n = raw.nodes[i + fEdges]!
    const firstEdge = edge
    edge += n * ef
    if (ntypes[raw.nodes[i + fType]!] !== "closure" || before.ids.has(raw.nodes[i + fId]!)) continue
    let file = "?"
    let ctxSize = 0
    for (let e = firstEdge; e < firstEdge + n * ef; e += ef) {
      const en = raw.strings[raw.edges[e + eName]!]
      const to = raw.edges[e + eTo]!
      if (en === "shared") {
        // shared function info -> script
        let se = 0
        // find the SFI's edges: walk from the start (slow but fine for a bench tool)
        se = edgeStart(raw, to, nf, ef, fEdges)
        for (let k = 0; k < raw.nodes[to + fEdges]!; k++, se += ef) {
          if (raw.strings[raw.edges[se + eName]!] === "script") {
            file = raw.strings[raw.nodes[raw.edges[se + eTo]! + fName]!]!.replace(/^file:\/\/.*?\/work\/main\//, "")
          }
        }
      } else if (en === "context" && !before.ids.has(raw.nodes[to + fId]!) && !charged.has(to)) {
        if (raw.strings[raw.nodes[to + fName]!] === "system / Context") {
          charged.add(to)
          ctxSize += raw.nodes[to + fSize]!
        }
      }
    }
    const key = `${file}:${(lineOf.get(i) ?? -1) + 1} ${raw.strings[raw.nodes[i + fName]!]!.slice(0, 30)}`
    const size = raw.nodes[i + fSize]! + ctxSize
    const a = out.get(key)
    if (a === undefined) out.set(key, { count: 1, size })
    else {
      a.count++
      a.size += size
    }
  }
  return out
}

/**
 * Dominator tree of snapshot B (Cooper–Harvey–Kennedy, weak edges ignored):
 * every new object is charged to its topmost new dominator (an "owner": a new
 * object whose immediate dominator existed before, e.g. a Socket held by an old
 * Map). Owners are grouped by label (type:name, closures by file:line, plus the
 * old dominator and the edge from it) with their retained sizes: what each
 * kind of per-connection root keeps alive. `drill` (substrings of owner labels)
 * also breaks those owners down one dominator level, then two.
 */
const owners = (p: Parsed, before: Parsed, drill: ReadonlyArray<string>) => {
  const raw = p.raw
  const { nf, ef, fType, fName, fId, fSize, fEdges, eType, eName, eTo, ntypes, etypes } = layoutOf(raw)
  const weak = etypes.indexOf("weak")
  const count = raw.nodes.length / nf
  const firstOut = new Int32Array(count + 1)
  for (let k = 0; k < count; k++) firstOut[k + 1] = firstOut[k]! + raw.nodes[k * nf + fEdges]! * ef
  // DFS postorder from the root (node 0)
  const post = new Int32Array(count).fill(-1)
  const order: Array<number> = [] // node by postorder number
  const stack: Array<number> = [0]
  const cursor = new Int32Array(count)
  const visited = new Uint8Array(count)
  visited[0] = 1
  for (let k = 0; k < count; k++) cursor[k] = firstOut[k]!
  while (stack.length > 0) {
    const v = stack[stack.length - 1]!
    let pushed = false
    while (cursor[v]! < firstOut[v + 1]!) {
      const e = cursor[v]!
      cursor[v] = e + ef
      if (raw.edges[e + eType] === weak) continue
      const w = raw.edges[e + eTo]! / nf
      if (visited[w] === 0) {
        visited[w] = 1
        stack.push(w)
        pushed = true
        break
      }
    }
    if (!pushed) {
      stack.pop()
      post[v] = order.length
      order.push(v)
    }
  }
  // predecessors
  const predCount = new Int32Array(count + 1)
  for (let v = 0; v < count; v++) {
    if (visited[v] === 0) continue
    for (let e = firstOut[v]!; e < firstOut[v + 1]!; e += ef) {
      if (raw.edges[e + eType] === weak) continue
      predCount[raw.edges[e + eTo]! / nf + 1]!++
    }
  }
  for (let k = 0; k < count; k++) predCount[k + 1]! += predCount[k]!
  const preds = new Int32Array(predCount[count]!)
  const fillAt = predCount.slice(0, count)
  for (let v = 0; v < count; v++) {
    if (visited[v] === 0) continue
    for (let e = firstOut[v]!; e < firstOut[v + 1]!; e += ef) {
      if (raw.edges[e + eType] === weak) continue
      const w = raw.edges[e + eTo]! / nf
      preds[fillAt[w]!++] = v
    }
  }
  const idom = new Int32Array(count).fill(-1)
  idom[0] = 0
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (post[a]! < post[b]!) a = idom[a]!
      while (post[b]! < post[a]!) b = idom[b]!
    }
    return a
  }
  let changed = true
  while (changed) {
    changed = false
    for (let i = order.length - 2; i >= 0; i--) {
      const v = order[i]!
      let nd = -1
      for (let j = predCount[v]!; j < predCount[v + 1]!; j++) {
        const u = preds[j]!
        if (idom[u] === -1) continue
        nd = nd === -1 ? u : intersect(u, nd)
      }
      if (nd !== -1 && idom[v] !== nd) {
        idom[v] = nd
        changed = true
      }
    }
  }
  const retained = new Float64Array(count)
  for (let v = 0; v < count; v++) retained[v] = raw.nodes[v * nf + fSize]!
  for (let i = 0; i < order.length - 1; i++) {
    const v = order[i]!
    retained[idom[v]!]! += retained[v]!
  }
  const isNew = (v: number) => !before.ids.has(raw.nodes[v * nf + fId]!)
  const locs = (raw as unknown as { locations: ReadonlyArray<number> }).locations
  const lineOf = new Map<number, number>()
  for (let i = 0; i < locs.length; i += 4) lineOf.set(locs[i]! / nf, locs[i + 2]!)
  const fileOf = (v: number): string => {
    for (let e = firstOut[v]!; e < firstOut[v + 1]!; e += ef) {
      if (raw.strings[raw.edges[e + eName]!] !== "shared") continue
      const sfi = raw.edges[e + eTo]! / nf
      for (let f = firstOut[sfi]!; f < firstOut[sfi + 1]!; f += ef) {
        if (raw.strings[raw.edges[f + eName]!] === "script") {
          return raw.strings[raw.nodes[raw.edges[f + eTo]! + fName]!]!.replace(/^file:\/\/.*?\/work\/main\//, "")
            .replace(/^node_modules\/effect\/dist\//, "effect/")
        }
      }
    }
    return "?"
  }
  const label = (v: number): string => {
    const t = ntypes[raw.nodes[v * nf + fType]!]!
    const n = raw.strings[raw.nodes[v * nf + fName]!]!
    if (t === "closure") return `closure ${fileOf(v)}:${(lineOf.get(v) ?? -1) + 1} ${n.slice(0, 30)}`
    if (t === "string" || t === "concatenated string" || t === "sliced string") return t
    if (n === "system / Context") {
      // a function context: named by the variables it holds
      const vars: Array<string> = []
      for (let e = firstOut[v]!; e < firstOut[v + 1]!; e += ef) {
        if (etypes[raw.edges[e + eType]!] === "context") vars.push(String(raw.strings[raw.edges[e + eName]!]))
      }
      return `Context{${vars.slice(0, 6).join(",")}${vars.length > 6 ? ",…" : ""}}`
    }
    if (n === "FiberImpl" && FIBERS) return `FiberImpl{${fiberSource(v)}}`
    return `${t}:${n.slice(0, 40)}`
  }
  /** Our own functions near a fiber (breadth first through its new objects): where it was forked. */
  const fiberSource = (v: number): string => {
    const seen = new Set<number>([v])
    let frontier = [v]
    const found: Array<string> = []
    for (let d = 0; d < 8 && found.length < 4; d++) {
      const next: Array<number> = []
      for (const u of frontier) {
        for (let e = firstOut[u]!; e < firstOut[u + 1]!; e += ef) {
          if (raw.edges[e + eType] === weak) continue
          const w = raw.edges[e + eTo]! / nf
          const viaGenerator = raw.strings[raw.nodes[u * nf + fName]!] === "Generator" &&
            raw.strings[raw.edges[e + eName]!] === "function"
          if (seen.has(w) || (!isNew(w) && !viaGenerator)) continue
          seen.add(w)
          if (!viaGenerator) next.push(w)
          if (ntypes[raw.nodes[w * nf + fType]!] === "closure") {
            const f = fileOf(w)
            if (
              f.startsWith("src/") || f.startsWith("layers/") ||
              (d >= 2 && found.length === 0 && !f.startsWith("node:"))
            ) {
              const l = `${viaGenerator ? "gen " : ""}${f.replace(/^src\//, "")}:${(lineOf.get(w) ?? -1) + 1}`
              if (!found.includes(l)) found.push(l)
            }
          }
        }
      }
      frontier = next
    }
    return found.slice(0, 4).join(" ")
  }
  const edgeTo = (from: number, to: number): string => {
    for (let e = firstOut[from]!; e < firstOut[from + 1]!; e += ef) {
      if (raw.edges[e + eTo]! / nf !== to) continue
      const et = etypes[raw.edges[e + eType]!]!
      return et === "element" || et === "hidden"
        ? `[${raw.edges[e + eName]}]`
        : String(raw.strings[raw.edges[e + eName]!]).slice(0, 30)
    }
    return "?"
  }
  const out = new Map<string, Agg>()
  const children = new Map<number, Array<number>>()
  const drilled: Array<number> = []
  for (let v = 1; v < count; v++) {
    if (visited[v] === 0 || !isNew(v)) continue
    const d = idom[v]!
    if (isNew(d)) {
      let list = children.get(d)
      if (list === undefined) children.set(d, list = [])
      list.push(v)
      continue
    }
    const key = `${label(v)}  <- ${label(d)}.${edgeTo(d, v)}`
    const a = out.get(key)
    if (a === undefined) out.set(key, { count: 1, size: retained[v]! })
    else {
      a.count++
      a.size += retained[v]!
    }
    if (drill.some((s) => key.includes(s))) drilled.push(v)
  }
  const breakdown = (roots: ReadonlyArray<number>, depth: number) => {
    const agg = new Map<string, Agg>()
    const walk = (v: number, prefix: string, level: number) => {
      for (const c of children.get(v) ?? []) {
        const key = `${prefix}${label(c)} (.${edgeTo(v, c)})`
        if (level < depth && (children.get(c)?.length ?? 0) > 0) {
          const self = agg.get(key + " [self]")
          const sz = raw.nodes[c * nf + fSize]!
          if (self === undefined) agg.set(key + " [self]", { count: 1, size: sz })
          else {
            self.count++
            self.size += sz
          }
          walk(c, key + " / ", level + 1)
        } else {
          const a = agg.get(key)
          if (a === undefined) agg.set(key, { count: 1, size: retained[c]! })
          else {
            a.count++
            a.size += retained[c]!
          }
        }
      }
    }
    for (const r of roots) walk(r, "", 1)
    return agg
  }
  return { out, drill: breakdown(drilled, DRILL_DEPTH) }
}

let edgeIndex: Int32Array | undefined
const edgeStart = (raw: Snapshot, node: number, nf: number, ef: number, fEdges: number): number => {
  if (edgeIndex === undefined) {
    edgeIndex = new Int32Array(raw.nodes.length / nf)
    let e = 0
    for (let i = 0; i < raw.nodes.length; i += nf) {
      edgeIndex[i / nf] = e
      e += raw.nodes[i + fEdges]! * ef
    }
  }
  return edgeIndex[node / nf]!
}

// ---------------------------------------------------------------- run

Fs.mkdirSync(RESULTS, { recursive: true })
/**
 * `--rss`: no heap snapshots (writing one grows RSS by far more than the
 * connections do); where the resident memory per connection goes instead:
 * process.memoryUsage and each V8 heap space's committed (physical) size,
 * before and after the `n` connections, per connection.
 */
const rssBreakdown = async (): Promise<void> => {
  const sample = () => ({
    memory: process.memoryUsage(),
    spaces: new Map(V8.getHeapSpaceStatistics().map((sp) => [sp.space_name, sp.physical_space_size]))
  })
  await spawnConns(WARMUP)
  await settle()
  const base = host.connections().length
  // V8's "all available garbage" collection also shrinks the young generation, which a burst
  // of handshakes grows (and an ordinary GC leaves grown): taken before and after
  const lastResort = () =>
    (gc as unknown as (options: object) => void)({ type: "major", execution: "sync", flavor: "last-resort" })
  lastResort()
  const a = sample()
  await spawnConns(N)
  await settle()
  const grown = sample()
  lastResort()
  const b = sample()
  const conns = host.connections().length - base
  const kib = (bytes: number) => (bytes / conns / 1024).toFixed(2).padStart(8)
  console.log(
    `\n${conns} idle connections, KiB per connection; after an ordinary GC: rss ${
      kib(grown.memory.rss - a.memory.rss).trim()
    }, young generation ${kib((grown.spaces.get("new_space") ?? 0) - (a.spaces.get("new_space") ?? 0)).trim()}`
  )
  console.log(`after the last-resort GC:`)
  for (const key of ["rss", "heapTotal", "heapUsed", "external", "arrayBuffers"] as const) {
    console.log(`${kib(b.memory[key] - a.memory[key])}  ${key}`)
  }
  const heapTotal = b.memory.heapTotal - a.memory.heapTotal
  console.log(
    `${kib(b.memory.rss - a.memory.rss - heapTotal)}  rss beyond the V8 heap (native: sockets, libuv, OpenSSL, malloc)`
  )
  console.log(`committed per V8 heap space:`)
  for (const [space, size] of b.spaces) console.log(`${kib(size - (a.spaces.get(space) ?? 0))}  ${space}`)
}
if (argv.includes("--rss")) {
  await rssBreakdown()
  process.exit(0)
}

await spawnConns(WARMUP)
await settle()
const base = host.connections().length
const heapA = process.memoryUsage().heapUsed
const rssA = process.memoryUsage().rss
const fileA = write("a")
progress(`baseline: ${base} connections, heapUsed ${(heapA / 1024 / 1024).toFixed(1)} MiB`)

await spawnConns(N)
await settle()
const conns = host.connections().length - base
const heapB = process.memoryUsage().heapUsed
const rssB = process.memoryUsage().rss
const fileB = write("b")
// parsed only now: nothing of snapshot A is in the heap measured by B
const snapA = parse(fileA, false)
const CLOSURES = argv.includes("--closures")
const OWNERS = argv.includes("--owners")
const FIBERS = argv.includes("--fibers")
const DRILL = (flag("drill") ?? "").split(",").filter((x) => x !== "")
const DRILL_DEPTH = Number(flag("drill-depth") ?? 1)
const snapB = parse(fileB, RETAINERS.length > 0 || CLOSURES || OWNERS)
progress(`after: ${conns} new connections, heapUsed ${(heapB / 1024 / 1024).toFixed(1)} MiB`)

const perConn = (bytes: number) => bytes / conns
const rows: Array<{ key: string; count: number; size: number }> = []
for (const [key, b] of snapB.byName) {
  const a = snapA.byName.get(key) ?? { count: 0, size: 0 }
  rows.push({ key, count: b.count - a.count, size: b.size - a.size })
}
rows.sort((x, y) => y.size - x.size)
const fmtKiB = (b: number) => (b / 1024).toFixed(2).padStart(8)

console.log(
  `\n${conns} idle connections: heapUsed ${fmtKiB(perConn(heapB - heapA))} KiB/conn; snapshot self sizes ${
    fmtKiB(perConn(snapB.total - snapA.total))
  } KiB/conn; RSS ${fmtKiB(perConn(rssB - rssA))} KiB/conn\n`
)
console.log(`${"KiB/conn".padStart(8)}  ${"objs/conn".padStart(9)}  type  name`)
for (const r of rows.slice(0, TOP)) {
  const [type, name] = r.key.split("\t")
  console.log(`${fmtKiB(perConn(r.size))}  ${(r.count / conns).toFixed(1).padStart(9)}  ${type}  ${name}`)
}
// by type
const byType = new Map<string, number>()
for (const r of rows) {
  const t = r.key.split("\t")[0]!
  byType.set(t, (byType.get(t) ?? 0) + r.size)
}
console.log(`\nby node type:`)
for (const [t, s] of [...byType].sort((x, y) => y[1] - x[1])) console.log(`${fmtKiB(perConn(s))}  ${t}`)

for (const target of RETAINERS) {
  const r = [...retainersOf(snapB, snapA, target)].sort((x, y) => y[1].size - x[1].size)
  console.log(`\nnew "${target}" held by (owner .edge: objs/conn, KiB/conn):`)
  for (const [k, a] of r.slice(0, 25)) {
    console.log(`${fmtKiB(perConn(a.size))}  ${(a.count / conns).toFixed(1).padStart(6)}  ${k}`)
  }
}

if (CLOSURES) {
  const r = [...closuresByLocation(snapB, snapA)].sort((x, y) => y[1].size - x[1].size)
  console.log(`\nnew closures (+ the contexts they alone hold) by function location: KiB/conn, closures/conn`)
  let sum = 0
  for (const [, a] of r) sum += a.size
  console.log(`${fmtKiB(perConn(sum))}  total`)
  for (const [k, a] of r.slice(0, TOP)) {
    console.log(`${fmtKiB(perConn(a.size))}  ${(a.count / conns).toFixed(1).padStart(6)}  ${k}`)
  }
}

if (OWNERS) {
  const { out, drill } = owners(snapB, snapA, DRILL)
  const r = [...out].sort((x, y) => y[1].size - x[1].size)
  let sum = 0
  for (const [, a] of r) sum += a.size
  console.log(
    `\nper-connection owners (topmost new dominators) by retained size: KiB/conn, owners/conn; total ${
      fmtKiB(perConn(sum))
    }`
  )
  for (const [k, a] of r.slice(0, TOP)) {
    console.log(`${fmtKiB(perConn(a.size))}  ${(a.count / conns).toFixed(2).padStart(6)}  ${k}`)
  }
  if (DRILL.length > 0) {
    console.log(`\ninside owners matching ${DRILL.join(", ")}:`)
    for (const [k, a] of [...drill].sort((x, y) => y[1].size - x[1].size).slice(0, TOP)) {
      console.log(`${fmtKiB(perConn(a.size))}  ${(a.count / conns).toFixed(2).padStart(6)}  ${k}`)
    }
  }
}

await call("closeNodes")
child.stdin!.end()
await Effect.runPromise(Scope.close(scope, Exit.void))
process.exit(0)
