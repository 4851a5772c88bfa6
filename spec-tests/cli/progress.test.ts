/**
 * Progress on stderr for `perf` (issue 16 item 5): redrawn in place (`\r`)
 * while the transfer runs when stderr is a terminal — bytes each way and the
 * rate — and nothing extra anywhere when it is not; `--json` stdout carries
 * the one result line either way.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { formatBytes, formatRate, line } from "../../src/cli/progress.ts"
import * as Process from "../support/process.ts"
import { runCli, spawnCli, stop } from "./support.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const MiB = 1024 * 1024

const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`

describe("perf progress on stderr (issue 16 item 5)", () => {
  it("a progress line: bytes each way since the start, the rate since the last sample", () => {
    expect(formatBytes(512)).toBe("512 B")
    expect(formatBytes(1.5 * MiB)).toBe("1.5 MiB")
    expect(formatRate(125_000_000)).toBe("1.00 Gbit/s")
    expect(line("perf", { read: 100, written: 200 }, { read: 100, written: 200 }, { read: 100, written: 200 + MiB }, 1))
      .toBe("perf: 1.0 MiB sent, 0 B received, 8.4 Mbit/s")
  })

  it.live(
    "stderr a terminal (script(1) gives the program a pty): progress lines redrawn with \\r; stdout only the result",
    () =>
      Effect.gen(function*() {
        const server = yield* spawnCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--json"])
        const up = yield* server.awaitLine((l) => l["event"] === "listening")
        const addr = (up["addrs"] as Array<string>)[0]!
        const out = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "perf-progress-")), "stdout.json")
        const command =
          [process.execPath, "src/cli/main.ts", "perf", addr, "--upload-bytes", String(512 * MiB), "--json"]
            .map(quote).join(" ") + ` > ${quote(out)}`
        const tty = yield* Process.run("script", ["-qec", command, "/dev/null"], { cwd: ROOT, timeout: "90 seconds" })
        expect(tty.code).toBe(0)
        const frames = tty.stdout.split("\r").filter((f) => f.startsWith("perf: "))
        expect(frames.length).toBeGreaterThanOrEqual(2)
        expect(frames.some((f) => /perf: \d+\.\d MiB sent, .* received, [\d.]+ (M|G)bit\/s/.test(f))).toBe(true)
        // the last thing on the terminal erases the progress line
        expect(tty.stdout.replace(/\r?\n$/, "").endsWith("\r\u001b[K")).toBe(true)
        const lines = Fs.readFileSync(out, "utf8").trim().split("\n")
        expect(lines).toHaveLength(1)
        expect(JSON.parse(lines[0]!)).toMatchObject({ event: "perf", uploadBytes: 512 * MiB })
        expect(yield* stop(server)).toEqual({ code: 0, signal: null })
      }),
    120_000
  )

  it.live("stderr not a terminal: no progress at all, stdout the one result line", () =>
    Effect.gen(function*() {
      const server = yield* spawnCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--json"])
      const up = yield* server.awaitLine((l) => l["event"] === "listening")
      const addr = (up["addrs"] as Array<string>)[0]!
      const r = yield* runCli(["perf", addr, "--upload-bytes", String(32 * MiB), "--json"], "90 seconds")
      expect(r.exit.code).toBe(0)
      expect(r.lines).toHaveLength(1)
      expect(r.lines[0]).toMatchObject({ event: "perf" })
      expect(r.bad).toEqual([])
      expect(r.stderr).not.toContain("\r")
      expect(r.stderr).not.toMatch(/sent, .* received/)
      expect(yield* stop(server)).toEqual({ code: 0, signal: null })
    }), 120_000)
})
