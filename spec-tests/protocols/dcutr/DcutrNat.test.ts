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
 * connections and counts every byte; `dcutrPeer.ts` dials it with a
 * stand-in `/p2p-circuit` transport), so "no more bytes through the relay"
 * is checked exactly (0); DCUtR, the hole punch and the switch to the direct
 * connection are the real code. `DcutrRelayNat.test.ts` does the same with
 * our circuit relay v2.
 * Needs Linux, root, `ip` and `nft`: skipped elsewhere, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Netns from "../../support/netns.ts"
import { connectAndUpgrade, failToUpgrade, pingDirect } from "./natSteps.ts"

const unavailable = Netns.unavailable()
const peerScript = Path.join(import.meta.dirname, "dcutrPeer.ts")
const proxyScript = Path.join(import.meta.dirname, "relayProxy.ts")
const RELAY_PORT = 9000

const nthLine = Netns.nthOutputLine

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
          // B received the relayed connection: it starts DCUtR; A answers. Both make the direct connection.
          yield* connectAndUpgrade(net, a, b, circuit)
          // the application moves: new streams go direct, nothing more through the relay
          const before = yield* relayBytes(1)
          yield* pingDirect(net, { proc: a, id: idA }, { proc: b, id: idB }, 50)
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
          // 3 rounds of 5 s dials: B gives up with a typed error
          yield* failToUpgrade(a, b, idB, circuit)
        }).pipe(Effect.scoped),
      180_000
    )
  }
)
