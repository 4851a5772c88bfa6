/**
 * `perf <circuit address>` through real NATs (ARCHITECTURE.md §7): on the
 * network-namespace test network of `support/netns.ts` (namespaces `pc…`),
 * a public `node --relay`, a `node --relay-reserve` behind NAT b, and `perf`
 * to B's circuit address from the host behind NAT a. `perf` dials through
 * the relay; B, which received the relayed connection, starts DCUtR and
 * `perf` answers as `A`.
 * - Endpoint-independent NATs: the hole punch makes a direct connection and
 *   perf runs over it: the result line has `direct` true and `addr` on NAT
 *   b's public side, and the usual byte counts.
 * - Symmetric-like NATs: no direct connection within 15 s, so `perf` fails
 *   with `NoDirectConnection` (exit 1).
 * Needs Linux, root, `ip` and `nft`: skipped elsewhere, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { afterAll } from "vitest"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Netns from "../support/netns.ts"
import { B_PORT, event, listen, NAT_FLAGS, relayAndB } from "./natNodes.ts"
import { type Line, runCli, spawnCli, stop } from "./support.ts"

const unavailable = Netns.unavailable()
const PREFIX = "pc"
const A_PORT = 4001
const UP = 1024 * 1024
const DOWN = 2 * 1024 * 1024 + 17

/** The relay, B behind NAT b with a reservation on it, and B's circuit address. */
const relayAndCircuit = (net: Netns.NatTopology) =>
  Effect.map(relayAndB(net), (r) => ({ ...r, circuit: `${r.relayAddr}/p2p-circuit/p2p/${r.b.peerId}` }))

/** `perf` from the host behind NAT a to `circuit`. */
const perfFromA = (net: Netns.NatTopology, circuit: string) =>
  spawnCli([
    "perf",
    circuit,
    "--upload-bytes",
    String(UP),
    "--download-bytes",
    String(DOWN),
    ...listen(A_PORT),
    ...NAT_FLAGS
  ], { netns: net.a.host.ns })

/** A `node` on loopback with `args`; its first address (with /p2p) and peer id. */
const loopbackNode = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const cli = yield* spawnCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--ephemeral", "--json", ...args])
    const up = yield* cli.awaitLine(event("listening"), "60 seconds")
    return { cli, addr: (up["addrs"] as Array<string>)[0]!, peerId: up["peerId"] as string }
  })

describe("CLI perf: direct and circuit addresses without NATs", () => {
  it.live(
    "ARCHITECTURE §7 perf to a direct address: the usual result line, no direct/addr fields",
    () =>
      Effect.gen(function*() {
        const server = yield* loopbackNode([])
        const run = yield* runCli(["perf", server.addr, "--upload-bytes", "1000", "--download-bytes", "2000", "--json"])
        expect(run.exit.code, run.stderr).toBe(0)
        expect(run.lines).toHaveLength(1)
        expect(run.lines[0]).toMatchObject({ event: "perf", uploadBytes: 1000, downloadBytes: 2000 })
        expect(Object.keys(run.lines[0]!)).not.toContain("direct")
        expect(Object.keys(run.lines[0]!)).not.toContain("addr")
        expect(yield* stop(server.cli)).toEqual({ code: 0, signal: null })
      }).pipe(Effect.scoped),
    120_000
  )

  it.live(
    "ARCHITECTURE §7 perf <circuit address>: a bad --listen or --public-cidr is a usage error (exit 2)",
    () =>
      Effect.gen(function*() {
        const key = yield* Keys.generate("Ed25519")
        const peer = PeerId.toString(PeerId.fromPrivateKey(key))
        const circuit = `/ip4/127.0.0.1/tcp/1/p2p/${peer}/p2p-circuit/p2p/${peer}`
        for (const bad of [["--listen", "/ip4/1.2.3"], ["--public-cidr", "203.0.113.0/33"]]) {
          const run = yield* runCli(["perf", circuit, "--upload-bytes", "1", ...bad, "--json"])
          expect(run.exit.code, run.stderr).toBe(2)
          expect(run.lines[0]?.["error"]).toMatchObject({ _tag: "UsageError" })
        }
      }),
    120_000
  )

  it.live(
    "ARCHITECTURE §7 perf <circuit address> (DCUtR §The Protocol): on loopback no address is public, so no hole punch: NoDirectConnection (exit 1)",
    () =>
      Effect.gen(function*() {
        const relay = yield* loopbackNode(["--relay"])
        const b = yield* loopbackNode(["--relay-reserve", relay.addr])
        yield* b.cli.awaitLine(event("reservation"), "60 seconds")
        const perf = yield* spawnCli([
          "perf",
          `${relay.addr}/p2p-circuit/p2p/${b.peerId}`,
          "--upload-bytes",
          "1000",
          "--json"
        ])
        // B received the relayed connection: the wait is from there
        yield* b.cli.awaitLine(event("connection:open", (l) => l["direct"] === false), "60 seconds")
        const failed = yield* perf.awaitLine(event("error"), "90 seconds")
        expect(failed["error"]).toMatchObject({ _tag: "NoDirectConnection" })
        expect((yield* perf.exit).code).toBe(1)
        expect(perf.lines.filter(event("perf"))).toEqual([])
        expect(perf.bad).toEqual([])
      }).pipe(Effect.scoped),
    180_000
  )
})

describe.skipIf(unavailable !== undefined)(
  `CLI perf through NATs${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupOwn(PREFIX))

    it.live(
      "ARCHITECTURE §7 perf <circuit address> (DCUtR §The Protocol): runs over the hole-punched direct connection, direct:true with addr on NAT b",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({ prefix: PREFIX })
          const { relay, b, circuit } = yield* relayAndCircuit(net)
          const perf = yield* perfFromA(net, circuit)
          const result = yield* perf.awaitLine(event("perf"), "120 seconds")
          expect(result).toMatchObject({
            peerId: b.peerId,
            uploadBytes: UP,
            downloadBytes: DOWN,
            direct: true,
            addr: `/ip4/${net.b.publicIp}/tcp/${B_PORT}`
          })
          expect(result["seconds"]).toBeGreaterThan(0)
          expect((yield* perf.exit).code).toBe(0)
          // B counted the bytes on its direct connection from A: it answered the hole punch first
          const punch = yield* b.cli.awaitLine(event("hole-punch"), "30 seconds")
          expect(punch).toMatchObject({ outcome: "success", addr: `/ip4/${net.a.publicIp}/tcp/${A_PORT}` })
          expect(perf.lines.filter(event("error"))).toEqual([])
          for (const cli of [relay.cli, b.cli, perf]) expect(cli.bad).toEqual([])
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "ARCHITECTURE §7 perf <circuit address> (DCUtR §The Protocol step 6): behind symmetric-like NATs it fails with NoDirectConnection (exit 1)",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({ a: "symmetric", b: "symmetric", prefix: PREFIX })
          const { relay, b, circuit } = yield* relayAndCircuit(net)
          const perf = yield* perfFromA(net, circuit)
          // the relayed connection came (B saw it), then 15 s of waiting (a margin for a loaded machine)
          yield* b.cli.awaitLine(event("connection:open", (l) => l["direct"] === false), "60 seconds")
          const failed = yield* perf.awaitLine(event("error"), "90 seconds")
          expect(failed["error"]).toMatchObject({ _tag: "NoDirectConnection" })
          expect(String((failed["error"] as Line)["message"])).toContain(b.peerId)
          expect((yield* perf.exit).code).toBe(1)
          expect(perf.lines.filter(event("perf"))).toEqual([])
          for (const cli of [relay.cli, b.cli, perf]) expect(cli.bad).toEqual([])
        }).pipe(Effect.scoped),
      240_000
    )
  }
)
