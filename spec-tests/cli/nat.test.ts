/**
 * The command line through real NATs (ARCHITECTURE.md §7, issue 17): on the
 * network-namespace test network of `support/netns.ts` (an "internet" on the
 * documentation range 203.0.113.0/24, hence `--public-cidr`), `node`
 * processes run inside the namespaces.
 * - Hole punching: a public `node --relay` and two NATed `node --relay-reserve`;
 *   A `--dial`s B's circuit address, B (which received the relayed
 *   connection) runs DCUtR and prints `hole-punch` with outcome `success`;
 *   both print `connection:open` with `direct` false (relayed) and then true.
 * - AutoNAT v2: three public `node --autonat` (one of them the relay) and two
 *   NATed ones; the NATed ones print `reachability` `private`, the relay `public`.
 * Needs Linux, root, `ip` and `nft`: skipped elsewhere, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll } from "vitest"
import * as Netns from "../support/netns.ts"
import { COMMON, event, listen, RELAY_PORT, relayAndB, start } from "./natNodes.ts"
import { type Cli, type Line, runCli, spawnCli } from "./support.ts"

const unavailable = Netns.unavailable()

describe("CLI: --public-cidr", () => {
  it.live("§7 --public-cidr that is not a CIDR is a usage error (exit 2)", () =>
    Effect.gen(function*() {
      const run = yield* runCli(["node", "--public-cidr", "203.0.113.0/33", ...listen(0), "--ephemeral", "--json"])
      expect(run.exit.code).toBe(2)
      expect(run.lines[0]?.["error"]).toMatchObject({ _tag: "UsageError" })
    }), 60_000)
})

describe.skipIf(unavailable !== undefined)(
  `CLI through NATs${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupStale())

    it.live(
      "§7 hole punching (DCUtR §The Protocol): two NATed `node --relay-reserve` get a direct connection, printed as hole-punch and connection:open direct",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({})
          const { relay, relayAddr, b } = yield* relayAndB(net)
          const circuitB = `${relayAddr}/p2p-circuit/p2p/${b.peerId}`
          const a = yield* start(net.a.host.ns, 4001, ["--relay-reserve", relayAddr, "--dial", circuitB])
          const fromA = (l: Line) => l["peerId"] === a.peerId
          const punch = yield* b.cli.awaitLine(event("hole-punch", fromA), "90 seconds")
          expect(punch).toMatchObject({ outcome: "success", addr: `/ip4/${net.a.publicIp}/tcp/4001` })
          expect(punch["attempts"]).toBeGreaterThanOrEqual(1)
          // B: the relayed connection came in first, then the direct one
          const relayed = yield* b.cli.awaitLine(event("connection:open", (l) => fromA(l) && l["direct"] === false))
          expect(relayed).toMatchObject({ direction: "inbound", addr: `${relayAddr}/p2p-circuit/p2p/${a.peerId}` })
          yield* b.cli.awaitLine(event("connection:open", (l) => fromA(l) && l["direct"] === true))
          // A: its relayed dial, then the direct connection to B's NAT
          yield* a.cli.awaitLine(event("connection:open", (l) => l["peerId"] === b.peerId && l["direct"] === false))
          const direct = yield* a.cli.awaitLine(
            event("connection:open", (l) => l["peerId"] === b.peerId && l["direct"] === true),
            "30 seconds"
          )
          expect(direct["addr"]).toBe(`/ip4/${net.b.publicIp}/tcp/4002`)
          // only the side that received the relayed connection reports the series
          expect(a.cli.lines.filter(event("hole-punch"))).toEqual([])
          for (const cli of [relay.cli, a.cli, b.cli]) expect(cli.bad).toEqual([])
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "§7 hole punching (DCUtR §The Protocol step 6): behind symmetric-like NATs the series fails once, within 30 s, and the relayed connection stays",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({ a: "symmetric", b: "symmetric" })
          const { relay, relayAddr, b } = yield* relayAndB(net)
          const a = yield* start(net.a.host.ns, 4001, ["--dial", `${relayAddr}/p2p-circuit/p2p/${b.peerId}`])
          const fromA = (l: Line) => l["peerId"] === a.peerId
          const opened = yield* b.cli.awaitLine(event("connection:open", fromA), "60 seconds")
          expect(opened["direct"]).toBe(false)
          // §7: a failure within 30 s of the relayed connection (a margin for a loaded machine)
          const punch = yield* b.cli.awaitLine(event("hole-punch", fromA), "60 seconds")
          expect(punch).toMatchObject({ outcome: "failure", addr: null, attempts: 3 })
          expect(punch["error"]).toMatchObject({ _tag: "DcutrError", reason: "DialFailed" })
          expect(b.cli.lines.filter(event("connection:open", (l) => fromA(l) && l["direct"] === true))).toEqual([])
          expect(b.cli.lines.filter(event("connection:close", fromA))).toEqual([])
          for (const cli of [relay.cli, a.cli, b.cli]) expect(cli.bad).toEqual([])
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "§7 reachability (autonat-v2 §Protocol): NATed `node --autonat` are private, the public relay is public",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({})
          // four public hosts on four addresses: an observed address is trusted (so checked) once 4
          // observers (distinct IPv4 addresses) reported it; the relay is the first
          const base = net.pub.ip.split(".").slice(0, 3).join(".")
          const ips = [10, 11, 12, 13].map((n) => `${base}.${n}`)
          for (const ip of ips.slice(1)) Netns.exec(net.pub.ns, "ip", ["addr", "add", `${ip}/24`, "dev", "elp-eth0"])
          const at = (ip: string, port: number) => ["--listen", `/ip4/${ip}/tcp/${port}`]
          const spawnAt = (ip: string, args: ReadonlyArray<string>) =>
            Effect.gen(function*() {
              const cli = yield* spawnCli(["node", ...at(ip, RELAY_PORT), ...COMMON, "--autonat", ...args], {
                netns: net.pub.ns
              })
              const up = yield* cli.awaitLine(event("listening"), "60 seconds")
              return { cli, addr: `/ip4/${ip}/tcp/${RELAY_PORT}/p2p/${up["peerId"] as string}` }
            })
          const others: Array<{ readonly cli: Cli; readonly addr: string }> = []
          for (const ip of ips.slice(1)) others.push(yield* spawnAt(ip, []))
          // the relay connects to the three others: they are its AutoNAT servers
          const relay = yield* spawnAt(ips[0]!, ["--relay", ...others.flatMap((s) => ["--bootstrap", s.addr])])
          const servers = [relay, ...others]
          const bootstrap = servers.flatMap((s) => ["--bootstrap", s.addr])
          const a = yield* start(net.a.host.ns, 4001, ["--autonat", "--relay-reserve", relay.addr, ...bootstrap])
          const b = yield* start(net.b.host.ns, 4002, ["--autonat", "--relay-reserve", relay.addr, ...bootstrap])
          for (const [site, node, port] of [[net.a, a, 4001], [net.b, b, 4002]] as const) {
            const verdict = yield* node.cli.awaitLine(
              event("reachability", (l) => l["reachability"] !== "unknown"),
              "120 seconds"
            )
            expect(verdict["reachability"]).toBe("private")
            expect(verdict["addrs"]).toContain(`/ip4/${site.publicIp}/tcp/${port}`)
          }
          const pub = yield* relay.cli.awaitLine(
            event("reachability", (l) => l["reachability"] !== "unknown"),
            "120 seconds"
          )
          expect(pub["reachability"]).toBe("public")
          expect(pub["addrs"]).toContain(`/ip4/${ips[0]!}/tcp/${RELAY_PORT}`)
          for (const cli of [...servers.map((s) => s.cli), a.cli, b.cli]) expect(cli.bad).toEqual([])
        }).pipe(Effect.scoped),
      300_000
    )
  }
)
