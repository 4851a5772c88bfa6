/**
 * DCUtR end to end through real NATs with our circuit relay v2 (issue 17;
 * relay/DCUtR.md §The Protocol, relay/circuit-v2.md): on the network-
 * namespace test network of `support/netns.ts`, our relay (RelayServer) runs
 * on the public host and two of our nodes behind two nftables NATs reserve
 * on it. Their TCP dials leave from their listening port, so identify on the
 * relay connection tells each its NAT's mapping, which DCUtR sends. A dials
 * B's circuit address; B (which received the relayed connection) starts
 * DCUtR, and the hole punch gives a direct TCP connection whose remote
 * address is the other NAT's public side; streams then go direct (the
 * connection to the relay carries fewer bytes than the pings' payload).
 * Behind symmetric-like NATs every attempt fails with a typed error and the
 * relayed connection stays in use.
 * Needs Linux, root, `ip` and `nft`: skipped elsewhere, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as Netns from "../../support/netns.ts"
import { connectAndUpgrade, failToUpgrade, pingDirect, reservedPeers } from "./natSteps.ts"

const unavailable = Netns.unavailable()
const script = Path.join(import.meta.dirname, "relayDcutrPeer.ts")
const RELAY_PORT = 9000
const PINGS = 200
/** A ping is 32 bytes each way: what 200 pings would add to the relay connection as payload alone. */
const PING_PAYLOAD = PINGS * 32 * 2

const nthLine = Netns.nthOutputLine

const setup = (options: Netns.NatOptions) =>
  Effect.gen(function*() {
    const net = yield* Netns.acquire(options)
    const relay = yield* Netns.spawnNode(net.pub.ns, script, ["relay", String(RELAY_PORT)], { stdin: true })
    const idR = (yield* relay.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    const relayAddr = `/ip4/${net.pub.ip}/tcp/${RELAY_PORT}/p2p/${idR}`
    const { a, b, idA, idB } = yield* reservedPeers(net, relayAddr)
    return { net, a, b, idA, idB, idR, circuitB: `${relayAddr}/p2p-circuit/p2p/${idB}` }
  })

describe.skipIf(unavailable !== undefined)(
  `DCUtR through NATs with our circuit relay v2${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupStale())

    it.live(
      "DCUtR §The Protocol: NATed peers reserve on our relay, connect through it, and DCUtR makes a direct connection [dcutr:the-protocol:3]",
      () =>
        Effect.gen(function*() {
          const { net, a, b, idA, idB, idR, circuitB } = yield* setup({})
          yield* connectAndUpgrade(net, a, b, circuitB)
          // streams go direct: the relay connection does not carry the pings
          yield* a.write(`bytes ${idR}\n`)
          const before = Number((yield* nthLine(a, "bytes ", 1)).split(" ")[1])
          yield* pingDirect(net, { proc: a, id: idA }, { proc: b, id: idB }, PINGS)
          yield* a.write(`bytes ${idR}\n`)
          const after = Number((yield* nthLine(a, "bytes ", 2)).split(" ")[1])
          expect(before).toBeGreaterThan(0)
          expect(after - before).toBeLessThan(PING_PAYLOAD / 2)
        }).pipe(Effect.scoped),
      180_000
    )

    it.live(
      "DCUtR §The Protocol step 6: behind symmetric-like NATs, with our relay, all 3 attempts fail and the relayed connection stays [dcutr:the-protocol:5]",
      () =>
        Effect.gen(function*() {
          const { a, b, idB, circuitB } = yield* setup({ a: "symmetric", b: "symmetric" })
          // the relay observed each at a random port of its NAT: DCUtR sends it, the dials find no mapping there
          yield* failToUpgrade(a, b, idB, circuitB)
        }).pipe(Effect.scoped),
      180_000
    )
  }
)
