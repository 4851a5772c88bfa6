/**
 * `node --http <multiaddr>` (ARCHITECTURE §7): the status server of a node in
 * its own process — the `listening` line carries `"http":"http://127.0.0.1:N/"`,
 * `/metrics` and `/api/status` answer there, a non-loopback address needs
 * `--http-public` (a usage error otherwise, exit 2), and SIGTERM still exits 0.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { collector, get, spansOf } from "../observability/support.ts"
import { runCli, spawnCli, stop } from "./support.ts"

describe("CLI node --http (ARCHITECTURE §7)", () => {
  it.live(
    "§7 node --http /ip4/127.0.0.1/tcp/0: listening carries http, and /metrics and /api/status answer there",
    () =>
      Effect.gen(function*() {
        const node = yield* spawnCli([
          "node",
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--http",
          "/ip4/127.0.0.1/tcp/0",
          "--json"
        ])
        const up = yield* node.awaitLine((l) => l["event"] === "listening")
        const url = String(up["http"])
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*\/$/)
        const metrics = yield* get(`${url}metrics`)
        expect(metrics.status).toBe(200)
        expect(metrics.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
        const status = yield* get(`${url}api/status`)
        expect(status.status).toBe(200)
        const json = JSON.parse(status.body) as { peerId: string; addrs: Array<string> }
        expect(json.peerId).toBe(up["peerId"])
        expect(json.addrs).toEqual(up["addrs"])
        expect(yield* stop(node)).toEqual({ code: 0, signal: null })
        expect(node.bad).toEqual([])
      }),
    60_000
  )

  it.live(
    "§7 node --http on a non-loopback address without --http-public: a usage error, exit 2; --http-public alone too",
    () =>
      Effect.gen(function*() {
        const open = yield* runCli([
          "node",
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--http",
          "/ip4/0.0.0.0/tcp/0",
          "--json"
        ])
        expect(open.exit.code).toBe(2)
        expect(JSON.stringify(open.lines)).toMatch(/"_tag":"UsageError".*--http-public/)
        const alone = yield* runCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--http-public", "--json"])
        expect(alone.exit.code).toBe(2)
        expect(JSON.stringify(alone.lines)).toMatch(/"_tag":"UsageError".*--http-public needs --http/)
      }),
    60_000
  )

  it.live(
    "node --otlp <url>: spans of its connections reach the OTLP collector, flushed on SIGTERM; a bad URL is a usage error",
    () =>
      Effect.gen(function*() {
        const otlp = yield* collector
        const node = yield* spawnCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--otlp", otlp.url, "--json"])
        const up = yield* node.awaitLine((l) => l["event"] === "listening")
        const ping = yield* runCli(["ping", (up["addrs"] as Array<string>)[0]!, "--json"])
        expect(ping.exit.code).toBe(0)
        expect(yield* stop(node)).toEqual({ code: 0, signal: null })
        const names = new Set(spansOf(otlp.requests).map((s) => s.name))
        expect(names.has("libp2p.upgrade")).toBe(true)
        expect(names.has("libp2p.stream.inbound")).toBe(true)
        const bad = yield* runCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--otlp", "not a url", "--json"])
        expect(bad.exit.code).toBe(2)
      }),
    60_000
  )
})
