/**
 * Every program in examples/ runs as its own process, as `npm run example
 * <file>` runs it (the test's own Node 24 with the `@effect-libp2p/source`
 * condition, so `effect-libp2p` resolves to this checkout's sources), and
 * prints what the example promises.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import * as Process from "../support/process.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const args = (file: string, rest: ReadonlyArray<string> = []) => [
  "--conditions=@effect-libp2p/source",
  `examples/${file}`,
  ...rest
]
const example = (file: string) => Process.runOk(process.execPath, args(file), { cwd: ROOT, timeout: "60 seconds" })
const lines = (s: string) => s.split("\n").filter((l) => l.length > 0)
const PEER = "12D3KooW[1-9A-HJ-NP-Za-km-z]+"

describe("examples", () => {
  it.live("ping.ts: one process listens, another dials it and pings it three times; SIGINT stops the first (exit 130)", () =>
    Effect.gen(function*() {
      const listener = yield* Process.spawn(process.execPath, args("ping.ts"), { cwd: ROOT })
      const [, addr] = yield* listener.awaitOutput(
        new RegExp(`listening on (/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${PEER})`)
      )
      const out = yield* Process.runOk(process.execPath, args("ping.ts", [addr!]), { cwd: ROOT })
      expect(out.stdout).toMatch(new RegExp(`pinged ${addr}: [\\d.]+ ms, [\\d.]+ ms, [\\d.]+ ms\\n`))
      // NodeRuntime.runMain: an interrupt by SIGINT exits 130, as a shell's Ctrl-C does
      yield* listener.signal("SIGINT")
      expect((yield* listener.exit).code).toBe(130)
    }).pipe(Effect.scoped))

  it.live("transports.ts: one node listens on TCP, WebSocket and a Unix socket; a ping over each", () =>
    Effect.gen(function*() {
      const out = yield* example("transports.ts")
      expect(lines(out.stdout).filter((l) => l.startsWith("server listening on"))).toHaveLength(3)
      expect(out.stdout).toMatch(/^ping over ip4\/tcp: [\d.]+ ms$/m)
      expect(out.stdout).toMatch(/^ping over ip4\/tcp\/ws: [\d.]+ ms$/m)
      expect(out.stdout).toMatch(/^ping over unix: [\d.]+ ms$/m)
    }))

  it.live("stream-multiplexing.ts: 100 concurrent echo streams on one Yamux connection", () =>
    Effect.gen(function*() {
      const out = yield* example("stream-multiplexing.ts")
      expect(lines(out.stdout)).toEqual([
        `100 streams echoed, e.g. "message 0" … "message 99"`,
        "connections to the server: 1 (/yamux/1.0.0)",
        "all replies in order: true"
      ])
    }))

  it.live("identify.ts: the client learns the server's agent, protocols, addresses, its observed address", () =>
    Effect.gen(function*() {
      const out = yield* example("identify.ts")
      expect(out.stdout).toContain("agent version: identify-example-server/1.0\n")
      expect(out.stdout).toContain("protocol version: ipfs/0.1.0\n")
      expect(out.stdout).toMatch(/^protocols: .*\/ipfs\/ping\/1\.0\.0/m)
      expect(out.stdout).toMatch(/^protocols: .*\/ipfs\/id\/1\.0\.0/m)
      expect(out.stdout).toMatch(/^listen addresses: \/ip4\/127\.0\.0\.1\/tcp\/\d+$/m)
      expect(out.stdout).toMatch(/^observed address \(how the server sees us\): \/ip4\/127\.0\.0\.1\/tcp\/\d+$/m)
      expect(out.stdout).toContain("signed peer record: verified\n")
    }))

  it.live("protocols.ts: a chat and an echo of our own on one node; typed errors for the wrong protocol and size", () =>
    Effect.gen(function*() {
      const out = yield* example("protocols.ts")
      const got = lines(out.stdout)
      expect(got.filter((l) => l.startsWith("[chat] server got"))).toHaveLength(2)
      expect(got).toContain(`[chat] client got: nice to hear "hello"`)
      expect(got).toContain(`[chat] client got: nice to hear "how are you?"`)
      expect(got).toContain("[echo] client got: ping")
      expect(got).toContain("[echo] client got: pong")
      expect(got).toContain("protocols on one connection: 1 connection, /example/chat/1.0.0 and /example/echo/1.0.0")
      expect(got).toContain("unknown protocol refused: ConnectionError Negotiation")
      expect(got.find((l) => l.startsWith("oversized message refused: "))).toMatch(/DuplexError|ReaderError/)
      expect(out.stdout).not.toContain("unexpected")
    }))

  it.live("two-nodes.ts: a node provided inside another is a second node; two nodes built side by side", () =>
    Effect.gen(function*() {
      const out = yield* example("two-nodes.ts")
      const server = new RegExp(`^server (${PEER}) listening on `, "m").exec(out.stdout)?.[1]
      const client = new RegExp(`^client (${PEER}) \\(a different node\\)$`, "m").exec(out.stdout)?.[1]
      expect(server).toBeDefined()
      expect(client).toBeDefined()
      expect(client).not.toBe(server)
      expect(out.stdout).toMatch(/^client pinged server: [\d.]+ ms$/m)
      expect(out.stdout).toMatch(/^b pinged a: [\d.]+ ms$/m)
      expect(out.stdout).toContain("a has 1 connection, b has 1\n")
    }))
})
