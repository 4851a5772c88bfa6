/**
 * DCUtR end to end through real NATs (issue 17; relay/DCUtR.md §The
 * Protocol), on the network-namespace test network of `support/netns.ts`:
 * two of our nodes behind two nftables NATs reach each other through a
 * relay on the public host, DCUtR runs over that relayed connection (the
 * peer that received it starts), and the hole punch gives a direct TCP
 * connection whose remote address is the other NAT's public side; new
 * streams then go direct and no more bytes pass the relay. Behind
 * symmetric-like NATs every attempt fails with a typed error and the relayed
 * connection stays in use.
 *
 * The relay here is a stand-in (`relayProxy.ts`: it pairs and pipes TCP
 * connections; `dcutrPeer.ts` dials it with a stand-in `/p2p-circuit`
 * transport) until circuit relay v2 lands; DCUtR, the hole punch and the
 * switch to the direct connection are the real code.
 * Needs Linux, root, `ip` and `nft`: skipped elsewhere, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Netns from "../../support/netns.ts"
import type * as Proc from "../../support/process.ts"

const unavailable = Netns.unavailable()
const peerScript = Path.join(import.meta.dirname, "dcutrPeer.ts")
const proxyScript = Path.join(import.meta.dirname, "relayProxy.ts")
const RELAY_PORT = 9000

const lines = (proc: Proc.Process, prefix: string) => proc.stdout().split("\n").filter((l) => l.startsWith(prefix))

/** The `n`-th (1-based) output line starting with `prefix`, once it is there (a minute at most). */
const nthLine = (proc: Proc.Process, prefix: string, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 600; i++) {
      const found = lines(proc, prefix)
      if (found.length >= n) return found[n - 1]!
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* Effect.die(`no line ${n} starting with "${prefix}" in:\n${proc.stdout()}\n${proc.stderr()}`)
  })

/** A relay on the public host, B listening through it, A ready to dial it. */
const setup = (options: Netns.NatOptions) =>
  Effect.gen(function*() {
    const net = yield* Netns.acquire(options)
    const proxy = yield* Netns.spawnNode(net.pub.ns, proxyScript, [String(RELAY_PORT)], { stdin: true })
    yield* proxy.awaitOutput(/listening/, "60 seconds")
    const circuit = `/ip4/${net.pub.ip}/tcp/${RELAY_PORT}/p2p-circuit`
    const b = yield* Netns.spawnNode(net.b.host.ns, peerScript, ["4002", net.b.publicIp, circuit], { stdin: true })
    const idB = (yield* b.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    const a = yield* Netns.spawnNode(net.a.host.ns, peerScript, ["4001", net.a.publicIp, "-"], { stdin: true })
    const idA = (yield* a.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    const relayBytes = (n: number) =>
      Effect.andThen(proxy.write("stats\n"), nthLine(proxy, "bytes ", n)).pipe(
        Effect.map((line) => Number(line.split(" ")[1]))
      )
    return { net, a, b, idA, idB, circuit, relayBytes }
  })

describe.skipIf(unavailable !== undefined)(
  `DCUtR through NATs${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupStale())

    it.live(
      "DCUtR §The Protocol: behind endpoint-independent NATs the relayed connection is upgraded to a direct one [dcutr:the-protocol:3]",
      () =>
        Effect.gen(function*() {
          const { net, a, b, idA, idB, circuit, relayBytes } = yield* setup({})
          yield* a.write(`dial ${circuit}\n`)
          expect(yield* nthLine(a, "dialed ", 1)).toContain("/p2p-circuit")
          // B received the relayed connection: it starts DCUtR; A answers. Both make the direct connection.
          const ub = (yield* nthLine(b, "upgraded ", 1)).split(" ")
          const ua = (yield* nthLine(a, "upgraded ", 1)).split(" ")
          expect(ub[1]).toBe("initiator")
          expect(ua.slice(1, 3)).toEqual(["responder", "1"])
          expect(ub[4]).toBe(`/ip4/${net.a.publicIp}/tcp/4001`)
          expect(ua[4]).toBe(`/ip4/${net.b.publicIp}/tcp/4002`)
          // the application moves: new streams go direct, nothing more through the relay
          const before = yield* relayBytes(1)
          yield* a.write(`ping ${idB} 50\n`)
          expect(yield* nthLine(a, "pinged ", 1)).toBe(`pinged 50 /ip4/${net.b.publicIp}/tcp/4002`)
          yield* b.write(`ping ${idA} 50\n`)
          expect(yield* nthLine(b, "pinged ", 1)).toBe(`pinged 50 /ip4/${net.a.publicIp}/tcp/4001`)
          const after = yield* relayBytes(2)
          expect(after - before).toBe(0)
          // both connections are there, the direct one first
          yield* a.write(`conns ${idB}\n`)
          const conns = (yield* nthLine(a, "conns ", 1)).split(" ")
          expect(conns[1]).toBe("2")
          expect(conns[2]).toBe(`/ip4/${net.b.publicIp}/tcp/4002`)
          expect(conns[3]).toContain("/p2p-circuit")
        }).pipe(Effect.scoped),
      180_000
    )

    it.live(
      "DCUtR §The Protocol step 6: behind symmetric-like NATs all 3 attempts fail (DialFailed), the relayed connection stays [dcutr:the-protocol:5]",
      () =>
        Effect.gen(function*() {
          const { a, b, idB, circuit } = yield* setup({ a: "symmetric", b: "symmetric" })
          yield* a.write(`dial ${circuit}\n`)
          yield* nthLine(a, "dialed ", 1)
          // 3 attempts of 5 s dials: B gives up with a typed error
          const failed = (yield* nthLine(b, "dcutr-failed ", 1)).split(" ")
          expect(failed.slice(1, 3)).toEqual(["initiator", "DialFailed"])
          // A answered and dialed in each of B's 3 rounds (§The Protocol: B retries twice)
          yield* nthLine(a, "dcutr-failed responder DialFailed", 3)
          expect(lines(a, "dcutr-failed responder")).toHaveLength(3)
          expect(lines(a, "upgraded ")).toEqual([])
          expect(lines(b, "upgraded ")).toEqual([])
          // the relayed connection still carries streams
          yield* a.write(`ping ${idB} 3\n`)
          expect(yield* nthLine(a, "pinged ", 1)).toContain("/p2p-circuit")
          yield* a.write(`conns ${idB}\n`)
          expect((yield* nthLine(a, "conns ", 1)).split(" ")[1]).toBe("1")
        }).pipe(Effect.scoped),
      180_000
    )
  }
)
