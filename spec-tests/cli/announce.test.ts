/**
 * `node --announce`, `--no-announce` and `--autonat` (docs/CLI.md; issue 17
 * §Observed address handling), in a process of its own: the effective
 * configuration (flags over `config.json` keys `announce`, `noAnnounce`,
 * `autonat`), and what identify tells a peer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as AutoNat from "../../src/protocols/autonat/AutoNat.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import { runCli, spawnCli, stop } from "./support.ts"

describe("node --announce / --no-announce / --autonat", () => {
  it.live(
    "§7 --print-config: flags over the config.json keys announce, noAnnounce, autonat",
    () =>
      Effect.gen(function*() {
        const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-libp2p-announce-"))
        yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
        Fs.writeFileSync(
          Path.join(dir, "config.json"),
          JSON.stringify({
            announce: ["/dns4/example.com/tcp/4001"],
            noAnnounce: ["/ip4/10.0.0.1"],
            autonat: { allowPrivateAddrs: true }
          })
        )
        const fromFile = yield* runCli(["node", "--data-dir", dir, "--print-config"])
        expect(fromFile.exit.code).toBe(0)
        expect(fromFile.lines[0]?.["announce"]).toEqual(["/dns4/example.com/tcp/4001"])
        expect(fromFile.lines[0]?.["noAnnounce"]).toEqual(["/ip4/10.0.0.1"])
        expect(fromFile.lines[0]?.["autonat"]).toEqual({ allowPrivateAddrs: true, enabled: false })
        const flagged = yield* runCli([
          "node",
          "--data-dir",
          dir,
          "--print-config",
          "--announce",
          "/ip4/192.0.2.1/tcp/1",
          "--announce",
          "/ip4/192.0.2.2/tcp/2",
          "--no-announce",
          "/ip4/192.0.2.2",
          "--dht",
          "auto"
        ])
        expect(flagged.lines[0]?.["announce"]).toEqual(["/ip4/192.0.2.1/tcp/1", "/ip4/192.0.2.2/tcp/2"])
        expect(flagged.lines[0]?.["noAnnounce"]).toEqual(["/ip4/192.0.2.2"])
        expect(flagged.lines[0]?.["autonat"]).toEqual({ allowPrivateAddrs: true, enabled: true }) // --dht auto implies it
        const bad = yield* runCli(["node", "--ephemeral", "--announce", "not-a-multiaddr"])
        expect(bad.exit.code).toBe(2)
      }),
    120_000
  )

  it.live(
    "§7 a running node advertises the --announce addresses minus --no-announce, and serves AutoNAT with --autonat",
    () =>
      Effect.gen(function*() {
        const cli = yield* spawnCli([
          "node",
          "--ephemeral",
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--announce",
          "/ip4/192.0.2.1/tcp/4001",
          "--announce",
          "/ip4/192.0.2.9/tcp/4001",
          "--no-announce",
          "/ip4/192.0.2.9",
          "--autonat",
          "--json"
        ])
        const listening = yield* cli.awaitLine((l) => l["event"] === "listening")
        const addr = ma((listening["addrs"] as Array<string>)[0]!)
        const peer = yield* tcpNode()
        const result = yield* peer.identify.identify(yield* peer.host.dial(addr))
        expect(result.listenAddrs.map(Multiaddr.toString)).toEqual(["/ip4/192.0.2.1/tcp/4001"])
        expect(result.protocols).toContain(AutoNat.PROTOCOL)
        expect(result.protocols).toContain(AutoNat.DIAL_BACK_PROTOCOL)
        expect(result.protocols).toContain(AutoNat.V1_PROTOCOL)
        expect(yield* stop(cli)).toEqual({ code: 0, signal: null })
      }),
    120_000
  )
})
