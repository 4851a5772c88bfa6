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
import { Context, Effect, Layer, Result, Schedule } from "effect"
import * as crypto from "node:crypto"
import * as Nodes from "../../layers/Node.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Kad from "../../src/protocols/kad/Kad.ts"
import { ma } from "../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../support/node.ts"
import * as JsKad from "./harness/JsKad.ts"
import * as JsPeer from "./harness/JsPeer.ts"

/** js DHT nodes besides the main js peer. */
const JS_NODES = 20

const ourNode = (options: Kad.KadOptions) =>
  Effect.gen(function*() {
    const layer = Kad.layer({ peerTimeout: "5 seconds", queryTimeout: "30 seconds", ...options }).pipe(
      Layer.provideMerge(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] }))
    )
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return { ...servicesOf(ctx as Context.Context<NodeServices>), kad: Context.get(ctx, Kad.Kad) }
  })

const idOf = (s: string) => Result.getOrThrow(PeerId.fromString(s))

/** A CIDv1 (raw codec) of random bytes, and its DHT key (the multihash). */
const randomCid = () => {
  const mh = Uint8Array.of(0x12, 0x20, ...crypto.randomBytes(32))
  return { cid: Uint8Array.of(0x01, 0x55, ...mh), key: mh }
}

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
    `server mode, ${JS_NODES + 1} js nodes: peer routing, /pk/ records and providers both ways`,
    () =>
      Effect.gen(function*() {
        const { js, nodes } = yield* jsNetwork()
        const ours = yield* ourNode({ bootstrap: [ma(js.addr)] })
        const ourId = ours.host.peerId.toString()
        yield* ours.kad.refresh
        expect(ours.kad.peers().length).toBeGreaterThan(0)

        // §Peer routing, we find js: a js node we are not connected to
        const far = nodes.find((n) => ours.host.connections(idOf(n.peerId)).length === 0) ?? nodes[nodes.length - 1]!
        yield* ours.host.hangUp(idOf(far.peerId))
        const found = yield* ours.kad.findPeer(idOf(far.peerId))
        expect(found.addrs.map(String)).toContain(far.addrs[0]!.split("/p2p/")[0])

        // §Client and server mode: our server-mode node is in js routing tables
        expect(yield* tablesHolding(js, ourId)).toBeGreaterThan(0)

        // §Peer routing, js finds us: from a js node started now, which never had our address
        // (it knows the network through one js node; whatever it learns of us comes from the DHT)
        const [fresh] = yield* JsKad.start(js, { count: 1, dial: [nodes[0]!.addrs[0]!], mesh: 0 })
        expect(ours.host.connections(idOf(fresh!.peerId))).toHaveLength(0)
        // js adds a peer to its table after identify and a ping: wait for the first one
        yield* JsKad.table(js, JS_NODES).pipe(
          Effect.filterOrFail((t) => t.length > 0),
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 })
        )
        const us = yield* JsKad.findPeer(js, JS_NODES, ourId)
        expect(us.peerId).toBe(ourId)
        expect(us.addrs).toContain(String(ours.host.addrs()[0]).split("/p2p/")[0])

        // §Value routing, ours → js: a /pk/ record we put is read by a js node
        const k1 = yield* Keys.generate("Ed25519")
        const key1 = Kad.pkKey(PeerId.fromPrivateKey(k1))
        const value1 = Keys.marshalPublicKey(k1.publicKey)
        expect(yield* ours.kad.put(key1, value1)).toBeGreaterThan(0)
        expect(yield* JsKad.get(js, 5, key1)).toEqual(value1)

        // js → ours
        const k2 = yield* Keys.generate("Ed25519")
        const key2 = Kad.pkKey(PeerId.fromPrivateKey(k2))
        const value2 = Keys.marshalPublicKey(k2.publicKey)
        yield* JsKad.put(js, 7, key2, value2)
        expect(yield* ours.kad.get(key2)).toEqual(value2)

        // §Content routing, ours → js
        const c1 = randomCid()
        expect(yield* ours.kad.provide(Kad.cidKey(c1.cid))).toBeGreaterThan(0)
        const providers1 = yield* JsKad.findProviders(js, 9, c1.cid, 1)
        expect(providers1.map((p) => p.peerId)).toContain(ourId)

        // js → ours
        const c2 = randomCid()
        yield* JsKad.provide(js, 11, c2.cid)
        const providers2 = yield* ours.kad.findProviders(c2.key)
        expect(providers2.map((p) => p.peerId.toString())).toContain(nodes[11]!.peerId)
      }),
    { timeout: 180_000 }
  )

  it.live(
    "the LAN prefix (/ipfs/lan/kad/1.0.0), 6 js nodes: each side finds the other and reads the other's /pk/ record",
    () =>
      Effect.gen(function*() {
        const { js, nodes } = yield* jsNetwork(5, Kad.LAN_PROTOCOL)
        const ours = yield* ourNode({ protocol: Kad.LAN_PROTOCOL, bootstrap: [ma(js.addr)] })
        yield* ours.kad.refresh
        const far = nodes[nodes.length - 1]!
        yield* ours.host.hangUp(idOf(far.peerId))
        expect((yield* ours.kad.findPeer(idOf(far.peerId))).peerId.toString()).toBe(far.peerId)
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
      const ours = yield* ourNode({ mode: "client", bootstrap: [ma(js.addr)] })
      yield* ours.kad.refresh
      const far = nodes[nodes.length - 1]!
      yield* ours.host.hangUp(idOf(far.peerId))
      const found = yield* ours.kad.findPeer(idOf(far.peerId))
      expect(found.peerId.toString()).toBe(far.peerId)
      expect(ours.host.connections().length).toBeGreaterThan(1)
      expect(yield* tablesHolding(js, ours.host.peerId.toString())).toBe(0)
    }), { timeout: 180_000 })
})
