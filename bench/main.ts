/**
 * `npm run bench`: our node against js-libp2p 3.3 and the physical limits,
 * side by side in one run (docs/ARCHITECTURE.md §2 `bench/`; issue 6 item 2).
 *
 * Every node runs in its own process (so each end's CPU time is its own and
 * the two ends do not share an event loop): ours is bench/ours-peer.ts, js is
 * spec-tests/interop/harness/js-peer.mjs, the raw `node:net` limit is
 * bench/raw-peer.ts, go is the go-libp2p v0.52 test peer (spec-tests/interop/go, built as for
 * the tests; its pairings go→go, ours→go and go→ours join the run when Go is found and
 * BENCH_GO is not 0); all speak the same JSON-lines commands on stdin/stdout.
 * Each scenario runs for the four pairings ours→ours, js→js, ours→js and
 * js→ours (client → server), interleaved round by round (the pairing order
 * rotates every round), and reports medians over the rounds:
 *
 * - throughput: 64 MiB, 256 MiB and 1 GiB uploads and downloads on one perf stream
 *   (`/perf/1.0.0`), every size in every round, Gbit/s and CPU seconds per GiB for each
 *   end (process.cpuUsage of each process before and after); raw node:net alongside,
 *   and (with the crypto scenario) the encrypted ceiling: node:net and node:crypto's
 *   ChaCha20-Poly1305 at 64 KiB records as one core doing both, 1 / (1/net + 1/cipher),
 *   with ours↔ours as a percentage of it;
 * - latency: 1-byte echo on an open `/echo/1.0.0` stream, and a new perf
 *   stream per request (1 byte each way): median and p99 (per round, then the
 *   median over rounds); raw node:net RTT alongside; and the CPU time both
 *   processes spent per echo or per request (process.cpuUsage around each
 *   loop), which the VM's wake-up latency does not move as it moves the times;
 * - connection setup: dial + Noise + Yamux + first stream (an `/echo/1.0.0`
 *   stream and a 1-byte echo on it), median and p99, and sequential
 *   connections per second (hang-up included);
 * - memory: a listener (ours, js) with 1,000 idle connections from 1,000
 *   nodes of the same kind (run K nodes in one dialer process): heap and RSS
 *   per connection after V8's shrinking ("last-resort") collection, before and
 *   after; and RSS after an ordinary GC, which keeps the young generation as
 *   large as the burst of handshakes grew it;
 * - store (bench/store.ts, in this process): peer store updates/s and datastore
 *   puts/gets/s (single and batched), ours (Memory, SQLite) beside js-libp2p's
 *   `@libp2p/peer-store` on `datastore-core` MemoryDatastore and `datastore-level`
 * - node:crypto ChaCha20-Poly1305 throughput on 64 KiB and 1 KiB messages
 *   (in this process);
 * - mix (bench/mix.ts, in this process): LIP-99 Sphinx packets processed and
 *   built per second on one core, and 3-hop latency without delays.
 * - gossipsub and dht (bench/swarm.ts): many nodes of one implementation (ours:
 *   bench/ours-swarm.ts, js: bench/js-swarm.mjs, nodes of a role share a process):
 *   gossipsub 1 publisher → BENCH_GS_SUBS (10) subscribers, 1 KiB and 64 KiB messages
 *   (msg/s to all, CPU per message, latency); Kad-DHT lookups from a client into
 *   BENCH_DHT_SERVERS (20) servers (lookups/s, requests per lookup, latency, CPU).
 *   BENCH_GS_SCALE multiplies the message counts, BENCH_DHT_LOOKUPS sets the lookups.
 *
 * It prints one table (each figure, ours, js, ratio ours/js, the cross
 * pairings, the node:net limit) and writes it with the raw samples to
 * bench/results/latest.json. Progress goes to stderr.
 *
 * Usage: npm run bench [-- --only=throughput,latency,newstream,setup,memory,store,crypto,mix,gossipsub,dht] [-- --profile]
 * Env: BENCH_QUICK=1 (a ~1 minute smoke run with small sizes), BENCH_MIB (throughput
 * sizes in MiB, a comma list, default 64,256,1024), BENCH_ROUNDS, BENCH_CONNS (memory scenario), BENCH_VERBOSE=1 (peers' stderr),
 * BENCH_BUDGET (wall-clock seconds, default 660): each scenario has a share of it and
 * runs fewer rounds (at least one), or fewer memory connections, when the machine is
 * too busy to fit; the output says how many it did. On a quiet 2-core machine the
 * full run takes about 5 minutes.
 * `--profile` profiles our side of the scenarios chosen with `--only` (default: the
 * ours→ours throughput scenario alone): our peer processes under `node --cpu-prof` for
 * throughput, latency, newstream, setup and memory; our swarm processes for gossipsub and
 * dht; this process (node:inspector's Profiler) for the in-process store, crypto and mix.
 * It prints the top self-time functions of each profile (bench/cpuprofile.ts) and writes
 * a flame graph of each (bench/flamegraph.ts, an SVG beside the profile); the profiles
 * stay in bench/results/profiles/.
 */
import { ChaCha20Poly1305, newInstance } from "@chainsafe/as-chacha20poly1305"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import * as GoBuild from "../spec-tests/interop/harness/goBuild.ts"
import * as CpuProfile from "./cpuprofile.ts"
import * as Flamegraph from "./flamegraph.ts"
import * as InProcessProfile from "./inprocess-profile.ts"
import * as KadMemory from "./kad-memory.ts"
import * as MixBench from "./mix.ts"
import * as Store from "./store.ts"
import * as Swarm from "./swarm.ts"

const ROOT = Path.resolve(import.meta.dirname, "..")
const RESULTS = Path.join(ROOT, "bench", "results")
const PROFILE_DIR = Path.join(RESULTS, "profiles")

// ---------------------------------------------------------------- configuration

const argv = process.argv.slice(2)
const QUICK = process.env["BENCH_QUICK"] === "1"
const VERBOSE = process.env["BENCH_VERBOSE"] === "1"
const PROFILE = argv.includes("--profile")
const envNum = (name: string, dflt: number): number => {
  const v = process.env[name]
  return v !== undefined && v !== "" && Number.isFinite(Number(v)) ? Number(v) : dflt
}
const envList = (name: string, dflt: ReadonlyArray<number>): ReadonlyArray<number> => {
  const list = (process.env[name] ?? "").split(",").filter((v) => v.trim() !== "").map(Number)
  return list.length > 0 && list.every((n) => Number.isFinite(n) && n > 0) ? list : dflt
}
const onlyArg = argv.find((a) => a.startsWith("--only="))
const SCENARIOS = [
  "throughput",
  "latency",
  "newstream",
  "setup",
  "memory",
  "store",
  "crypto",
  "mix",
  "gossipsub",
  "dht"
] as const
type Scenario = typeof SCENARIOS[number]
const only: ReadonlySet<Scenario> = new Set(
  onlyArg !== undefined
    ? onlyArg.slice("--only=".length).split(",").filter((s): s is Scenario =>
      (SCENARIOS as ReadonlyArray<string>).includes(s)
    )
    : PROFILE
    ? ["throughput"]
    : SCENARIOS
)
/** `--profile` with gossipsub or dht: our swarm processes run under `--cpu-prof`. */
const PROFILE_SWARM = PROFILE && (only.has("gossipsub") || only.has("dht"))
/** The scenarios that run in this process: `--profile` records them with node:inspector. */
const IN_PROCESS: ReadonlySet<Scenario> = new Set(["store", "crypto", "mix"])

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const CFG = {
  /** transfer sizes of the throughput scenario, each in every round (BENCH_MIB: a comma list of MiB) */
  throughputSizes: envList("BENCH_MIB", QUICK ? [64] : [64, 256, 1024]).map((m) => m * MiB),
  throughputRounds: envNum("BENCH_ROUNDS", QUICK ? 2 : 3),
  latencyRounds: envNum("BENCH_ROUNDS", QUICK ? 2 : 5),
  echoCount: QUICK ? 300 : 2000,
  newStreamCount: QUICK ? 100 : 400,
  /** untimed echoes and new-stream requests per pairing before the rounds: a node serves streams
   *  for hours, so the rows compare steady-state costs, not how soon V8 has compiled the path (in
   *  batches of 2,000 new streams on one connection, our CPU per request fell from ~900 to
   *  300–400 µs over the first ~8,000, js-libp2p's from ~2,500 to ~1,700 within the first 2,000) */
  echoWarmup: QUICK ? 200 : 2000,
  newStreamWarmup: QUICK ? 50 : 6000,
  dialCount: QUICK ? 30 : 100,
  memoryConns: envNum("BENCH_CONNS", QUICK ? 100 : 1000),
  cryptoSeconds: QUICK ? 0.3 : 1,
  store: { peers: QUICK ? 500 : 2000, rounds: 3, keys: QUICK ? 1000 : 5000 },
  storeRuns: QUICK ? 1 : 3,
  gossipsub: {
    subscribers: envNum("BENCH_GS_SUBS", 10),
    messages: [
      [1024, Math.round(envNum("BENCH_GS_SCALE", 1) * (QUICK ? 200 : 500))],
      [64 * 1024, Math.round(envNum("BENCH_GS_SCALE", 1) * (QUICK ? 20 : 50))]
    ] as ReadonlyArray<readonly [number, number]>,
    rounds: envNum("BENCH_ROUNDS", 1),
    latencyMessages: QUICK ? 20 : 40
  },
  dht: {
    servers: envNum("BENCH_DHT_SERVERS", 20),
    lookups: envNum("BENCH_DHT_LOOKUPS", QUICK ? 20 : 50),
    rounds: envNum("BENCH_ROUNDS", QUICK ? 1 : 3)
  },
  /** Wall-clock budget of the whole run (s); each scenario gets a share (SHARE) and stops
   *  adding rounds (after at least one) when the next would overrun it. */
  budgetSeconds: envNum("BENCH_BUDGET", QUICK ? 120 : 660)
}

/** Shares of the budget per scenario (they sum to < 1; the rest is start-up and stops). */
const SHARE: Record<Scenario, number> = {
  throughput: 0.52,
  latency: 0.06,
  newstream: 0.08,
  setup: 0.1,
  memory: 0.17,
  store: 0.02,
  crypto: 0.02,
  mix: 0.02,
  gossipsub: 0.1,
  dht: 0.08
}

/** Scenarios that failed, with the error. */
const failures: Partial<Record<Scenario, string>> = {}

/** Rounds each scenario completed (fewer than asked when its budget share ran out). */
const roundsDone: Partial<Record<Scenario, number>> = {}

/**
 * Run up to `max` rounds of `body`, stopping early (after at least one) when the
 * next round would end past the scenario's share of the budget, measured from `start`.
 */
const rounds = async (
  scenario: Scenario,
  max: number,
  start: number,
  body: (r: number) => Promise<void>
): Promise<void> => {
  const share = CFG.budgetSeconds * SHARE[scenario] * 1000
  let r = 0
  while (r < max) {
    const roundStart = performance.now()
    await body(r)
    r++
    const perRound = performance.now() - roundStart
    if (r < max && performance.now() + perRound - start > share) {
      progress(
        `  ${scenario}: stopping after ${r} of ${max} rounds (budget share ${fmt(share / 1000, 0)} s; ` +
          `the machine is slow or busy, load average ${Os.loadavg()[0]!.toFixed(2)})`
      )
      break
    }
  }
  roundsDone[scenario] = r
}

// ---------------------------------------------------------------- progress

const t0 = performance.now()
const progress = (msg: string): void => {
  process.stderr.write(`[bench ${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`)
}

// ---------------------------------------------------------------- statistics

const quantile = (sorted: ReadonlyArray<number>, q: number): number => {
  if (sorted.length === 0) return Number.NaN
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}
const sortNum = (xs: ReadonlyArray<number>): Array<number> => [...xs].sort((a, b) => a - b)
const median = (xs: ReadonlyArray<number>): number => quantile(sortNum(xs), 0.5)
const p99 = (xs: ReadonlyArray<number>): number => quantile(sortNum(xs), 0.99)

// ---------------------------------------------------------------- peer processes

type Kind = "ours" | "js" | "raw" | "go"
type Reply = Record<string, unknown>

interface Peer {
  readonly kind: Kind
  readonly name: string
  readonly pid: number
  readonly peerId: string
  readonly addr: string
  readonly call: (cmd: string, args?: Record<string, unknown>, timeoutMs?: number) => Promise<Reply>
  readonly stop: () => Promise<void>
}

interface Cpu {
  readonly user: number
  readonly system: number
  readonly heapUsed: number
  readonly rss: number
  /** the peer's monotonic clock in µs (the time base of its --cpu-prof profile) */
  readonly monoUs: number
}

const SCRIPTS: Record<Exclude<Kind, "go">, string> = {
  ours: Path.join(ROOT, "bench", "ours-peer.ts"),
  js: Path.join(ROOT, "spec-tests", "interop", "harness", "js-peer.mjs"),
  raw: Path.join(ROOT, "bench", "raw-peer.ts")
}

/**
 * The go-libp2p peer (spec-tests/interop/go, the same JSON-lines commands), built as for the
 * tests; undefined (and the go pairings left out) when there is no Go, or BENCH_GO=0.
 */
const GO: GoBuild.GoPeerBuild | undefined = (() => {
  if (process.env["BENCH_GO"] === "0") return undefined
  const go = GoBuild.findGo()
  if (go === undefined) {
    process.stderr.write(`[bench] no Go found: the go pairings are left out\n`)
    return undefined
  }
  return GoBuild.buildGoPeer(go)
})()

const live = new Set<ChildProcess.ChildProcess>()
process.on("exit", () => {
  for (const child of live) child.kill("SIGKILL")
})
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    for (const child of live) child.kill("SIGKILL")
    process.exit(130)
  })
}

const spawnPeer = (
  kind: Kind,
  name: string,
  options: {
    readonly gc?: boolean
    readonly cpuProf?: string
    readonly config?: Record<string, unknown>
    /** another script speaking the same lines (bench/ours-swarm.ts, bench/js-swarm.mjs) */
    readonly script?: string
  } = {}
) =>
  new Promise<Peer>((resolve, reject) => {
    const nodeArgs: Array<string> = []
    if (options.gc === true) nodeArgs.push("--expose-gc")
    if (options.cpuProf !== undefined) {
      nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProf}`, `--cpu-prof-name=${name}.cpuprofile`)
    }
    const config = JSON.stringify({
      ...(kind === "raw" ? {} : { listen: ["/ip4/127.0.0.1/tcp/0"] }),
      ...options.config
    })
    const [command, args] = kind === "go"
      ? [GO!.binary, [config]]
      : [process.execPath, [...nodeArgs, options.script ?? SCRIPTS[kind], config]]
    const child = ChildProcess.spawn(command, args, {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"]
    })
    live.add(child)
    const tail: Array<string> = []
    Readline.createInterface({ input: child.stderr!, crlfDelay: Infinity }).on("line", (line) => {
      if (VERBOSE) process.stderr.write(`  [${name}] ${line}\n`)
      tail.push(line)
      if (tail.length > 30) tail.shift()
    })
    let nextId = 1
    const pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()
    let ready = false
    const exited = new Promise<void>((r) => child.once("exit", () => r()))
    child.once("exit", (code, signal) => {
      live.delete(child)
      const err = new Error(`${name} exited (code ${code}, signal ${signal}); stderr tail:\n${tail.join("\n")}`)
      for (const p of pending.values()) p.reject(err)
      pending.clear()
      if (!ready) reject(err)
    })
    Readline.createInterface({ input: child.stdout!, crlfDelay: Infinity }).on("line", (line) => {
      let msg: Reply
      try {
        msg = JSON.parse(line) as Reply
      } catch {
        return
      }
      if (!ready && msg["event"] === "ready") {
        ready = true
        const addrs = msg["addrs"] as ReadonlyArray<string>
        resolve({
          kind,
          name,
          pid: child.pid ?? 0,
          peerId: String(msg["peerId"]),
          addr: addrs[0] ?? "",
          call: (cmd, args = {}, timeoutMs = 180_000) =>
            new Promise<Reply>((res, rej) => {
              const id = nextId++
              const timer = setTimeout(() => {
                pending.delete(id)
                rej(new Error(`${name}: ${cmd} timed out after ${timeoutMs} ms`))
              }, timeoutMs)
              pending.set(id, {
                resolve: (r) => {
                  clearTimeout(timer)
                  res(r)
                },
                reject: (e) => {
                  clearTimeout(timer)
                  rej(e)
                }
              })
              child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + "\n")
            }),
          stop: async () => {
            if (child.exitCode !== null || child.signalCode !== null) return
            child.stdin!.write(JSON.stringify({ id: 0, cmd: "stop" }) + "\n")
            const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
            await exited
            clearTimeout(timer)
          }
        })
        return
      }
      const id = msg["id"]
      if (typeof id !== "number") return
      const p = pending.get(id)
      if (p === undefined) return
      pending.delete(id)
      if (msg["ok"] === true) p.resolve(msg)
      else p.reject(new Error(`${name}: ${String(msg["error"])}`))
    })
  })

/** `gc`: collect garbage first; "last-resort": also V8's shrinking collection (the young generation too). */
const cpuOf = async (peer: Peer, gc: boolean | "last-resort" = false): Promise<Cpu> => {
  const r = await peer.call("cpu", gc !== false ? { gc } : {})
  const cpu = {
    user: Number(r["user"]),
    system: Number(r["system"]),
    heapUsed: Number(r["heapUsed"]),
    rss: Number(r["rss"]),
    monoUs: Number(r["monoUs"])
  }
  const w = windows.get(peer.name)
  windows.set(peer.name, {
    fromUs: Math.min(w?.fromUs ?? Infinity, cpu.monoUs),
    toUs: Math.max(w?.toUs ?? -Infinity, cpu.monoUs)
  })
  return cpu
}
/** Per peer: the span between its first and last `cpu` reading (the profile window in --profile). */
const windows = new Map<string, CpuProfile.Window>()
const cpuSeconds = (a: Cpu, b: Cpu): number => (b.user + b.system - a.user - a.system) / 1e6
const usList = (r: Reply): ReadonlyArray<number> => r["us"] as ReadonlyArray<number>

// ---------------------------------------------------------------- results

type Pairing = "ours→ours" | "js→js" | "ours→js" | "js→ours" | "go→go" | "ours→go" | "go→ours" | "node:net"
const PAIRINGS: ReadonlyArray<Exclude<Pairing, "node:net">> = [
  "ours→ours",
  "js→js",
  "ours→js",
  "js→ours",
  ...(GO !== undefined ? (["go→go", "ours→go", "go→ours"] as const) : [])
]

interface Row {
  readonly figure: string
  readonly unit: string
  /** true when smaller is better (latency, CPU, memory) */
  readonly lowerIsBetter: boolean
  readonly values: Partial<Record<Pairing, number>>
  /** a value with no pairing (crypto) */
  readonly value?: number
}

const rows: Array<Row> = []
const samples: Record<string, unknown> = {}

/** Per-round values, keyed by figure then pairing. */
const collected = new Map<string, { unit: string; lowerIsBetter: boolean; values: Map<Pairing, Array<number>> }>()
const record = (figure: string, unit: string, lowerIsBetter: boolean, pairing: Pairing, value: number): void => {
  let entry = collected.get(figure)
  if (entry === undefined) collected.set(figure, entry = { unit, lowerIsBetter, values: new Map() })
  let list = entry.values.get(pairing)
  if (list === undefined) entry.values.set(pairing, list = [])
  list.push(value)
}
/** Move the medians of what was recorded for these figures into the table. */
const flush = (): void => {
  for (const [figure, entry] of collected) {
    const values: Partial<Record<Pairing, number>> = {}
    for (const [pairing, list] of entry.values) values[pairing] = median(list)
    rows.push({ figure, unit: entry.unit, lowerIsBetter: entry.lowerIsBetter, values })
    samples[figure] = Object.fromEntries(entry.values)
  }
  collected.clear()
}

// ---------------------------------------------------------------- peers

interface Peers {
  readonly oursA: Peer
  readonly oursB: Peer
  readonly jsA: Peer
  readonly jsB: Peer
  /** undefined without Go (no go pairing is run then) */
  readonly goA: Peer | undefined
  readonly goB: Peer | undefined
  readonly rawA: Peer
  readonly rawB: Peer
}

const pairOf = (peers: Peers, pairing: Pairing): readonly [Peer, Peer] => {
  switch (pairing) {
    case "ours→ours":
      return [peers.oursA, peers.oursB]
    case "js→js":
      return [peers.jsA, peers.jsB]
    case "ours→js":
      return [peers.oursA, peers.jsB]
    case "js→ours":
      return [peers.jsA, peers.oursB]
    case "go→go":
      return [peers.goA!, peers.goB!]
    case "ours→go":
      return [peers.oursA, peers.goB!]
    case "go→ours":
      return [peers.goA!, peers.oursB]
    case "node:net":
      return [peers.rawA, peers.rawB]
  }
}

/** Pairings in a rotated order for round `r`, so no pairing always goes first. */
const rotated = <A>(list: ReadonlyArray<A>, r: number): ReadonlyArray<A> => {
  const k = r % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : "-")

// ---------------------------------------------------------------- scenarios

const sizeLabel = (bytes: number): string => (bytes >= GiB ? `${bytes / GiB} GiB` : `${bytes / MiB} MiB`)

/**
 * Every size of CFG.throughputSizes in every round (so a slow minute of the machine
 * hits all sizes alike); each size's figures are their own rows.
 */
const throughput = async (peers: Peers, pairings: ReadonlyArray<Pairing>): Promise<void> => {
  const sizes = CFG.throughputSizes
  const start = performance.now()
  progress(
    `throughput: ${sizes.map(sizeLabel).join(", ")} each way, ${CFG.throughputRounds} rounds, ` +
      `pairings ${pairings.join(", ")}`
  )
  // connect and warm up (JIT) every pairing
  for (const pairing of pairings) {
    const [client, server] = pairOf(peers, pairing)
    await client.call("perf", { addr: server.addr, uploadBytes: 32 * MiB, downloadBytes: 32 * MiB })
  }
  windows.clear()
  await rounds("throughput", CFG.throughputRounds, start, async (r) => {
    for (const bytes of sizes) {
      const gib = bytes / GiB
      const label = sizeLabel(bytes)
      for (const direction of ["upload", "download"] as const) {
        for (const pairing of rotated(pairings, r)) {
          const [client, server] = pairOf(peers, pairing)
          const [c0, s0] = await Promise.all([cpuOf(client), cpuOf(server)])
          const res = await client.call("perf", {
            addr: server.addr,
            uploadBytes: direction === "upload" ? bytes : 0,
            downloadBytes: direction === "download" ? bytes : 0
          }, 300_000)
          const [c1, s1] = await Promise.all([cpuOf(client), cpuOf(server)])
          const seconds = Number(res["seconds"])
          const gbps = (bytes * 8) / seconds / 1e9
          const cpuC = cpuSeconds(c0, c1) / gib
          const cpuS = cpuSeconds(s0, s1) / gib
          record(`${direction} throughput (1 stream, ${label})`, "Gbit/s", false, pairing, gbps)
          record(`${direction} CPU client (${label})`, "CPU s/GiB", true, pairing, cpuC)
          record(`${direction} CPU server (${label})`, "CPU s/GiB", true, pairing, cpuS)
          progress(
            `  round ${r + 1} ${label.padStart(7)} ${direction.padEnd(8)} ${pairing.padEnd(9)} ${fmt(gbps)} Gbit/s, ` +
              `CPU ${fmt(cpuC)} s/GiB client, ${fmt(cpuS)} s/GiB server`
          )
        }
      }
    }
  })
  flush()
}

/**
 * The encrypted ceiling of one stream (issue 20): raw node:net throughput and
 * node:crypto's ChaCha20-Poly1305 at Noise's largest record (64 KiB), combined as
 * one core doing both in turn, 1 / (1 / net + 1 / cipher), for each size and
 * direction measured, with ours↔ours as a percentage of it; and the ceiling's CPU
 * cost per GiB at each end, node:net's plus one cipher pass.
 */
const ceiling = (): void => {
  const cipher = rows.find((r) => r.figure === CIPHER_64K)?.value
  if (cipher === undefined) return
  const cipherGbps = cipher * 8
  const cipherSecondsPerGiB = GiB / (cipher * 1e9)
  const extra: Array<Row> = []
  for (const row of rows) {
    const net = row.values["node:net"]
    if (net === undefined) continue
    const tput = /^(upload|download) throughput \(1 stream, (.*)\)$/.exec(row.figure)
    if (tput !== null) {
      const limit = 1 / (1 / net + 1 / cipherGbps)
      extra.push({
        figure: `${tput[1]} encrypted ceiling (${tput[2]})`,
        unit: "Gbit/s",
        lowerIsBetter: false,
        values: {},
        value: limit
      })
      const ours = row.values["ours→ours"]
      if (ours !== undefined) {
        extra.push({
          figure: `${tput[1]} throughput, share of the encrypted ceiling (${tput[2]})`,
          unit: "%",
          lowerIsBetter: false,
          values: { "ours→ours": (100 * ours) / limit }
        })
      }
    }
    const cpu = /^(upload|download) CPU (client|server) \((.*)\)$/.exec(row.figure)
    if (cpu !== null) {
      extra.push({
        figure: `${cpu[1]} CPU ${cpu[2]}, encrypted ceiling (${cpu[3]})`,
        unit: "CPU s/GiB",
        lowerIsBetter: true,
        values: {},
        value: net + cipherSecondsPerGiB
      })
    }
  }
  rows.push(...extra)
}

const latency = async (peers: Peers): Promise<void> => {
  const pairings: ReadonlyArray<Pairing> = [...PAIRINGS, "node:net"]
  const start = performance.now()
  progress(`latency: ${CFG.echoCount} 1-byte echoes on one stream, ${CFG.latencyRounds} rounds`)
  for (const pairing of pairings) {
    const [client, server] = pairOf(peers, pairing)
    await client.call("echoLoop", { addr: server.addr, count: CFG.echoWarmup })
  }
  await rounds("latency", CFG.latencyRounds, start, async (r) => {
    for (const pairing of rotated(pairings, r)) {
      const [client, server] = pairOf(peers, pairing)
      const [c0, s0] = await Promise.all([cpuOf(client), cpuOf(server)])
      const us = usList(await client.call("echoLoop", { addr: server.addr, count: CFG.echoCount }))
      const [c1, s1] = await Promise.all([cpuOf(client), cpuOf(server)])
      const cpu = (cpuSeconds(c0, c1) + cpuSeconds(s0, s1)) * 1e6 / CFG.echoCount
      record("1-byte echo, same stream, median", "µs", true, pairing, median(us))
      record("1-byte echo, same stream, p99", "µs", true, pairing, p99(us))
      record("1-byte echo: CPU per round trip, client + server", "µs", true, pairing, cpu)
      progress(
        `  round ${r + 1} echo ${pairing.padEnd(9)} median ${fmt(median(us), 0)} µs, p99 ${fmt(p99(us), 0)} µs, ` +
          `CPU ${fmt(cpu, 0)} µs per round trip`
      )
    }
  })
  flush()
}

const newStream = async (peers: Peers): Promise<void> => {
  const start = performance.now()
  progress(
    `new stream per request: ${CFG.newStreamCount} perf requests of 1 byte each way, ${CFG.latencyRounds} rounds`
  )
  for (const pairing of PAIRINGS) {
    const [client, server] = pairOf(peers, pairing)
    await client.call("perfLoop", { addr: server.addr, count: CFG.newStreamWarmup })
  }
  await rounds("newstream", CFG.latencyRounds, start, async (r) => {
    for (const pairing of rotated(PAIRINGS, r)) {
      const [client, server] = pairOf(peers, pairing)
      const [c0, s0] = await Promise.all([cpuOf(client), cpuOf(server)])
      const us = usList(await client.call("perfLoop", { addr: server.addr, count: CFG.newStreamCount }))
      const [c1, s1] = await Promise.all([cpuOf(client), cpuOf(server)])
      const cpu = (cpuSeconds(c0, c1) + cpuSeconds(s0, s1)) * 1e6 / CFG.newStreamCount
      record("new stream per request, median", "µs", true, pairing, median(us))
      record("new stream per request, p99", "µs", true, pairing, p99(us))
      record("new stream per request: CPU, client + server", "µs", true, pairing, cpu)
      progress(
        `  round ${r + 1} new stream ${pairing.padEnd(9)} median ${fmt(median(us), 0)} µs, p99 ${
          fmt(p99(us), 0)
        } µs, ` +
          `CPU ${fmt(cpu, 0)} µs per request`
      )
    }
  })
  flush()
}

const setup = async (peers: Peers): Promise<void> => {
  const start = performance.now()
  progress(`connection setup: ${CFG.dialCount} sequential dial+Noise+Yamux+first stream, ${CFG.latencyRounds} rounds`)
  for (const pairing of PAIRINGS) {
    const [client, server] = pairOf(peers, pairing)
    await client.call("dialLoop", { addr: server.addr, count: 10 })
  }
  await rounds("setup", CFG.latencyRounds, start, async (r) => {
    for (const pairing of rotated(PAIRINGS, r)) {
      const [client, server] = pairOf(peers, pairing)
      const res = await client.call("dialLoop", { addr: server.addr, count: CFG.dialCount })
      const ms = usList(res).map((u) => u / 1000)
      const perSecond = CFG.dialCount / Number(res["seconds"])
      record("connection setup, median", "ms", true, pairing, median(ms))
      record("connection setup, p99", "ms", true, pairing, p99(ms))
      record("sequential connections", "conn/s", false, pairing, perSecond)
      progress(
        `  round ${r + 1} setup ${pairing.padEnd(9)} median ${fmt(median(ms))} ms, p99 ${fmt(p99(ms))} ms, ${
          fmt(perSecond, 0)
        } conn/s`
      )
    }
  })
  flush()
}

/** Idle connections each memory listener ended up holding. */
const memoryConns: Partial<Record<"ours" | "js", number>> = {}
/**
 * Both stacks cap connections by default (300 each: js-libp2p's maxConnections, our
 * ConnectionManager, which also trims above 192 after a grace period, and our
 * ResourceManager allows 1,024 inbound): raise the caps well above the test's count.
 */
const LISTENER_LIMITS: Record<"ours" | "js", Record<string, unknown>> = {
  ours: {
    connectionManager: { maxConnections: 20_000, highWater: 20_000, lowWater: 19_000 },
    // each connection reserves 1 MiB of muxer memory (Upgrader connectionMemory) from the system's 2 GiB
    resources: { system: { connectionsInbound: 20_000, connections: 40_000, memory: 32 * GiB } }
  },
  js: { connectionManager: { maxConnections: 20_000 } }
}
const MEMORY_WARMUP = 10
const MEMORY_BATCH = 100
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const memory = async (): Promise<void> => {
  const n = CFG.memoryConns
  const start = performance.now()
  const share = CFG.budgetSeconds * SHARE.memory * 1000
  progress(`memory: ${n} idle connections to one listener, from ${n} nodes of the same kind`)
  for (const [i, kind] of (["ours", "js"] as const).entries()) {
    /** this listener's part of the scenario's budget share ends here */
    const deadline = start + (share * (i + 1)) / 2
    const prof = PROFILE && kind === "ours" ? { cpuProf: PROFILE_DIR } : {}
    const listener = await spawnPeer(kind, `${kind}-listener`, { gc: true, config: LISTENER_LIMITS[kind], ...prof })
    const dialer = await spawnPeer(kind, `${kind}-dialers`, prof)
    try {
      // warm-up connections (kept open) so that first-use costs (code, caches) are not
      // counted per connection; then the baseline, then n more
      await dialer.call("spawnNodes", { addr: listener.addr, count: MEMORY_WARMUP })
      await sleep(1000)
      const base = Number((await listener.call("connections"))["count"])
      const before0 = await cpuOf(listener, true)
      const before = await cpuOf(listener, "last-resort")
      const started = performance.now()
      let opened = 0
      while (opened < n) {
        const batchStart = performance.now()
        const count = Math.min(MEMORY_BATCH, n - opened)
        try {
          const res = await dialer.call("spawnNodes", { addr: listener.addr, count, concurrency: 8 }, 300_000)
          const failed = Number(res["failed"] ?? 0)
          if (failed > 0) progress(`  ${kind}: ${failed} dials failed: ${JSON.stringify(res["errors"])}`)
        } catch (err) {
          // js's spawnNodes fails as a whole on the first failed dial (the listener's count below is what counts)
          progress(`  ${kind}: spawnNodes failed: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`)
        }
        opened += count
        progress(`  ${kind}: ${opened}/${n} connections`)
        if (opened < n && performance.now() + (performance.now() - batchStart) + 5000 > deadline) {
          progress(
            `  ${kind}: stopping at ${opened} connections (budget share; load average ${Os.loadavg()[0]!.toFixed(2)})`
          )
          break
        }
      }
      progress(`  ${kind}: ${opened} connections up in ${fmt((performance.now() - started) / 1000, 1)} s; settling`)
      await sleep(3000)
      const conns = Number((await listener.call("connections"))["count"]) - base
      if (conns !== opened) {
        progress(`  ${kind}: the listener holds ${conns} new connections, not ${opened}; dividing by ${conns}`)
      }
      const after0 = await cpuOf(listener, true)
      const after = await cpuOf(listener, "last-resort")
      const heap = (after.heapUsed - before.heapUsed) / conns / 1024
      const rss = (after.rss - before.rss) / conns / 1024
      // an ordinary GC leaves V8's young generation as large as the burst of handshakes grew it
      // (about 50-75 KiB "per connection" of empty semi-space on this machine): the RSS an
      // operator sees right after the burst, not what the connections hold
      const rss0 = (after0.rss - before0.rss) / conns / 1024
      const pairing: Pairing = kind === "ours" ? "ours→ours" : "js→js"
      record(`listener heap per idle connection`, "KiB", true, pairing, heap)
      record(`listener RSS per idle connection`, "KiB", true, pairing, rss)
      record(`listener RSS per idle connection, ordinary GC (young generation as grown)`, "KiB", true, pairing, rss0)
      memoryConns[kind] = conns
      samples[`memory ${kind}`] = { connections: conns, warmup: base, before0, before, after0, after }
      progress(
        `  ${kind}: listener holds ${conns} connections: heap ${fmt(heap, 1)} KiB/conn, RSS ${fmt(rss, 1)} KiB/conn ` +
          `(${fmt(rss0, 1)} KiB/conn after an ordinary GC)`
      )
    } finally {
      await Promise.all([dialer.stop(), listener.stop()])
    }
  }
  flush()
}

const store = async (): Promise<void> => {
  progress(`store: peer store and datastore, ours and js-libp2p (in this process)`)
  for (let r = 0; r < CFG.storeRuns; r++) {
    await Store.measure(CFG.store, (figure, who, ops) => {
      record(figure, "ops/s", false, who === "ours" ? "ours→ours" : "js→js", ops)
      progress(`  ${figure}, ${who}: ${fmt(ops, 0)} ops/s`)
    })
  }
  flush()
}

const CIPHER_64K = "ChaCha20-Poly1305 encrypt, 64 KiB messages"
const crypto = (): void => {
  progress(`node:crypto ChaCha20-Poly1305 (in this process)`)
  const key = Crypto.randomBytes(32)
  const nonce = Buffer.alloc(12)
  for (const size of [64 * 1024, 1024]) {
    const msg = Crypto.randomBytes(size)
    const results: Array<number> = []
    for (let r = 0; r < 3; r++) {
      let bytes = 0
      let counter = 0n
      const start = performance.now()
      const deadline = start + CFG.cryptoSeconds * 1000
      while (performance.now() < deadline) {
        for (let i = 0; i < 64; i++) {
          nonce.writeBigUInt64LE(counter++, 4)
          const c = Crypto.createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 })
          c.update(msg)
          c.final()
          c.getAuthTag()
          bytes += size
        }
      }
      results.push(bytes / ((performance.now() - start) / 1000) / 1e9)
    }
    const figure = size === 64 * 1024 ? CIPHER_64K : `ChaCha20-Poly1305 encrypt, ${size / 1024} KiB messages`
    rows.push({ figure, unit: "GB/s", lowerIsBetter: false, values: {}, value: median(results) })
    samples[figure] = results
    progress(`  ${size / 1024} KiB: ${fmt(median(results), 3)} GB/s`)
  }
  // Small messages: what one seal costs in node:crypto (a cipher object per
  // message, with a KeyObject as CipherState holds it) and in the WebAssembly
  // cipher CipherState uses below SMALL_MESSAGE bytes.
  const keyObject = Crypto.createSecretKey(key)
  const wasm = new ChaCha20Poly1305(newInstance())
  const empty = new Uint8Array(0)
  for (const size of [13, 128, 255, 512]) {
    const msg = Crypto.randomBytes(size)
    const out = new Uint8Array(size + 16)
    const seal: Record<string, (n: bigint) => void> = {
      "node:crypto": (n) => {
        nonce.writeBigUInt64LE(n, 4)
        const c = Crypto.createCipheriv("chacha20-poly1305", keyObject, nonce, { authTagLength: 16 })
        out.set(c.update(msg))
        c.final()
        out.set(c.getAuthTag(), size)
      },
      "WebAssembly": (n) => {
        nonce.writeBigUInt64LE(n, 4)
        wasm.seal(key, nonce, msg, empty, out)
      }
    }
    for (const [impl, f] of Object.entries(seal)) {
      const results: Array<number> = []
      for (let r = 0; r < 3; r++) {
        let ops = 0
        let counter = 0n
        const start = performance.now()
        const deadline = start + CFG.cryptoSeconds * 300
        while (performance.now() < deadline) {
          for (let i = 0; i < 256; i++) f(counter++)
          ops += 256
        }
        results.push((performance.now() - start) * 1000 / ops)
      }
      const figure = `ChaCha20-Poly1305 seal, ${size}-byte message, ${impl}`
      rows.push({ figure, unit: "µs", lowerIsBetter: true, values: {}, value: median(results) })
      samples[figure] = results
      progress(`  ${size} B, ${impl}: ${fmt(median(results), 2)} µs per seal`)
    }
  }
}

/** gossipsub and Kad-DHT: many nodes of one implementation (bench/swarm.ts). */
const swarmEnv = (scenario: Scenario, profileDir: string | undefined): Swarm.Env => {
  const start = performance.now()
  return {
    spawn: (impl, name) =>
      spawnPeer(impl, name, {
        script: Path.join(ROOT, "bench", impl === "ours" ? "ours-swarm.ts" : "js-swarm.mjs"),
        ...(profileDir !== undefined && impl === "ours" ? { cpuProf: profileDir } : {})
      }),
    record: (figure, unit, lowerIsBetter, impl, value) =>
      record(figure, unit, lowerIsBetter, impl === "ours" ? "ours→ours" : "js→js", value),
    progress,
    moreRounds: (done, roundMs) => {
      roundsDone[scenario] = done
      return performance.now() + roundMs - start <= CFG.budgetSeconds * SHARE[scenario] * 1000
    }
  }
}
const gossipsub = async (profileDir?: string): Promise<void> => {
  progress(`gossipsub: 1 publisher → ${CFG.gossipsub.subscribers} subscribers, ours and js (own processes)`)
  await Swarm.gossipsub(swarmEnv("gossipsub", profileDir), CFG.gossipsub)
  flush()
}
const dht = async (profileDir?: string): Promise<void> => {
  progress(`dht: memory per provider record and routing-table entry (in this process)`)
  await KadMemory.measure({ records: QUICK ? 5_000 : 20_000, peers: 20_000 }, (figure, who, bytes, note) => {
    record(figure, "B", true, who === "ours" ? "ours→ours" : "js→js", bytes)
    progress(`  ${figure}, ${who}: ${fmt(bytes, 0)} bytes${note === undefined ? "" : ` (${note})`}`)
  })
  progress(`dht: ${CFG.dht.servers} Kad servers and a client, ours and js (own processes)`)
  await Swarm.dht(swarmEnv("dht", profileDir), CFG.dht)
  flush()
}

/** Mix (LIP-99): Sphinx packets per second on one core and latency without delays (bench/mix.ts). */
const mix = async (): Promise<void> => {
  progress(`mix: Sphinx processing and 3-hop latency (in this process)`)
  await MixBench.measure({ packets: QUICK ? 300 : 2000, rounds: QUICK ? 5 : 20 }, (figure, unit, value) => {
    rows.push({ figure, unit, lowerIsBetter: unit === "ms", values: {}, value })
    samples[figure] = value
    progress(`  ${figure}: ${fmt(value, unit === "ms" ? 2 : 0)} ${unit}`)
  })
}

// ---------------------------------------------------------------- table

const ratio = (row: Row): number => {
  const o = row.values["ours→ours"]
  const j = row.values["js→js"]
  return o !== undefined && j !== undefined && j !== 0 ? o / j : Number.NaN
}

const renderTable = (): string => {
  const goColumns: ReadonlyArray<Pairing> = GO !== undefined ? ["go→go", "ours→go", "go→ours"] : []
  const header = [
    "figure",
    "unit",
    "ours↔ours",
    "js↔js",
    "ours/js",
    "ours→js",
    "js→ours",
    ...goColumns.map((p) => (p === "go→go" ? "go↔go" : p)),
    "limit"
  ]
  const digits = (
    unit: string,
    v: number
  ): number => (unit === "µs" || unit === "conn/s" || v >= 100 ? 0 : unit === "GB/s" ? 3 : 2)
  const cell = (unit: string, v: number | undefined): string => (v === undefined ? "" : fmt(v, digits(unit, v)))
  const body = rows.map((row) =>
    row.value !== undefined
      ? [row.figure, row.unit, "", "", "", "", "", ...goColumns.map(() => ""), cell(row.unit, row.value)]
      : [
        row.figure,
        row.unit,
        cell(row.unit, row.values["ours→ours"]),
        cell(row.unit, row.values["js→js"]),
        Number.isFinite(ratio(row)) ? fmt(ratio(row)) : "",
        cell(row.unit, row.values["ours→js"]),
        cell(row.unit, row.values["js→ours"]),
        ...goColumns.map((p) => cell(row.unit, row.values[p])),
        cell(row.unit, row.values["node:net"])
      ]
  )
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    "| " + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ") + " |"
  const sep = "|" + widths.map((w, i) => (i < 2 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|") + "|"
  return [line(header), sep, ...body.map(line)].join("\n")
}

// ---------------------------------------------------------------- main

const run = async (): Promise<void> => {
  const loadStart = Os.loadavg()
  progress(
    `start: ${Os.cpus().length} CPUs, load average ${
      loadStart.map((l) => l.toFixed(2)).join(" ")
    }, node ${process.version}` +
      `${QUICK ? ", QUICK" : ""}${PROFILE ? ", PROFILE" : ""}; scenarios: ${[...only].join(", ")}`
  )
  const profileDir = PROFILE_DIR
  if (PROFILE) {
    Fs.rmSync(profileDir, { recursive: true, force: true })
    Fs.mkdirSync(profileDir, { recursive: true })
  }
  const needPeers = only.has("throughput") || only.has("latency") || only.has("newstream") || only.has("setup")
  let peers: Peers | undefined
  if (needPeers) {
    const prof = PROFILE ? { cpuProf: profileDir } : {}
    const [oursA, oursB, jsA, jsB, rawA, rawB, goA, goB] = await Promise.all([
      spawnPeer("ours", "ours-client", prof),
      spawnPeer("ours", "ours-server", prof),
      spawnPeer("js", "js-A"),
      spawnPeer("js", "js-B"),
      spawnPeer("raw", "raw-A"),
      spawnPeer("raw", "raw-B"),
      GO !== undefined ? spawnPeer("go", "go-A") : undefined,
      GO !== undefined ? spawnPeer("go", "go-B") : undefined
    ])
    peers = { oursA, oursB, jsA, jsB, goA, goB, rawA, rawB }
    progress(
      `peers up: ours ${oursA.pid} ${oursB.pid}, js ${jsA.pid} ${jsB.pid}, ` +
        `${goA !== undefined && goB !== undefined ? `go ${goA.pid} ${goB.pid}, ` : ""}node:net ${rawA.pid} ${rawB.pid}`
    )
  }
  /** A scenario that fails is reported and skipped; the others still run. */
  const attempt = async (scenario: Scenario, body: () => Promise<void> | void): Promise<void> => {
    if (!only.has(scenario)) return
    try {
      if (PROFILE && IN_PROCESS.has(scenario)) {
        await InProcessProfile.record(Path.join(profileDir, `bench-${scenario}.cpuprofile`), body)
      } else await body()
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      failures[scenario] = message
      collected.clear()
      progress(`${scenario} FAILED: ${message}`)
    }
  }
  try {
    if (peers !== undefined) {
      const p = peers
      await attempt("throughput", () => throughput(p, PROFILE ? ["ours→ours"] : [...PAIRINGS, "node:net"]))
      await attempt("latency", () => latency(p))
      await attempt("newstream", () => newStream(p))
      await attempt("setup", () => setup(p))
    }
  } finally {
    if (peers !== undefined) {
      await Promise.all(Object.values(peers).map((p: Peer | undefined) => p?.stop()))
    }
  }
  await attempt("memory", memory)
  await attempt("store", store)
  await attempt("crypto", crypto)
  if (only.has("throughput") && only.has("crypto")) ceiling()
  await attempt("mix", mix)
  await attempt("gossipsub", () => gossipsub(PROFILE_SWARM ? profileDir : undefined))
  await attempt("dht", () => dht(PROFILE_SWARM ? profileDir : undefined))

  const loadEnd = Os.loadavg()
  const seconds = (performance.now() - t0) / 1000
  const table = renderTable()
  process.stdout.write(
    `\neffect-libp2p vs js-libp2p ${jsVersion()}${
      GO !== undefined ? ` and go-libp2p ${GO.libp2p} (${GO.goVersion})` : ""
    }, ${new Date().toISOString()}\n` +
      `medians over rounds: ${
        (["throughput", "latency", "newstream", "setup", "gossipsub", "dht"] as const)
          .filter((k) => roundsDone[k] !== undefined)
          .map((k) => `${k} ${roundsDone[k]}`)
          .join(", ")
      }${only.has("store") ? `; store ${CFG.storeRuns} runs` : ""}${
        only.has("throughput") ? `; throughput ${CFG.throughputSizes.map(sizeLabel).join(", ")} per transfer` : ""
      }${
        only.has("memory")
          ? `; memory: ${memoryConns.ours ?? "-"} (ours) and ${memoryConns.js ?? "-"} (js) idle connections`
          : ""
      }\n` +
      `load average at start ${loadStart.map((l) => l.toFixed(2)).join(" ")}, at end ${
        loadEnd.map((l) => l.toFixed(2)).join(" ")
      }; ${Os.cpus().length} CPUs; ${fmt(seconds, 0)} s\n` +
      `pairings are client→server; ours/js = ours↔ours ÷ js↔js; limit = raw node:net over loopback (two processes), or node:crypto in this process\n\n` +
      table + "\n" +
      Object.entries(failures).map(([k, v]) => `\n${k} FAILED: ${v}\n`).join("")
  )
  if (Object.keys(failures).length > 0) process.exitCode = 1
  Fs.mkdirSync(RESULTS, { recursive: true })
  const out = {
    date: new Date().toISOString(),
    node: process.version,
    jsLibp2p: jsVersion(),
    goLibp2p: GO !== undefined ? { version: GO.libp2p, go: GO.goVersion } : null,
    cpus: Os.cpus().length,
    cpuModel: Os.cpus()[0]?.model ?? null,
    loadavg: { start: loadStart, end: loadEnd },
    seconds,
    quick: QUICK,
    config: CFG,
    scenarios: [...only],
    roundsDone,
    memoryConns,
    failures,
    rows: rows.map((r) => ({ ...r, ratioOursJs: ratio(r) })),
    table,
    samples
  }
  const file = Path.join(RESULTS, PROFILE ? "profile.json" : "latest.json")
  Fs.writeFileSync(file, JSON.stringify(out, null, 2) + "\n")
  progress(`wrote ${Path.relative(ROOT, file)}`)
  if (PROFILE) {
    const profiled = [
      ...(needPeers ? ["ours-client", "ours-server"] : []),
      ...(only.has("memory") ? ["ours-listener", "ours-dialers"] : []),
      ...(only.has("gossipsub") ? ["ours-gs-pub", "ours-gs-subs"] : []),
      ...(only.has("dht") ? ["ours-dht-client", "ours-dht-servers"] : []),
      ...[...IN_PROCESS].filter((s) => only.has(s)).map((s) => `bench-${s}`)
    ]
    for (const name of profiled) {
      const path = Path.join(profileDir, `${name}.cpuprofile`)
      if (!Fs.existsSync(path)) {
        progress(`no profile at ${path}`)
        continue
      }
      const window = windows.get(name)
      const svg = Flamegraph.write(path, window)
      process.stdout.write(
        `\n${name} (${Path.relative(ROOT, path)}; flame graph ${
          Path.relative(ROOT, svg)
        }), the measured rounds only:\n` +
          `${CpuProfile.render(CpuProfile.summarize(path, window), 15)}\n`
      )
    }
  }
}

const jsVersion = (): string => {
  try {
    const pkg = JSON.parse(Fs.readFileSync(Path.join(ROOT, "node_modules", "libp2p", "package.json"), "utf8")) as {
      readonly version?: string
    }
    return pkg.version ?? "?"
  } catch {
    return "?"
  }
}

await run().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})
process.exit()
