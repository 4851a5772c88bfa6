/**
 * Connection management against js-libp2p, full process: our CLI node (ARCHITECTURE.md §7
 * flags `--conn-high`, `--conn-low`, `--conn-grace`, `--max-connections`, and the
 * `peer:trimmed` JSON line) is dialed by 40 js-libp2p v3 nodes with distinct peer ids.
 * The 40 js nodes live in ONE js-peer process (`startNodes`): a js-peer process takes
 * ~116 MiB and ~0.5 s to start here (40 concurrent ones: 4.6 GiB and 23 s on 2 cores).
 *
 * There is no libp2p spec for connection management; the behaviour checked is
 * go-libp2p's connmgr (watermarks, grace period) plus a hard cap that counts
 * connections still handshaking (ARCHITECTURE.md §8: js-libp2p's does not).
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as JsPeer from "./harness/JsPeer.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))

class CliError extends Schema.TaggedError<CliError>()("CliError", {
  reason: Schema.Literals(["Spawn", "Timeout"]),
  message: Schema.String
}) {}

interface Line {
  readonly json: Record<string, unknown>
  /** Arrival time (ms, test process clock). */
  readonly at: number
}

/** Our CLI `node --json …` in the current scope (SIGKILLed when the scope closes). */
const spawnNode = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const exited = yield* Deferred.make<void>()
    const state = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const child = ChildProcess.spawn(process.execPath, [
            "src/cli/main.ts",
            "node",
            "--json",
            "--ephemeral",
            ...args
          ], {
            cwd: ROOT,
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, NO_COLOR: "1" }
          })
          const s = { child, lines: [] as Array<Line>, bad: [] as Array<string>, stderr: "", done: false }
          child.stderr.setEncoding("utf8")
          child.stderr.on("data", (chunk: string) => void (s.stderr = (s.stderr + chunk).slice(-8000)))
          Readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on("line", (line) => {
            try {
              s.lines.push({ json: JSON.parse(line) as Record<string, unknown>, at: performance.now() })
            } catch {
              s.bad.push(line)
            }
          })
          child.on("close", () => {
            s.done = true
            Deferred.doneUnsafe(exited, Effect.void)
          })
          child.on("error", () => {})
          return s
        },
        catch: (e) => new CliError({ reason: "Spawn", message: String(e) })
      }),
      (s) =>
        s.done ? Effect.void : Effect.andThen(
          Effect.sync(() => s.child.kill("SIGKILL")),
          Effect.timeoutOption(Deferred.await(exited), "5 seconds")
        )
    )
    return state
  })

type NodeProcess = Effect.Success<ReturnType<typeof spawnNode>>

const events = (node: NodeProcess, name: string) => node.lines.filter((l) => l.json["event"] === name)

/** Poll `check` every 50 ms until it holds; fail after `within`. */
const until = (what: string, node: NodeProcess, check: () => boolean, within: Duration.Input = "20 seconds") =>
  Effect.gen(function*() {
    const deadline = performance.now() + Duration.toMillis(Duration.fromInputUnsafe(within))
    while (!check()) {
      if (performance.now() > deadline) {
        return yield* new CliError({ reason: "Timeout", message: `${what}; stderr: ${node.stderr}` })
      }
      yield* Effect.sleep("50 millis")
    }
  })

/**
 * Connections open at our node after each line, from its peer:connect / peer:disconnect
 * lines (each js node is a distinct peer with one connection): the count over time.
 */
const openCounts = (node: NodeProcess): ReadonlyArray<number> => {
  const open = new Set<string>()
  const counts: Array<number> = []
  for (const { json } of node.lines) {
    if (json["event"] === "peer:connect") open.add(String(json["peerId"]))
    else if (json["event"] === "peer:disconnect") open.delete(String(json["peerId"]))
    else continue
    counts.push(open.size)
  }
  return counts
}
const openNow = (node: NodeProcess) => openCounts(node).at(-1) ?? 0

const StartNodes = Schema.Struct({
  nodes: Schema.Array(
    Schema.Struct({ peerId: Schema.String, ok: Schema.Boolean, error: Schema.NullOr(Schema.String) })
  ),
  ms: Schema.Number
})
const NodesConnected = Schema.Struct({ connected: Schema.Number, nodes: Schema.Number })

/** Our node listening, and one js-peer process that will host the 40 dialing nodes. */
const setup = (flags: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const ours = yield* spawnNode(["--listen", "/ip4/127.0.0.1/tcp/0", ...flags])
    yield* until("our node is listening", ours, () => events(ours, "listening").length > 0)
    const listening = events(ours, "listening")[0]!.json
    const addr = (listening["addrs"] as ReadonlyArray<string>)[0]!
    const peerId = String(listening["peerId"])
    const js = yield* JsPeer.start({ services: { echo: false, perf: false } })
    const startNodes = (count: number) =>
      Effect.flatMap(
        js.command("startNodes", { addr, count }, { timeout: "45 seconds" }),
        Schema.decodeUnknownEffect(StartNodes)
      )
    const jsConnected = Effect.flatMap(
      js.command("nodesConnected", { peerId }),
      Schema.decodeUnknownEffect(NodesConnected)
    )
    return { ours, peerId, startNodes, jsConnected }
  })

describe("connection manager vs 40 js-libp2p nodes (full process, our CLI node)", () => {
  it.live(
    "go-libp2p connmgr model: --conn-high 20 --conn-low 10 --conn-grace 1s; 40 js nodes connect; after the grace period between 10 and 20 remain; each trim is a peer:trimmed line",
    () =>
      Effect.gen(function*() {
        const { jsConnected, ours, startNodes } = yield* setup([
          "--conn-high",
          "20",
          "--conn-low",
          "10",
          "--conn-grace",
          "1s"
        ])
        const started = yield* startNodes(40)
        // no cap in the way (default 300): every js node connects
        expect(started.nodes.filter((n) => !n.ok).map((n) => n.error)).toEqual([])
        expect(new Set(started.nodes.map((n) => n.peerId)).size).toBe(40)
        yield* until("40 peer:connect lines", ours, () => events(ours, "peer:connect").length === 40)
        const firstConnect = events(ours, "peer:connect")[0]!.at
        // the trimming fiber brings the count under the high watermark once connections leave their grace period
        yield* until("at most 20 open", ours, () => openNow(ours) <= 20)
        // let it settle: no trim happens at or below the high watermark
        yield* Effect.sleep("2500 millis")
        const remaining = openNow(ours)
        console.error(
          `[connmgr] 40 js nodes → ${remaining} connections after trimming (${started.ms.toFixed(0)} ms to connect all)`
        )
        expect(remaining).toBeGreaterThanOrEqual(10)
        expect(remaining).toBeLessThanOrEqual(20)
        // every disconnect was a trim, reported with the §7 shape
        const trimmed = events(ours, "peer:trimmed")
        expect(trimmed).toHaveLength(40 - remaining)
        expect(events(ours, "peer:disconnect")).toHaveLength(40 - remaining)
        const jsIds = new Set(started.nodes.map((n) => n.peerId))
        for (const { at, json } of trimmed) {
          expect(jsIds.has(String(json["peerId"]))).toBe(true)
          expect(json["reason"]).toBe("HighWatermark")
          expect(json["value"]).toBe(0)
          expect(json["target"]).toBe(10)
          expect(json["connections"] as number).toBeGreaterThan(20)
          expect(typeof json["addr"]).toBe("string")
          // nothing is trimmed inside its grace period (the first connection opened first)
          expect(at - firstConnect).toBeGreaterThanOrEqual(900)
        }
        // js sees the same: the trimmed nodes' connections are closed
        let agreed = false
        for (let i = 0; i < 50 && !agreed; i++) {
          agreed = (yield* jsConnected).connected === remaining
          if (!agreed) yield* Effect.sleep("100 millis")
        }
        expect((yield* jsConnected).connected).toBe(remaining)
        expect(ours.bad).toEqual([])
      }),
    60_000
  )

  it.live(
    "hard cap: with --max-connections 15 never more than 15 of 40 js nodes are connected; the others are refused before the handshake",
    () =>
      Effect.gen(function*() {
        const { jsConnected, ours, startNodes } = yield* setup([
          "--max-connections",
          "15",
          "--conn-high",
          "20",
          "--conn-low",
          "10",
          "--conn-grace",
          "1s"
        ])
        const started = yield* startNodes(40)
        const ok = started.nodes.filter((n) => n.ok)
        console.error(`[connmgr] --max-connections 15: ${ok.length} of 40 js dials succeeded`)
        expect(ok).toHaveLength(15)
        yield* until("15 peer:connect lines", ours, () => events(ours, "peer:connect").length >= 15)
        yield* Effect.sleep("1500 millis")
        const counts = openCounts(ours)
        expect(Math.max(...counts)).toBe(15)
        expect(events(ours, "peer:connect")).toHaveLength(15)
        // the watermarks were lowered to the cap: nothing is ever above the high watermark, nothing trimmed
        expect(events(ours, "peer:trimmed")).toHaveLength(0)
        expect((yield* jsConnected).connected).toBe(15)
        expect(ours.bad).toEqual([])
      }),
    60_000
  )
})
