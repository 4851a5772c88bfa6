/**
 * `node` as a new user meets it (ARCHITECTURE.md §7, docs/CLI.md), each node in
 * its own process: `--dial` at start (a failed dial is an error line with its
 * address and the node keeps running), a taken default port said so (a
 * warning on stderr, `fallbackFrom` in `listening`), the `LIBP2P_LOG`
 * verbosity switch (like `--log-level`; the flag wins) and failed inbound
 * connections logged with their remote address, `--data-dir` created with the node's files.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Duration, Effect, Schedule } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { type Cli, runCli, spawnCli, stop } from "./support.ts"

const LISTEN = ["--listen", "/ip4/127.0.0.1/tcp/0"]

/** Wait until the process's stderr matches (polled; fails after `timeout`). */
const awaitStderr = (cli: Cli, pattern: RegExp, timeout: Duration.Input = "30 seconds") =>
  Effect.suspend(() => pattern.test(cli.stderr()) ? Effect.void : Effect.fail(`stderr does not match ${pattern}`)).pipe(
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.die(new Error(`no ${pattern} on stderr: ${cli.stderr()}`))
    })
  )

const listening = (cli: Cli) =>
  Effect.map(cli.awaitLine((l) => l["event"] === "listening"), (l) => ({
    peerId: l["peerId"] as string,
    addrs: l["addrs"] as Array<string>,
    fallbackFrom: l["fallbackFrom"]
  }))

/** Connect to `port`, send bytes that are no multistream-select, and close. */
const sendGarbage = (port: number) =>
  Effect.callback<void>((resume) => {
    const socket = Net.connect(port, "127.0.0.1", () => {
      socket.end("this is not multistream-select\n")
    })
    socket.on("close", () => resume(Effect.void))
    socket.on("error", () => {})
    socket.resume()
    return Effect.sync(() => void socket.destroy())
  })

/** A fresh temporary directory, removed when the scope closes. */
const tempDir = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), `effect-libp2p-${name}-`))),
    (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
  )

const portOf = (addr: string) => Number(/\/tcp\/(\d+)/.exec(addr)![1])

describe("CLI node (ARCHITECTURE §7, docs/CLI.md)", () => {
  it.live(
    "§7 node --dial <multiaddr> (repeatable): dials at start and prints peer:connect; a failed dial is an error line with its addr, the node keeps running",
    () =>
      Effect.gen(function*() {
        const a = yield* spawnCli(["node", ...LISTEN, "--json"])
        const first = yield* listening(a)
        const unreachable = `/ip4/127.0.0.1/tcp/1/p2p/${
          PeerId.toString(PeerId.fromPrivateKey(yield* Keys.generate("Ed25519")))
        }`
        const dataDir = yield* Effect.acquireRelease(
          Effect.sync(() => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-libp2p-datadir-")), "node")),
          (dir) => Effect.sync(() => Fs.rmSync(Path.dirname(dir), { recursive: true, force: true }))
        )
        const b = yield* spawnCli([
          "node",
          ...LISTEN,
          "--dial",
          first.addrs[0]!,
          "--dial",
          unreachable,
          "--data-dir",
          dataDir,
          "--json"
        ])
        const second = yield* listening(b)
        const connect = yield* b.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === first.peerId)
        expect(String(connect["addr"])).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]/)
        yield* a.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === second.peerId)
        const failed = yield* b.awaitLine((l) => l["event"] === "error")
        expect(failed["addr"]).toBe(unreachable)
        expect((failed["error"] as Record<string, unknown>)["_tag"]).toBe("DialError")
        // --data-dir is created and holds the node's files (spec-tests/cli/datadir.test.ts tests what they keep)
        expect(Fs.readdirSync(dataDir).filter((f) => !f.includes("-"))).toEqual(
          ["config.json", "datastore.sqlite", "identity.key"]
        )
        // still running: it stops on SIGTERM, exit 0
        expect(yield* stop(b)).toEqual({ code: 0, signal: null })
        expect(b.bad).toEqual([])
        const gone = yield* a.awaitLine((l) => l["event"] === "peer:disconnect" && l["peerId"] === second.peerId)
        // b closed its connections as it stopped: to a, the remote closed it
        expect(gone["reason"]).toBe("remote")
        expect(yield* stop(a)).toEqual({ code: 0, signal: null })
      }),
    90_000
  )

  it.live(
    "§7 a taken default port (4001): the node says so on stderr and in listening.fallbackFrom, and listens on a free port",
    () =>
      Effect.gen(function*() {
        // hold 127.0.0.1:4001 (if something else holds it already, it is taken all the same)
        yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const server = Net.createServer()
            server.once("error", () => resume(Effect.succeed(server)))
            server.listen(4001, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.sync(() => void server.close())
        )
        const node = yield* spawnCli(["node", "--json"])
        const up = yield* listening(node)
        expect(up.fallbackFrom).toEqual(["/ip4/127.0.0.1/tcp/4001"])
        expect(up.addrs).toHaveLength(1)
        expect(portOf(up.addrs[0]!)).not.toBe(4001)
        yield* awaitStderr(node, /warning: cannot listen on \/ip4\/127\.0\.0\.1\/tcp\/4001 .*listening on/)
        expect(yield* stop(node)).toEqual({ code: 0, signal: null })
      }),
    60_000
  )

  it.live(
    "LIBP2P_LOG=debug works like --log-level debug: a failed inbound connection is logged with its remote address; the default level does not log it",
    () =>
      Effect.gen(function*() {
        const [byEnv, byFlag, quiet] = yield* Effect.all([
          spawnCli(["node", ...LISTEN, "--json"], { env: { LIBP2P_LOG: "debug" } }),
          spawnCli(["node", ...LISTEN, "--json", "--log-level", "debug"]),
          spawnCli(["node", ...LISTEN, "--json"], { env: { LIBP2P_LOG: "" } })
        ], { concurrency: 3 })
        for (const node of [byEnv, byFlag, quiet]) {
          const up = yield* listening(node)
          yield* sendGarbage(portOf(up.addrs[0]!))
        }
        const logged = /inbound connection from \/ip4\/127\.0\.0\.1\/tcp\/[1-9][0-9]* \(peer unknown\) failed/
        yield* awaitStderr(byEnv, logged)
        yield* awaitStderr(byFlag, logged)
        expect(quiet.stderr()).not.toMatch(/inbound connection/)
        for (const node of [byEnv, byFlag, quiet]) {
          expect(node.bad).toEqual([]) // logs never on stdout
          expect(yield* stop(node)).toEqual({ code: 0, signal: null })
        }
      }),
    90_000
  )

  it.live(
    "§7 --identity <file>: created (mode 0600, folder too) with a new Ed25519 key, the same peer id on the next run; an unreadable key is IdentityFileError, exit 1",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("identity")
        const file = Path.join(dir, "sub", "identity.key")
        const ids: Array<string> = []
        for (let run = 0; run < 2; run++) {
          const node = yield* spawnCli(["node", ...LISTEN, "--identity", file, "--json"])
          ids.push((yield* listening(node)).peerId)
          expect(yield* stop(node)).toEqual({ code: 0, signal: null })
        }
        expect(ids[1]).toBe(ids[0])
        expect(Fs.statSync(file).mode & 0o777).toBe(0o600)
        const bad = Path.join(dir, "bad.key")
        Fs.writeFileSync(bad, "not a protobuf PrivateKey")
        const failed = yield* runCli(["node", ...LISTEN, "--identity", bad, "--json"])
        expect(failed.exit).toEqual({ code: 1, signal: null })
        expect(failed.lines).toHaveLength(1)
        expect(failed.lines[0]).toMatchObject({ event: "error", error: { _tag: "IdentityFileError" } })
        expect(String((failed.lines[0]!["error"] as Record<string, unknown>)["message"])).toContain(bad)
      }),
    90_000
  )

  it.live(
    "§7 node --bootstrap <multiaddr>: dialed at start and kept: redialed with backoff when the peer went away and came back",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir("bootstrap")
        const identity = Path.join(dir, "b.key")
        const b1 = yield* spawnCli(["node", ...LISTEN, "--identity", identity, "--json"])
        const b = yield* listening(b1)
        const a = yield* spawnCli(["node", ...LISTEN, "--bootstrap", b.addrs[0]!, "--ephemeral", "--json"])
        yield* listening(a)
        const connects = () => a.lines.filter((l) => l["event"] === "peer:connect" && l["peerId"] === b.peerId).length
        yield* a.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === b.peerId)
        expect(yield* stop(b1)).toEqual({ code: 0, signal: null })
        yield* a.awaitLine((l) => l["event"] === "peer:disconnect" && l["peerId"] === b.peerId)
        // b comes back at the same address with the same identity: a dials it again by itself
        const b2 = yield* spawnCli([
          "node",
          "--listen",
          `/ip4/127.0.0.1/tcp/${portOf(b.addrs[0]!)}`,
          "--identity",
          identity,
          "--json"
        ])
        expect((yield* listening(b2)).peerId).toBe(b.peerId)
        yield* Effect.suspend(() => connects() >= 2 ? Effect.void : Effect.fail("not yet")).pipe(
          Effect.retry(Schedule.spaced("100 millis")),
          Effect.timeoutOrElse({
            duration: "30 seconds",
            orElse: () => Effect.die(new Error(`a did not redial b: ${JSON.stringify(a.lines)}`))
          })
        )
        expect(yield* stop(b2)).toEqual({ code: 0, signal: null })
        expect(yield* stop(a)).toEqual({ code: 0, signal: null })
        expect(a.bad).toEqual([])
      }),
    90_000
  )
})
