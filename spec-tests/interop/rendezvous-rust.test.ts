/**
 * Rendezvous interop with rust-libp2p 0.57 (`libp2p-rendezvous` 0.18; js-libp2p ships no
 * rendezvous, and go-libp2p-rendezvous is not served by the Go module proxy here): the peer in
 * spec-tests/interop/rust-rendezvous (TCP + Noise + Yamux), built with cargo on first use, in its
 * own process, both directions (rendezvous spec §Interaction):
 * - a rust point: our node registers (rust's server verifies our signed peer record and our
 *   answer to its TTL), a rust client registers, each discovers the other there;
 * - our point: a rust client registers (we verify its record), discovers us there, and parses
 *   our cookies (rust-libp2p refuses a DISCOVER_RESPONSE whose cookie is not its shape); we
 *   discover it.
 *
 * Opt-in: the first build downloads the crates and compiles rust-libp2p, 13.5 min on the 2-core
 * development machine, more than the whole rest of `npm test`. So it runs with `RUST_INTEROP=1`, or
 * when the peer was built before on this machine (then cargo only checks it is up to date);
 * otherwise, and when cargo is not installed, it is skipped with a notice on stderr.
 * `RUST_RDV_TARGET` moves the target directory.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Result } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Rendezvous from "../../src/protocols/rendezvous/Rendezvous.ts"
import { spawnCli } from "../cli/support.ts"
import { ma } from "../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../support/node.ts"
import * as Process from "../support/process.ts"

const DIR = fileURLToPath(new URL("./rust-rendezvous/", import.meta.url))
const TARGET = process.env["RUST_RDV_TARGET"] ?? Path.join(Os.tmpdir(), "effect-libp2p-rust-rendezvous-target")
const BINARY = Path.join(TARGET, "debug", "rust-rendezvous-peer")

const cargo = (() => {
  const r = ChildProcess.spawnSync("cargo", ["--version"], { encoding: "utf8" })
  return r.status === 0 ? r.stdout.trim() : undefined
})()
const enabled = process.env["RUST_INTEROP"] === "1" || Fs.existsSync(BINARY)
if (cargo === undefined) {
  process.stderr.write("[rust interop] SKIPPED: cargo is not installed (spec-tests/interop/rendezvous-rust.test.ts)\n")
} else if (!enabled) {
  process.stderr.write(
    "[rust interop] SKIPPED: set RUST_INTEROP=1 to build the rust-libp2p rendezvous peer and run its tests (first build ~14 min on 2 cores)\n"
  )
}

const build = Process.runOk("cargo", ["build", "--locked", "-j", "2"], {
  cwd: DIR,
  env: { CARGO_TARGET_DIR: TARGET },
  timeout: "20 minutes"
})

type Line = Record<string, unknown>

/** The rust peer with `args`; its JSON lines and a wait for one. */
const rustPeer = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const p = yield* Process.spawn(BINARY, args, { cwd: DIR })
    const lines = () => p.stdout().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Line)
    const awaitLine = (predicate: (l: Line) => boolean, timeout = "60 seconds") =>
      Effect.gen(function*() {
        for (let waited = 0;; waited += 100) {
          const found = lines().find(predicate)
          if (found !== undefined) return found
          if (waited > 60_000) {
            return yield* Effect.die(
              new Error(`rust peer: no such line in ${timeout}; stdout:\n${p.stdout()}\nstderr:\n${p.stderr()}`)
            )
          }
          yield* Effect.sleep("100 millis")
        }
      })
    const ready = yield* awaitLine((l) => l["event"] === "ready")
    return { p, lines, awaitLine, peerId: ready["peerId"] as string, addr: (ready["addrs"] as Array<string>)[0]! }
  })

/** Our TCP node with the rendezvous client (and the point with `server`). */
const ourNode = (server: boolean, options: Rendezvous.RendezvousOptions = {}) =>
  Effect.gen(function*() {
    const base = Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] })
    const client = Rendezvous.layer(options).pipe(Layer.provideMerge(base))
    const layer = server ? Layer.provideMerge(Rendezvous.layerServer(), client) : client
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return {
      ...servicesOf(ctx as unknown as Context.Context<NodeServices>),
      rdv: Context.get(ctx as unknown as Context.Context<Rendezvous.Rendezvous>, Rendezvous.Rendezvous)
    }
  })

/** Our discover of `ns` at `point` until it holds `peer` (the rust client registers on its own time). */
const discoverUntil = (rdv: Rendezvous.Rendezvous["Service"], point: PeerId.PeerId, ns: string, peer: string) =>
  Effect.gen(function*() {
    for (let i = 0;; i++) {
      const r = yield* rdv.discover(point, { namespace: ns })
      const found = r.registrations.find((x) => x.peerId.toString() === peer)
      if (found !== undefined || i >= 100) return { found, cookie: r.cookie }
      yield* Effect.sleep("200 millis")
    }
  })

const peerIdOf = (text: string) => Result.getOrThrow(PeerId.fromString(text))

describe.skipIf(cargo === undefined || !enabled)("rendezvous interop with rust-libp2p", () => {
  it.live(
    "rendezvous §Interaction: a rust point; we and a rust client register and discover each other",
    () =>
      Effect.gen(function*() {
        yield* build
        const point = yield* rustPeer(["server"])
        // rust-libp2p's point takes only its own envelope format (records.ts)
        const us = yield* ourNode(false, { recordFormat: "routing-state" })
        yield* us.host.dial(ma(point.addr))
        const pointId = peerIdOf(point.peerId)
        const ttl = yield* us.rdv.register(pointId, "interop")
        expect(ttl).toBeDefined()
        const registered = yield* point.awaitLine((l) =>
          l["event"] === "peer:registered" && l["peerId"] === us.host.peerId.toString()
        )
        expect(registered).toMatchObject({ namespace: "interop", ttl: 7200 })

        const client = yield* rustPeer(["client", point.addr, "interop"])
        yield* client.awaitLine((l) => l["event"] === "registered")
        // the rust client discovers us: rust's server served our signed record
        const seen = yield* client.awaitLine((l) =>
          l["event"] === "discovered" &&
          (l["registrations"] as Array<Line>).some((r) => r["peerId"] === us.host.peerId.toString())
        )
        const mine = (seen["registrations"] as Array<Line>).find((r) => r["peerId"] === us.host.peerId.toString())!
        expect(mine["addrs"]).toEqual(us.host.addrs().map((a) => String(a).replace(/\/p2p\/.*$/, "")))
        // we discover the rust client, and page on with rust's cookie
        const { found, cookie } = yield* discoverUntil(us.rdv, pointId, "interop", client.peerId)
        expect(found?.addrs.map(String)).toEqual([client.addr.replace(/\/p2p\/.*$/, "")])
        const next = yield* us.rdv.discover(pointId, { namespace: "interop", cookie })
        expect(next.registrations.filter((r) => r.peerId.toString() === client.peerId)).toEqual([])
        yield* us.rdv.unregister(pointId, "interop")
      }).pipe(Effect.scoped),
    25 * 60_000
  )

  it.live(
    "rendezvous §Interaction: our point; a rust client registers, discovers us with our cookies, we discover it",
    () =>
      Effect.gen(function*() {
        yield* build
        const point = yield* ourNode(true)
        // rust-libp2p's client fails a whole DISCOVER_RESPONSE that holds one record in the
        // libp2p-peer-record format (records.ts), so here every registration is in rust's
        const us = yield* ourNode(false, { recordFormat: "routing-state" })
        yield* us.host.dial(point.addr)
        yield* us.rdv.register(point.host.peerId, "ours")
        const client = yield* rustPeer(["client", Multiaddr.toString(point.addr), "ours"])
        const registered = yield* client.awaitLine((l) => l["event"] === "registered")
        expect(registered).toMatchObject({ namespace: "ours", ttl: 7200 })
        // rust parsed our DISCOVER_RESPONSE, its records and our cookie, and pages on with it
        const seen = yield* client.awaitLine((l) =>
          l["event"] === "discovered" &&
          (l["registrations"] as Array<Line>).some((r) => r["peerId"] === us.host.peerId.toString())
        )
        expect(seen["cookieLength"]).toBe(40)
        yield* client.awaitLine((l) => l["event"] === "discovered" && (l["registrations"] as Array<Line>).length === 0)
        expect(client.lines().filter((l) => l["event"] === "error")).toEqual([])
        const { found } = yield* discoverUntil(us.rdv, point.host.peerId, "ours", client.peerId)
        expect(found?.addrs.map(String)).toEqual([client.addr.replace(/\/p2p\/.*$/, "")])
      }).pipe(Effect.scoped),
    25 * 60_000
  )

  it.live(
    "rendezvous on the command line: `node --rendezvous <rust point> --rendezvous-record-format routing-state`",
    () =>
      Effect.gen(function*() {
        yield* build
        const point = yield* rustPeer(["server"])
        const client = yield* rustPeer(["client", point.addr, "cli"])
        yield* client.awaitLine((l) => l["event"] === "registered")
        const cli = yield* spawnCli([
          "node",
          "--ephemeral",
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--rendezvous",
          point.addr,
          "--namespace",
          "cli",
          "--rendezvous-record-format",
          "routing-state",
          "--json"
        ])
        const listening = yield* cli.awaitLine((l) => l["event"] === "listening")
        expect(yield* cli.awaitLine((l) => l["event"] === "rendezvous:registered"))
          .toMatchObject({ server: point.peerId, namespace: "cli", ttl: 7200 })
        expect(yield* cli.awaitLine((l) => l["event"] === "peer:discovery" && l["peerId"] === client.peerId))
          .toMatchObject({ source: "rendezvous", addrs: [client.addr.replace(/\/p2p\/.*$/, "")] })
        yield* cli.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === client.peerId)
        yield* client.awaitLine((l) =>
          l["event"] === "discovered" &&
          (l["registrations"] as Array<Line>).some((r) => r["peerId"] === listening["peerId"])
        )
      }).pipe(Effect.scoped),
    25 * 60_000
  )
})
