/**
 * The node's data directory and config file (docs/CLI.md, ARCHITECTURE.md §7):
 * a restart keeps the peer id and the peers, and redials them (inbound ones at
 * their identify listen addresses) within 10 s of `listening`; `--print-config`;
 * config errors name the file and the key; one node per directory (a lock);
 * a corrupt or foreign datastore and an unusable directory are refused and
 * left as they are; `kill -9` loses no peer that was written.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { DatabaseSync } from "node:sqlite"
import { type Cli, runCli, spawnCli, stop } from "./support.ts"

const LISTEN = ["--listen", "/ip4/127.0.0.1/tcp/0"]

/** A fresh directory for the test (removed after it); the data dir is `<it>/node`, created by the node. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-libp2p-datadir-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const listening = (cli: Cli) =>
  Effect.map(cli.awaitLine((l) => l["event"] === "listening"), (l) => ({
    peerId: String(l["peerId"]),
    addrs: l["addrs"] as ReadonlyArray<string>,
    at: performance.now()
  }))

/** A node that keeps nothing, for the persistent node to learn. */
const ephemeral = (extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const cli = yield* spawnCli(["node", "--ephemeral", ...LISTEN, ...extra, "--json"])
    const l = yield* listening(cli)
    return { cli, ...l, addr: l.addrs[0]! } // listening addresses end in /p2p/<peer id>
  })

const errorOf = (line: Record<string, unknown> | undefined) => (line?.["error"] ?? {}) as Record<string, unknown>

const bytesOf = (file: string) => Fs.readFileSync(file).toString("hex")

describe("cli: the data directory", () => {
  it.live(
    "§7 a restart keeps the peer id and the peers, and redials them within 10 s of listening (inbound ones at their identify listen addresses)",
    () =>
      Effect.gen(function*() {
        const dir = Path.join(yield* tempDir, "node")
        const out = yield* ephemeral() // dialed by the node
        const a = yield* spawnCli(["node", "--data-dir", dir, ...LISTEN, "--dial", out.addr, "--json"])
        const first = yield* listening(a)
        const inb = yield* ephemeral(["--dial", first.addrs[0]!]) // dials the node
        yield* a.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === out.peerId)
        yield* a.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === inb.peerId)
        expect(yield* stop(a)).toEqual({ code: 0, signal: null })
        expect(Fs.statSync(Path.join(dir, "identity.key")).mode & 0o777).toBe(0o600)

        const again = yield* spawnCli(["node", "--data-dir", dir, ...LISTEN, "--json"])
        const second = yield* listening(again)
        expect(second.peerId).toBe(first.peerId)
        const reconnecting = yield* again.awaitLine((l) => l["event"] === "reconnecting")
        expect(reconnecting["peerIds"]).toEqual(expect.arrayContaining([out.peerId, inb.peerId]))
        for (const peer of [out.peerId, inb.peerId]) {
          yield* again.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === peer, "10 seconds")
        }
        expect(performance.now() - second.at).toBeLessThan(10_000)
        expect(yield* stop(again)).toEqual({ code: 0, signal: null })

        // --reconnect 0: no redial
        const quiet = yield* spawnCli(["node", "--data-dir", dir, ...LISTEN, "--reconnect", "0", "--json"])
        yield* listening(quiet)
        expect(yield* stop(quiet)).toEqual({ code: 0, signal: null })
        expect(quiet.lines.some((l) => l["event"] === "reconnecting")).toBe(false)
        expect([...again.bad, ...quiet.bad]).toEqual([])
      }),
    120_000
  )

  it.live(
    "§7 kill -9 of the node loses no peer it had written: the restarted node still knows them",
    () =>
      Effect.gen(function*() {
        const dir = Path.join(yield* tempDir, "node")
        const peers = yield* Effect.all([ephemeral(), ephemeral(), ephemeral()], { concurrency: "unbounded" })
        const a = yield* spawnCli([
          "node",
          "--data-dir",
          dir,
          ...LISTEN,
          ...peers.flatMap((p) => ["--dial", p.addr]),
          "--json"
        ])
        yield* listening(a)
        for (const p of peers) yield* a.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === p.peerId)
        // the writer commits within milliseconds; then the process dies without any finalizer
        yield* Effect.sleep("1 second")
        yield* a.signal("SIGKILL")
        expect((yield* a.exit).signal).toBe("SIGKILL")
        const again = yield* spawnCli(["node", "--data-dir", dir, ...LISTEN, "--json"])
        yield* listening(again)
        const reconnecting = yield* again.awaitLine((l) => l["event"] === "reconnecting")
        expect(reconnecting["peerIds"]).toEqual(expect.arrayContaining(peers.map((p) => p.peerId)))
        expect(yield* stop(again)).toEqual({ code: 0, signal: null })
      }),
    120_000
  )

  it.live(
    "§7 no --data-dir (and npm start with no command): $XDG_DATA_HOME/effect-libp2p, else $HOME/.local/share/effect-libp2p",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir
        const xdg = yield* spawnCli(["node", ...LISTEN, "--json"], { env: { XDG_DATA_HOME: root } })
        const first = yield* listening(xdg)
        expect(yield* stop(xdg)).toEqual({ code: 0, signal: null })
        expect(Fs.existsSync(Path.join(root, "effect-libp2p", "identity.key"))).toBe(true)
        const home = yield* spawnCli(["node", ...LISTEN, "--json"], { env: { XDG_DATA_HOME: "", HOME: root } })
        const second = yield* listening(home)
        expect(yield* stop(home)).toEqual({ code: 0, signal: null })
        expect(Fs.existsSync(Path.join(root, ".local", "share", "effect-libp2p", "datastore.sqlite"))).toBe(true)
        expect(second.peerId).not.toBe(first.peerId)
        // npm start with no command is `node` with its defaults: the same directory, the same peer id
        const start = yield* spawnCli(["--json"], { env: { XDG_DATA_HOME: root } })
        expect((yield* listening(start)).peerId).toBe(first.peerId)
        expect(yield* stop(start)).toEqual({ code: 0, signal: null })
        // --ephemeral writes nothing
        const eph = yield* runCli(["node", "--ephemeral", "--print-config", "--json"], "40 seconds", {
          env: { XDG_DATA_HOME: Path.join(root, "unused") }
        })
        expect(eph.exit.code).toBe(0)
        expect(eph.lines[0]?.["dataDir"]).toBe(null)
        expect(Fs.existsSync(Path.join(root, "unused"))).toBe(false)
      }),
    120_000
  )

  it.live(
    "§7 --print-config: defaults, then config.json, then flags; prints JSON and exits 0 without opening the store",
    () =>
      Effect.gen(function*() {
        const dir = Path.join(yield* tempDir, "node")
        Fs.mkdirSync(dir)
        Fs.writeFileSync(
          Path.join(dir, "config.json"),
          JSON.stringify({
            listen: ["/ip4/127.0.0.1/tcp/4555"],
            bootstrap: ["/ip4/127.0.0.1/tcp/4556/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"],
            security: ["tls", "noise"],
            connectionManager: { maxConnections: 50, lowWater: 10 },
            reconnect: 3,
            dht: { anything: true }
          })
        )
        const r = yield* runCli([
          "node",
          "--data-dir",
          dir,
          "--print-config",
          "--max-connections",
          "7",
          "--muxer",
          "mplex"
        ])
        expect(r.exit.code).toBe(0)
        expect(r.lines).toHaveLength(1)
        const c = r.lines[0]!
        expect(c["dataDir"]).toBe(dir)
        expect(c["identity"]).toBe(Path.join(dir, "identity.key"))
        expect(c["listen"]).toEqual(["/ip4/127.0.0.1/tcp/4555"])
        expect(c["bootstrap"]).toHaveLength(1)
        const flagged = yield* runCli([
          "node",
          "--data-dir",
          dir,
          "--print-config",
          "--bootstrap",
          "/ip4/127.0.0.1/tcp/1"
        ])
        expect(flagged.lines[0]?.["bootstrap"]).toEqual(["/ip4/127.0.0.1/tcp/1"])
        expect(c["security"]).toEqual(["tls", "noise"])
        expect(c["muxers"]).toEqual(["mplex"])
        expect(c["connectionManager"]).toEqual({ maxConnections: 7, lowWater: 10 })
        expect(c["reconnect"]).toBe(3)
        expect(c["dht"]).toEqual({ anything: true })
        expect(Fs.readdirSync(dir)).toEqual(["config.json"])
      }),
    60_000
  )

  it.live(
    "§7 config.json that is not JSON, has an unknown key or a bad value: ConfigError naming the file and key, exit 1, file unchanged",
    () =>
      Effect.gen(function*() {
        const base = yield* tempDir
        const cases: ReadonlyArray<readonly [string, RegExp]> = [
          ["{ listen: [", /is not JSON/],
          [JSON.stringify({ listne: [] }), /unknown key "listne"/],
          [JSON.stringify({ listen: "/ip4/1.2.3.4/tcp/1" }), /listen: expected array/i],
          [
            JSON.stringify({ connectionManager: { maxConnections: -1 } }),
            /connectionManager\.maxConnections: expected .*>= 0|greater than or equal to 0/
          ],
          [JSON.stringify({ security: ["ssl"] }), /security\[0\]: expected "noise" \| "tls"/],
          [JSON.stringify({ bootstrap: ["not-a-multiaddr"] }), /bootstrap\[0\]: expected a multiaddr/],
          [
            JSON.stringify({ connectionManager: { gracePeriod: "soon" } }),
            /connectionManager\.gracePeriod: expected a duration/
          ]
        ]
        let i = 0
        for (const [text, pattern] of cases) {
          const dir = Path.join(base, `n${i++}`)
          Fs.mkdirSync(dir)
          const file = Path.join(dir, "config.json")
          Fs.writeFileSync(file, text)
          for (const extra of [[], ["--print-config"]]) {
            const r = yield* runCli(["node", "--data-dir", dir, ...LISTEN, ...extra, "--json"])
            expect(r.exit.code).toBe(1)
            const e = errorOf(r.lines.find((l) => l["event"] === "error"))
            expect(e["_tag"]).toBe("ConfigError")
            expect(String(e["message"])).toContain(file)
            expect(String(e["message"])).toMatch(pattern)
            expect(Fs.readFileSync(file, "utf8")).toBe(text)
          }
        }
      }),
    120_000
  )

  it.live(
    "§7 two nodes on one data directory: the second refuses (DataDirError Locked, exit 1), the first runs on",
    () =>
      Effect.gen(function*() {
        const dir = Path.join(yield* tempDir, "node")
        const a = yield* spawnCli(["node", "--data-dir", dir, ...LISTEN, "--json"])
        yield* listening(a)
        const b = yield* runCli(["node", "--data-dir", dir, ...LISTEN, "--json"])
        expect(b.exit.code).toBe(1)
        const e = errorOf(b.lines.find((l) => l["event"] === "error"))
        expect(e["_tag"]).toBe("DataDirError")
        expect(e["reason"]).toBe("Locked")
        expect(String(e["message"])).toContain(dir)
        expect(String(e["message"])).toMatch(/in use by another node/)
        expect(b.lines.some((l) => l["event"] === "listening")).toBe(false)
        expect(yield* stop(a)).toEqual({ code: 0, signal: null })
      }),
    60_000
  )

  it.live(
    "§7 a corrupt or foreign datastore.sqlite, a data dir that is a file: DataDirError naming it, exit 1, left as it is",
    () =>
      Effect.gen(function*() {
        const base = yield* tempDir
        const corrupt = Path.join(base, "corrupt")
        Fs.mkdirSync(corrupt)
        Fs.writeFileSync(
          Path.join(corrupt, "datastore.sqlite"),
          "this is not a database, but it is long enough ".repeat(40)
        )
        const foreign = Path.join(base, "foreign")
        Fs.mkdirSync(foreign)
        const db = new DatabaseSync(Path.join(foreign, "datastore.sqlite"))
        db.exec("CREATE TABLE mail (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO mail (body) VALUES ('hello')")
        db.close()
        const file = Path.join(base, "a-file")
        Fs.writeFileSync(file, "not a directory")
        const cases: ReadonlyArray<readonly [string, string, string]> = [
          [corrupt, "Corrupt", Path.join(corrupt, "datastore.sqlite")],
          [foreign, "Foreign", Path.join(foreign, "datastore.sqlite")],
          [file, "Unusable", file]
        ]
        for (const [dir, reason, named] of cases) {
          const before = bytesOf(named)
          const r = yield* runCli(["node", "--data-dir", dir, ...LISTEN, "--json"])
          expect(r.exit.code).toBe(1)
          const e = errorOf(r.lines.find((l) => l["event"] === "error"))
          expect(e["_tag"]).toBe("DataDirError")
          expect(e["reason"]).toBe(reason)
          expect(String(e["message"])).toContain(named)
          expect(bytesOf(named)).toBe(before)
          if (dir !== file) expect(Fs.existsSync(Path.join(dir, "identity.key"))).toBe(false)
        }
      }),
    90_000
  )

  it.live(
    "§7 --ephemeral and --data-dir together: a usage error (exit 2)",
    () =>
      Effect.gen(function*() {
        const r = yield* runCli(["node", "--ephemeral", "--data-dir", "/tmp/x", "--json"])
        expect(r.exit.code).toBe(2)
        expect(errorOf(r.lines.find((l) => l["event"] === "error"))["_tag"]).toBe("UsageError")
      }),
    60_000
  )
})
