/**
 * Interop of the perf protocol (`/perf/1.0.0`, libp2p perf spec §Protocol)
 * with a js-libp2p v3 node in another process (the harness's own perf handler
 * and client, spec-tests/interop/harness/js-peer.mjs; there is no @libp2p/perf
 * for v3, ARCHITECTURE.md §8), over TCP + Noise + Yamux:
 * - our client → js server and js client → our server, 8 MiB each way, byte
 *   counts exact on both ends (js also with optimistic multistream-select);
 * - the command-line program's `perf <js addr> --upload-bytes N
 *   --download-bytes N --json` (ARCHITECTURE.md §7) prints exactly one
 *   `{"event":"perf",…}` line with the counts and exits 0.
 *
 * Throughput goes to stderr; nothing asserts on speed (ARCHITECTURE.md §6).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { eventually } from "../support/attacker.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const MiB = 1024 * 1024
const SIZE = 8 * MiB
const ROOT = fileURLToPath(new URL("../../", import.meta.url))

const gbps = (bytes: number, seconds: number) => seconds > 0 ? ((bytes * 8) / seconds / 1e9).toFixed(2) : "∞"

const report = (label: string, r: { readonly seconds: number; readonly uploadSeconds: number }) =>
  process.stderr.write(
    `[perf interop] ${label.padEnd(12)} 8 MiB up + 8 MiB down in ${r.seconds.toFixed(3)} s ` +
      `(${gbps(2 * SIZE, r.seconds)} Gbit/s overall, up ${gbps(SIZE, r.uploadSeconds)}, ` +
      `down ${gbps(SIZE, r.seconds - r.uploadSeconds)})\n`
  )

class CliRunError extends Schema.TaggedError<CliRunError>()("CliRunError", { message: Schema.String }) {}

/** Run `src/cli/main.ts …args` with the test's own Node 24 to its exit (SIGKILLed if still running after 40 s). */
const runCli = (args: ReadonlyArray<string>) =>
  Effect.callback<{ code: number | null; stdout: Array<string>; stderr: string }, CliRunError>((resume) => {
    const child = ChildProcess.spawn(process.execPath, ["src/cli/main.ts", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1" }
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (c: string) => void (stdout += c))
    child.stderr.setEncoding("utf8").on("data", (c: string) => void (stderr = (stderr + c).slice(-16_000)))
    child.on("error", (e) => {
      resume(Effect.fail(new CliRunError({ message: String(e) })))
    })
    child.on("close", (code) => {
      resume(Effect.succeed({ code, stdout: stdout.split("\n").filter((l) => l.length > 0), stderr }))
    })
    return Effect.sync(() => void child.kill("SIGKILL"))
  }).pipe(
    Effect.timeoutOrElse({
      duration: "40 seconds",
      orElse: () => Effect.fail(new CliRunError({ message: `${args.join(" ")}: still running after 40 s` }))
    })
  )

describe("interop with js-libp2p: perf spec §Protocol (/perf/1.0.0)", () => {
  it.live(
    "perf spec §Protocol: our client → js server and js client → our server, 8 MiB each way, byte counts exact",
    () =>
      Effect.gen(function*() {
        const [js, ours] = yield* Effect.all([JsPeer.start(), tcpNode()], { concurrency: "unbounded" })
        const jsId = PeerId.fromString(js.peerId)
        if (jsId._tag === "Failure") return yield* Effect.die(jsId.failure)

        // ours → js: js's handler reads the u64, drains the upload, sends the download, closes
        yield* ours.host.dial(ma(js.addr))
        const toJs = yield* ours.perf.perf(jsId.success, { uploadBytes: SIZE, downloadBytes: SIZE })
        expect(toJs.uploadBytes).toBe(SIZE)
        expect(toJs.downloadBytes).toBe(SIZE)
        // asymmetric sizes, zero included
        const small = yield* ours.perf.perf(jsId.success, { uploadBytes: 0, downloadBytes: 12345 })
        expect(small.downloadBytes).toBe(12345)
        const up = yield* ours.perf.perf(jsId.success, { uploadBytes: 54321, downloadBytes: 0 })
        expect(up.downloadBytes).toBe(0)
        const none = yield* ours.perf.perf(jsId.success, { uploadBytes: 0, downloadBytes: 0 })
        expect(none.downloadBytes).toBe(0)

        // js → ours, on a connection js dials, full and optimistic multistream-select
        const oursId = PeerId.toString(ours.host.peerId)
        yield* js.dial(Multiaddr.toString(ours.addr))
        const before = ours.perf.stats()
        const fromJs = yield* js.perf({ peerId: oursId }, { uploadBytes: SIZE, downloadBytes: SIZE })
        expect(fromJs.uploadBytes).toBe(SIZE)
        expect(fromJs.downloadBytes).toBe(SIZE)
        const lazy = yield* js.perf({ peerId: oursId }, { uploadBytes: 777, downloadBytes: 999, negotiateFully: false })
        expect(lazy.downloadBytes).toBe(999)
        // our server counted exactly what js sent and what it sent back
        expect(yield* eventually(Effect.sync(() => ours.perf.stats().completed === before.completed + 2))).toBe(true)
        const after = ours.perf.stats()
        expect(after.uploadBytes - before.uploadBytes).toBe(SIZE + 777)
        expect(after.downloadBytes - before.downloadBytes).toBe(SIZE + 999)
        expect(after.failed).toBe(before.failed)

        report("ours → js", toJs)
        report("js → ours", fromJs)
      }),
    60_000
  )

  it.live(
    "ARCHITECTURE §7: `perf <js addr> --upload-bytes 1048576 --download-bytes 1048576 --json` prints one perf line and exits 0",
    () =>
      Effect.gen(function*() {
        const js = yield* JsPeer.start()
        const [run, bad] = yield* Effect.all([
          runCli(["perf", js.addr, "--upload-bytes", String(MiB), "--download-bytes", String(MiB), "--json"]),
          // a bad size is a usage error: an error line and a non-zero exit
          runCli(["perf", js.addr, "--download-bytes", "-5", "--json"])
        ], { concurrency: 2 })
        expect(run.code, run.stderr).toBe(0)
        expect(run.stdout).toHaveLength(1)
        const line = JSON.parse(run.stdout[0]!) as Record<string, unknown>
        expect(line).toMatchObject({ event: "perf", peerId: js.peerId, uploadBytes: MiB, downloadBytes: MiB })
        expect(typeof line["seconds"]).toBe("number")
        expect(line["seconds"] as number).toBeGreaterThan(0)
        expect(bad.code).not.toBe(0)
        expect(bad.code).toBe(2) // usage error
        expect(bad.stdout).toHaveLength(1)
        expect(JSON.parse(bad.stdout[0]!)).toMatchObject({ event: "error", error: { _tag: "UsageError" } })
      }),
    60_000
  )
})
