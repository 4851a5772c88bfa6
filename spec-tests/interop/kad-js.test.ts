/**
 * Kad-DHT interop (kad-dht spec): our node (TCP + Noise + Yamux + identify + Kad) in a
 * network of js-libp2p nodes running @libp2p/kad-dht in a separate process, both
 * directions: §Peer routing (each finds a peer it is not connected to), §Value routing
 * (a `/pk/` record put by one is read by the other), §Content routing (a CID provided
 * by one is found by the other), and §Client and server mode (our server-mode node is
 * in js routing tables, a client-mode node is in none).
 *
 * The js network is JS_NODES js DHT servers in one process (the main js peer plus
 * `JsKad.start` nodes, each dialing the 3 started before it), on 127.0.0.1.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Kad from "../../src/protocols/kad/Kad.ts"
import { ma } from "../support/multiaddr.ts"
import * as JsKad from "./harness/JsKad.ts"
import * as JsPeer from "./harness/JsPeer.ts"
import * as KadScenario from "./harness/KadScenario.ts"

/** js DHT nodes besides the main js peer. */
const JS_NODES = 20

/** The js network: the main js peer (a DHT server) and `count` more, meshed. */
const jsNetwork = (count = JS_NODES, protocol?: string) =>
  Effect.gen(function*() {
    const js = yield* JsPeer.start({ kad: protocol !== undefined ? { protocol } : {}, commandTimeout: "60 seconds" })
    const nodes = yield* JsKad.start(js, {
      count,
      dial: [js.addr],
      mesh: 3,
      ...(protocol !== undefined ? { protocol } : {})
    })
    return { js, nodes }
  })

/** How many js routing tables (main + started nodes) hold `peer`. */
const tablesHolding = (js: JsPeer.JsPeer, peer: string) =>
  Effect.map(
    Effect.forEach([undefined, ...Array.from({ length: JS_NODES }, (_, i) => i)], (n) => JsKad.table(js, n)),
    (tables) => tables.filter((t) => t.includes(peer)).length
  )

describe("Kad-DHT interop with js-libp2p", () => {
  it.live(
    `server mode, ${JS_NODES + 1} js nodes: peer routing, /pk/ and /ipns/ records and providers both ways`,
    () =>
      Effect.gen(function*() {
        const { js, nodes } = yield* jsNetwork()
        const ours = yield* KadScenario.ourNode({ bootstrap: [ma(js.addr)] })
        const ourId = ours.host.peerId.toString()
        yield* ours.kad.refresh
        expect(ours.kad.peers().length).toBeGreaterThan(0)

        // §Peer routing, we find js: a js node we are not connected to
        yield* KadScenario.weFindFar(ours, nodes)

        // §Client and server mode: our server-mode node is in js routing tables
        expect(yield* tablesHolding(js, ourId)).toBeGreaterThan(0)

        // §Peer routing, js finds us: from a js node started now
        yield* KadScenario.theyFindUs(js, nodes, ours, JS_NODES)
        // §Value routing, ours → js and js → ours
        yield* KadScenario.pkRecordsBothWays(js, ours, 5, 7)
        // IPNS records (js with the `ipns` package's validator, as IPFS nodes run it), ours → js and js → ours
        yield* KadScenario.ipnsRecordsBothWays(js, ours, 6, 8)
        // §Content routing, ours → js and js → ours
        yield* KadScenario.providersBothWays(js, nodes, ours, 9, 11)
      }),
    { timeout: 180_000 }
  )

  it.live(
    "the LAN prefix (/ipfs/lan/kad/1.0.0), 6 js nodes: each side finds the other and reads the other's /pk/ record",
    () =>
      Effect.gen(function*() {
        const { js, nodes } = yield* jsNetwork(5, Kad.LAN_PROTOCOL)
        const ours = yield* KadScenario.ourNode({ protocol: Kad.LAN_PROTOCOL, bootstrap: [ma(js.addr)] })
        yield* ours.kad.refresh
        const far = nodes[nodes.length - 1]!
        yield* ours.host.hangUp(KadScenario.idOf(far.peerId))
        expect((yield* ours.kad.findPeer(KadScenario.idOf(far.peerId))).peerId.toString()).toBe(far.peerId)
        const us = yield* JsKad.findPeer(js, 2, ours.host.peerId.toString())
        expect(us.peerId).toBe(ours.host.peerId.toString())
        const k = yield* Keys.generate("Ed25519")
        const key = Kad.pkKey(PeerId.fromPrivateKey(k))
        yield* JsKad.put(js, 3, key, Keys.marshalPublicKey(k.publicKey))
        expect(yield* ours.kad.get(key)).toEqual(Keys.marshalPublicKey(k.publicKey))
      }),
    { timeout: 120_000 }
  )

  it.live("client mode: our node asks js but enters no js routing table", () =>
    Effect.gen(function*() {
      const { js, nodes } = yield* jsNetwork()
      const ours = yield* KadScenario.ourNode({ mode: "client", bootstrap: [ma(js.addr)] })
      yield* ours.kad.refresh
      const far = nodes[nodes.length - 1]!
      yield* ours.host.hangUp(KadScenario.idOf(far.peerId))
      const found = yield* ours.kad.findPeer(KadScenario.idOf(far.peerId))
      expect(found.peerId.toString()).toBe(far.peerId)
      expect(ours.host.connections().length).toBeGreaterThan(1)
      expect(yield* tablesHolding(js, ours.host.peerId.toString())).toBe(0)
    }), { timeout: 180_000 })
})
