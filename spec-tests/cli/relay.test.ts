/**
 * The command line's circuit relay v2 flags (ARCHITECTURE.md §7): `node --relay` serves as a
 * hop relay, `node --relay-reserve <relay>` reserves there and prints
 * `{"event":"reservation","relay":…,"addrs":[…/p2p-circuit/p2p/<self>],"expires":<unix s>}`,
 * and a third node's `--dial` of that circuit address connects through the relay
 * (`peer:connect` with the circuit address).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { runCli, spawnCli, stop } from "./support.ts"

const LISTEN = ["--listen", "/ip4/127.0.0.1/tcp/0", "--ephemeral", "--json"]

describe("CLI: circuit relay v2", () => {
  it.live(
    "§7 --relay, --relay-reserve: a reservation line, and a --dial through the relay",
    () =>
      Effect.gen(function*() {
        const relay = yield* spawnCli(["node", "--relay", ...LISTEN])
        const up = yield* relay.awaitLine((l) => l["event"] === "listening")
        const relayAddr = (up["addrs"] as ReadonlyArray<string>)[0]!
        const client = yield* spawnCli(["node", "--relay-reserve", relayAddr, ...LISTEN])
        const self = yield* client.awaitLine((l) => l["event"] === "listening")
        const reservation = yield* client.awaitLine((l) => l["event"] === "reservation", "40 seconds")
        expect(reservation["relay"]).toBe(up["peerId"])
        const addrs = reservation["addrs"] as ReadonlyArray<string>
        expect(addrs).toContain(`${relayAddr}/p2p-circuit/p2p/${self["peerId"] as string}`)
        const expires = reservation["expires"] as number
        expect(expires).toBeGreaterThan(Date.now() / 1000 + 3000)
        const dialer = yield* spawnCli(["node", "--dial", addrs[0]!, ...LISTEN])
        const connect = yield* dialer.awaitLine(
          (l) => l["event"] === "peer:connect" && l["peerId"] === self["peerId"],
          "40 seconds"
        )
        expect(connect["addr"]).toBe(addrs[0])
        for (const cli of [dialer, client, relay]) expect(yield* stop(cli)).toEqual({ code: 0, signal: null })
        expect(relay.bad).toEqual([])
        expect(client.bad).toEqual([])
      }),
    120_000
  )

  it.live("§7 --relay-reserve without /p2p/<relay> is a usage error (exit 2)", () =>
    Effect.gen(function*() {
      const run = yield* runCli(["node", "--relay-reserve", "/ip4/127.0.0.1/tcp/1", ...LISTEN])
      expect(run.exit.code).toBe(2)
      expect(run.lines[0]?.["error"]).toMatchObject({ _tag: "UsageError" })
    }), 60_000)
})
