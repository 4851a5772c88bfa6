/**
 * Usage errors and exit codes of the command-line program (ARCHITECTURE.md §7,
 * docs/CLI.md), each command in its own process: a usage error (unknown flag or
 * command, missing argument, bad value, a check of the command itself, a bad
 * `LIBP2P_LOG`) exits 2; under `--json` stdout holds exactly one line,
 * `{"event":"error","error":{"_tag":"UsageError","message":…}}`, and the help
 * text is on stderr only; without `--json` stdout is empty. A runtime failure
 * exits 1 with the error's own `_tag` and `message`, said once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { runCli } from "./support.ts"

const peerAddr = (port: number) =>
  Effect.map(
    Keys.generate("Ed25519"),
    (key) => `/ip4/127.0.0.1/tcp/${port}/p2p/${PeerId.toString(PeerId.fromPrivateKey(key))}`
  )

type Run = Effect.Success<ReturnType<typeof runCli>>

const expectJsonUsageError = (run: Run, message: RegExp) => {
  expect(run.exit, run.stderr).toEqual({ code: 2, signal: null })
  expect(run.bad).toEqual([])
  expect(run.lines).toHaveLength(1)
  expect(run.lines[0]).toMatchObject({ event: "error", error: { _tag: "UsageError" } })
  const error = run.lines[0]!["error"] as Record<string, unknown>
  expect(String(error["message"])).toMatch(message)
  expect(run.stderr).toMatch(/USAGE/) // the help text, on stderr only
}

describe("CLI usage errors (ARCHITECTURE §7, docs/CLI.md)", () => {
  it.live(
    "§7 usage errors on every command: exit 2, one UsageError line on stdout under --json, help on stderr only",
    () =>
      Effect.gen(function*() {
        const target = yield* peerAddr(1)
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
          [["node", "--bogus", "--json"], /--bogus/],
          [["node", "--max-connections", "many", "--json"], /max-connections/],
          [["node", "--dial", "not-a-multiaddr", "--json"], /not-a-multiaddr/],
          [["ping", "--json"], /multiaddr/],
          [["ping", target, "--muxer", "spdy", "--json"], /spdy/],
          [["identify", target, "--bogus", "--json"], /--bogus/],
          [["identify", "/ip4/127.0.0.1/tcp/1", "--json"], /\/p2p\//],
          [["perf", target, "--upload-bytes", "-5", "--json"], /upload-bytes/],
          [["frobnicate", "--json"], /frobnicate/],
          [["--bogus", "--json"], /--bogus/]
        ]
        const runs = yield* Effect.forEach(cases, ([args]) => runCli(args), { concurrency: 4 })
        runs.forEach((run, i) => expectJsonUsageError(run, cases[i]![1]))
      }),
    180_000
  )

  it.live(
    "§7 without --json a usage error prints nothing on stdout: usage and the message on stderr, exit 2",
    () =>
      Effect.gen(function*() {
        const run = yield* runCli(["ping", "--count", "x"])
        expect(run.exit).toEqual({ code: 2, signal: null })
        expect(run.lines).toEqual([])
        expect(run.bad).toEqual([])
        expect(run.stderr).toMatch(/USAGE/)
        expect(run.stderr).toMatch(/--count/)
      }),
    60_000
  )

  it.live("ping --count 0 and --count -1 are usage errors (not one ping)", () =>
    Effect.gen(function*() {
      const target = yield* peerAddr(1)
      const [zero, negative] = yield* Effect.all([
        runCli(["ping", target, "--count", "0", "--json"]),
        runCli(["ping", target, "--count", "-1", "--json"])
      ], { concurrency: 2 })
      expectJsonUsageError(zero, /--count/)
      expectJsonUsageError(negative, /--count/)
    }), 60_000)

  it.live(
    "perf without --upload-bytes and --download-bytes is a usage error (0 bytes measures nothing)",
    () =>
      Effect.gen(function*() {
        const run = yield* runCli(["perf", yield* peerAddr(1), "--json"])
        expectJsonUsageError(run, /--upload-bytes.*--download-bytes/)
      }),
    60_000
  )

  it.live(
    "LIBP2P_LOG with an unknown level is a usage error: exit 2 and a UsageError line",
    () =>
      Effect.gen(function*() {
        const run = yield* runCli(["ping", "--json"], "40 seconds", { env: { LIBP2P_LOG: "loud" } })
        expect(run.exit).toEqual({ code: 2, signal: null })
        expect(run.lines).toHaveLength(1)
        expect(run.lines[0]).toMatchObject({ event: "error", error: { _tag: "UsageError" } })
        expect(String((run.lines[0]!["error"] as Record<string, unknown>)["message"])).toMatch(/LIBP2P_LOG.*loud/)
      }),
    60_000
  )

  it.live(
    "§7 a runtime failure exits 1 with the error's own _tag and message, not re-wrapped by the CLI",
    () =>
      Effect.gen(function*() {
        const target = yield* peerAddr(1) // nothing listens on port 1: refused
        const [json, text] = yield* Effect.all([
          runCli(["ping", target, "--json"]),
          runCli(["ping", target])
        ], { concurrency: 2 })
        expect(json.exit).toEqual({ code: 1, signal: null })
        expect(json.lines).toHaveLength(1)
        const error = json.lines[0]!["error"] as Record<string, unknown>
        expect(error["_tag"]).toBe("DialError")
        const message = String(error["message"])
        // the CLI adds nothing: no "<reason>: " prefix before the error's own message
        expect(message.startsWith(`${String(error["reason"])}: `)).toBe(false)
        expect(json.stderr).not.toMatch(/USAGE/)
        expect(text.exit).toEqual({ code: 1, signal: null })
        expect(text.lines).toEqual([])
        expect(text.stderr).toContain(`error: DialError: ${message}`)
      }),
    60_000
  )
})
