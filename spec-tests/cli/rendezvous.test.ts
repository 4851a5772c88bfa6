/**
 * Rendezvous on the command line (ARCHITECTURE.md §7 "Discovery on node",
 * docs/CLI.md; libp2p specs rendezvous/README.md §Interaction), each node in
 * its own process: a `node --rendezvous-server`, and two nodes with
 * `--rendezvous <point> --namespace <ns>` that register (`rendezvous:registered`),
 * discover each other (`peer:discovery`, source `rendezvous`, once per peer)
 * and connect; a third in another namespace is not discovered; a point with
 * `--data-dir` restarted serves a registration made before (its SQLite file). Usage errors
 * for a point without a namespace, a namespace without a point, and a point
 * without /p2p.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { type Cli, runCli, spawnCli, stop } from "./support.ts"

const node = (extra: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const cli = yield* spawnCli(["node", "--ephemeral", "--listen", "/ip4/127.0.0.1/tcp/0", ...extra, "--json"])
    const listening = yield* cli.awaitLine((l) => l["event"] === "listening")
    return { cli, peerId: listening["peerId"] as string, addr: (listening["addrs"] as Array<string>)[0]! }
  })

const discovered = (cli: Cli, peerId: string) =>
  cli.awaitLine((l) => l["event"] === "peer:discovery" && l["peerId"] === peerId, "60 seconds")

describe("CLI rendezvous (ARCHITECTURE §7, docs/CLI.md)", () => {
  it.live(
    "rendezvous §Interaction: two nodes register at a --rendezvous-server, discover each other and connect; another namespace stays apart",
    () =>
      Effect.gen(function*() {
        const point = yield* node(["--rendezvous-server"])
        const a = yield* node(["--rendezvous", point.addr, "--namespace", "my-app"])
        const registered = yield* a.cli.awaitLine((l) => l["event"] === "rendezvous:registered")
        expect(registered).toMatchObject({ server: point.peerId, namespace: "my-app", ttl: 7200 })
        const c = yield* node(["--rendezvous", point.addr, "--namespace", "another-app"])
        yield* c.cli.awaitLine((l) => l["event"] === "rendezvous:registered")
        const b = yield* node(["--rendezvous", point.addr, "--namespace", "my-app"])
        yield* b.cli.awaitLine((l) => l["event"] === "rendezvous:registered")

        // b finds a in its first discover; a finds b at its next poll (within 10 s)
        const aOnB = yield* discovered(b.cli, a.peerId)
        expect(aOnB["source"]).toBe("rendezvous")
        expect(aOnB["addrs"]).toEqual([a.addr.replace(/\/p2p\/.*$/, "")])
        const bOnA = yield* discovered(a.cli, b.peerId)
        expect(bOnA["source"]).toBe("rendezvous")
        yield* b.cli.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === a.peerId)

        // a poll later: nothing printed twice, c (another namespace) never
        yield* Effect.sleep("11 seconds")
        for (const cli of [a.cli, b.cli]) {
          const lines = cli.lines.filter((l) => l["event"] === "peer:discovery")
          expect(lines.length).toBe(1)
          expect(lines.map((l) => l["peerId"])).not.toContain(c.peerId)
          expect(cli.bad).toEqual([])
        }
        expect(c.cli.lines.filter((l) => l["event"] === "peer:discovery")).toEqual([])
      }),
    120_000
  )

  it.live(
    "--rendezvous without --namespace, --namespace without --rendezvous, a point without /p2p: usage errors",
    () =>
      Effect.gen(function*() {
        const cases = [
          ["--rendezvous", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"],
          ["--namespace", "x"],
          ["--rendezvous", "/ip4/127.0.0.1/tcp/1", "--namespace", "x"]
        ]
        for (const args of cases) {
          const r = yield* runCli(["node", "--ephemeral", ...args, "--json"])
          expect(r.exit.code).toBe(2)
          expect(r.lines[0]).toMatchObject({ event: "error", error: { _tag: "UsageError" } })
        }
      }),
    120_000
  )

  it.live(
    "config.json's rendezvous section (server, points, namespaces) is read; flags replace it",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "rdv-cli-"))),
          (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
        )
        const point = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
        Fs.writeFileSync(
          Path.join(dir, "config.json"),
          JSON.stringify({ rendezvous: { server: true, points: [point], namespaces: ["a", "b"] } })
        )
        const r = yield* runCli(["node", "--data-dir", dir, "--print-config"])
        expect(r.exit.code).toBe(0)
        expect(r.lines[0]?.["rendezvous"]).toEqual({
          server: true,
          points: [point],
          namespaces: ["a", "b"],
          recordFormat: "peer-record"
        })
        const flagged = yield* runCli(["node", "--data-dir", dir, "--print-config", "--namespace", "c"])
        expect(flagged.lines[0]?.["rendezvous"]).toEqual({
          server: true,
          points: [point],
          namespaces: ["c"],
          recordFormat: "peer-record"
        })
        Fs.writeFileSync(Path.join(dir, "config.json"), JSON.stringify({ rendezvous: { points: ["not an address"] } }))
        const bad = yield* runCli(["node", "--data-dir", dir, "--json"])
        expect(bad.exit.code).toBe(1)
        expect(JSON.stringify(bad.lines[0])).toMatch(/rendezvous\.points\[0\]/)
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "rendezvous §Registration Lifetime: a --rendezvous-server with --data-dir keeps its registrations across a restart",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "rdv-point-"))),
          (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
        )
        const pointArgs = (listen: string) => [
          "node",
          "--data-dir",
          dir,
          "--listen",
          listen,
          "--rendezvous-server",
          "--reconnect",
          "0",
          "--json"
        ]
        const first = yield* spawnCli(pointArgs("/ip4/127.0.0.1/tcp/0"))
        const listening = yield* first.awaitLine((l) => l["event"] === "listening")
        const addr = (listening["addrs"] as Array<string>)[0]!
        const a = yield* node(["--rendezvous", addr, "--namespace", "kept"])
        yield* a.cli.awaitLine((l) => l["event"] === "rendezvous:registered")
        yield* stop(a.cli)
        expect(yield* stop(first)).toEqual({ code: 0, signal: null })

        // the same identity and address, read back from the data directory's SQLite file
        const second = yield* spawnCli(pointArgs(addr.replace(/\/p2p\/.*$/, "")))
        expect((yield* second.awaitLine((l) => l["event"] === "listening"))["peerId"]).toBe(listening["peerId"])
        const b = yield* node(["--rendezvous", addr, "--namespace", "kept"])
        const found = yield* discovered(b.cli, a.peerId)
        expect(found["addrs"]).toEqual([a.addr.replace(/\/p2p\/.*$/, "")])
      }).pipe(Effect.scoped),
    120_000
  )
})
