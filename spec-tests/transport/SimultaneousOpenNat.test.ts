/**
 * TCP simultaneous open through real NATs (issue 17; relay/DCUtR.md §The
 * Protocol step 5, "TCP Simultaneous Connect"), on the network-namespace test
 * network of `support/netns.ts`: two of our nodes, each behind its own
 * nftables NAT, dial each other's NAT address from their listening port
 * (`Tcp` `reusePort`, `Host.dialDirect` with `fromListenPort`), timed as DCUtR
 * times them (the responder of the protocol at once, the initiator RTT/2
 * later) but coordinated by the test instead of a relay. With
 * endpoint-independent NATs they get one direct connection, outbound on both
 * sides (a simultaneous open, so the roles are explicit); with symmetric-like
 * NATs (random ports) both dials fail with a typed error and nothing is left.
 * Needs Linux, root, `ip` and `nft`: skipped elsewhere, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Netns from "../support/netns.ts"

const unavailable = Netns.unavailable()
const script = Path.join(import.meta.dirname, "natPeer.ts")

const start = (ns: string, port: number) =>
  Effect.gen(function*() {
    const proc = yield* Netns.spawnNode(ns, script, [String(port)], { stdin: true })
    const ready = yield* proc.awaitOutput(/ready (\S+)/, "60 seconds")
    return { proc, id: ready[1]! }
  })

const lines = Netns.outputLines

describe.skipIf(unavailable !== undefined)(
  `TCP simultaneous open through NATs${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupStale())

    it.live(
      "DCUtR §The Protocol step 5: behind endpoint-independent NATs, both dial from their listening port → one direct connection",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire()
          const a = yield* start(net.a.host.ns, 4001)
          const b = yield* start(net.b.host.ns, 4002)
          // A dials on SYNC at once and is the security client; B dials RTT/2 later (here 150 ms) as the server
          yield* a.proc.write(`dial /ip4/${net.b.publicIp}/tcp/4002 ${b.id} initiator 0\n`)
          yield* b.proc.write(`dial /ip4/${net.a.publicIp}/tcp/4001 ${a.id} responder 150\n`)
          const ca = yield* a.proc.awaitOutput(/connected (\S+) (\S+)/, "60 seconds")
          const cb = yield* b.proc.awaitOutput(/connected (\S+) (\S+)/, "60 seconds")
          // each sees the other's NAT (public side) as the remote, itself on its private address and listening port
          expect(ca[1]).toBe(`/ip4/${net.b.publicIp}/tcp/4002`)
          expect(ca[2]).toBe(`/ip4/${net.a.host.ip}/tcp/4001`)
          expect(cb[1]).toBe(`/ip4/${net.a.publicIp}/tcp/4001`)
          expect(cb[2]).toBe(`/ip4/${net.b.host.ip}/tcp/4002`)
          yield* a.proc.awaitOutput(/ping ok/, "60 seconds")
          yield* b.proc.awaitOutput(/ping ok/, "60 seconds")
          // one connection, and both sides dialed it: a simultaneous open, not an accept
          expect(lines(a.proc, "conn ")).toEqual([`conn outbound /ip4/${net.b.publicIp}/tcp/4002`])
          expect(lines(b.proc, "conn ")).toEqual([`conn outbound /ip4/${net.a.publicIp}/tcp/4001`])
        }).pipe(Effect.scoped),
      120_000
    )

    it.live(
      "issue 17: with dialFromListenPort a NATed node is seen at its NAT's mapping of its listening port",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire()
          const pub = yield* start(net.pub.ns, 9000)
          const a = yield* Netns.spawnNode(net.a.host.ns, script, ["4001", "dial-from-listen-port"], { stdin: true })
          yield* a.awaitOutput(/ready (\S+)/, "60 seconds")
          yield* a.write(`connect /ip4/${net.pub.ip}/tcp/9000/p2p/${pub.id}\n`)
          const dialed = yield* a.awaitOutput(/dialed (\S+) (\S+)/, "60 seconds")
          expect(dialed[2]).toBe(`/ip4/${net.a.host.ip}/tcp/4001`)
          // what identify will tell it it is observed at: the NAT's address and the same port
          const seen = yield* pub.proc.awaitOutput(/conn inbound (\S+)/, "60 seconds")
          expect(seen[1]).toBe(`/ip4/${net.a.publicIp}/tcp/4001`)
        }).pipe(Effect.scoped),
      120_000
    )

    it.live("issue 17 test network: a failing test's network is removed, namespaces and all", () =>
      Effect.gen(function*() {
        let made: ReadonlyArray<string> = []
        const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
          const net = yield* Netns.acquire({ internet: "5.5.5" })
          made = net.namespaces
          expect(Netns.existing()).toEqual(expect.arrayContaining([...made]))
          expect(net.a.publicIp).toBe("5.5.5.2")
          expect(Netns.exec(net.a.host.ns, "ip", ["-4", "-o", "addr", "show", "dev", "elp-eth0"])).toContain(
            "10.0.1.2/24"
          )
          expect(Netns.exec(net.a.router.ns, "nft", ["list", "ruleset"])).toContain("masquerade")
          return yield* Effect.fail("the test failed")
        })))
        expect(exit._tag).toBe("Failure")
        expect(made).toHaveLength(6)
        expect(Netns.existing().filter((n) => made.includes(n))).toEqual([])
      }))

    it.live(
      "DCUtR §The Protocol step 6: behind symmetric-like NATs (random ports) both dials fail cleanly, no connection",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({ a: "symmetric", b: "symmetric" })
          const a = yield* start(net.a.host.ns, 4001)
          const b = yield* start(net.b.host.ns, 4002)
          yield* a.proc.write(`dial /ip4/${net.b.publicIp}/tcp/4002 ${b.id} initiator 0\n`)
          yield* b.proc.write(`dial /ip4/${net.a.publicIp}/tcp/4001 ${a.id} responder 150\n`)
          const fa = yield* a.proc.awaitOutput(/failed (\S+) (.*)/, "60 seconds")
          const fb = yield* b.proc.awaitOutput(/failed (\S+) (.*)/, "60 seconds")
          expect(fa[1]).toBe("DialError")
          expect(fb[1]).toBe("DialError")
          yield* a.proc.write(`conns ${b.id}\n`)
          yield* b.proc.write(`conns ${a.id}\n`)
          yield* a.proc.awaitOutput(/conns 0/, "30 seconds")
          yield* b.proc.awaitOutput(/conns 0/, "30 seconds")
          expect(lines(a.proc, "conn ")).toEqual([])
          expect(lines(b.proc, "conn ")).toEqual([])
        }).pipe(Effect.scoped),
      120_000
    )
  }
)
