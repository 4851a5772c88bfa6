/**
 * The Kad-DHT interop scenario shared by kad-js.test.ts and go-kad.test.ts: our node in a network
 * of another implementation's DHT nodes (driven through `JsKad`: the js peer's js-kad.mjs or the go
 * peer's go/kad.go), each step checking one direction of one kad-dht spec section.
 */
import { expect } from "@effect/vitest"
import { Clock, Context, Effect, Layer, Result, Schedule } from "effect"
import * as crypto from "node:crypto"
import * as Nodes from "../../../layers/Node.ts"
import * as Keys from "../../../src/core/Keys.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Kad from "../../../src/protocols/kad/Kad.ts"
import { ma } from "../../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../../support/node.ts"
import * as JsKad from "./JsKad.ts"
import type { JsPeer } from "./JsPeer.ts"

/** Our node: TCP + Noise + Yamux + identify (the Default preset) + Kad, on 127.0.0.1. */
export const ourNode = (options: Kad.KadOptions) =>
  Effect.gen(function*() {
    const layer = Kad.layer({ peerTimeout: "5 seconds", queryTimeout: "30 seconds", ...options }).pipe(
      Layer.provideMerge(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] }))
    )
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return { ...servicesOf(ctx as Context.Context<NodeServices>), kad: Context.get(ctx, Kad.Kad) }
  })
export type OurNode = Effect.Success<ReturnType<typeof ourNode>>

export const idOf = (s: string) => Result.getOrThrow(PeerId.fromString(s))

/** A CIDv1 (raw codec) of random bytes, and its DHT key (the multihash). */
export const randomCid = () => {
  const mh = Uint8Array.of(0x12, 0x20, ...crypto.randomBytes(32))
  return { cid: Uint8Array.of(0x01, 0x55, ...mh), key: mh }
}

/** §Peer routing, we find them: a node of `nodes` we are not connected to (hung up if we were). */
export const weFindFar = (ours: OurNode, nodes: ReadonlyArray<JsKad.PeerInfo>) =>
  Effect.gen(function*() {
    const far = nodes.find((n) => ours.host.connections(idOf(n.peerId)).length === 0) ?? nodes[nodes.length - 1]!
    yield* ours.host.hangUp(idOf(far.peerId))
    const found = yield* ours.kad.findPeer(idOf(far.peerId))
    expect(found.addrs.map(String)).toContain(far.addrs[0]!.split("/p2p/")[0])
  })

/**
 * §Peer routing, they find us: from a node started now (node `index` of `peer`), which knows the
 * network through `nodes[0]` only and never had our address: whatever it learns of us comes from
 * the DHT. It adds a peer to its table after identify: wait for the first one.
 */
export const theyFindUs = (peer: JsPeer, nodes: ReadonlyArray<JsKad.PeerInfo>, ours: OurNode, index: number) =>
  Effect.gen(function*() {
    const ourId = ours.host.peerId.toString()
    const [fresh] = yield* JsKad.start(peer, { count: 1, dial: [nodes[0]!.addrs[0]!], mesh: 0 })
    expect(ours.host.connections(idOf(fresh!.peerId))).toHaveLength(0)
    yield* JsKad.table(peer, index).pipe(
      Effect.filterOrFail((t) => t.length > 0),
      Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 })
    )
    const us = yield* JsKad.findPeer(peer, index, ourId)
    expect(us.peerId).toBe(ourId)
    expect(us.addrs).toContain(String(ours.host.addrs()[0]).split("/p2p/")[0])
  })

/** §Value routing both ways: a /pk/ record we put is read by their node `getAt`; one their node `putAt` puts is read by us. */
export const pkRecordsBothWays = (peer: JsPeer, ours: OurNode, getAt: number, putAt: number) =>
  Effect.gen(function*() {
    const k1 = yield* Keys.generate("Ed25519")
    const key1 = Kad.pkKey(PeerId.fromPrivateKey(k1))
    const value1 = Keys.marshalPublicKey(k1.publicKey)
    expect(yield* ours.kad.put(key1, value1)).toBeGreaterThan(0)
    expect(yield* JsKad.get(peer, getAt, key1)).toEqual(value1)

    const k2 = yield* Keys.generate("Ed25519")
    const key2 = Kad.pkKey(PeerId.fromPrivateKey(k2))
    const value2 = Keys.marshalPublicKey(k2.publicKey)
    yield* JsKad.put(peer, putAt, key2, value2)
    expect(yield* ours.kad.get(key2)).toEqual(value2)
  })

/**
 * IPNS records (the IPNS record spec, kad-dht §Value routing) both ways: a V2 record we sign,
 * put by us, is read back by their node `getAt`; another we sign is put by their node `putAt`
 * (their validator accepts it) and read by us (ours verifies what they return).
 */
export const ipnsRecordsBothWays = (peer: JsPeer, ours: OurNode, getAt: number, putAt: number) =>
  Effect.gen(function*() {
    const nowNanos = BigInt(yield* Clock.currentTimeMillis) * 1_000_000n
    const record = (key: Keys.PrivateKey, path: string) =>
      Result.getOrThrow(Kad.Ipns.create(key, new TextEncoder().encode(path), {
        sequence: 1n,
        eolNanos: nowNanos + 24n * 3_600_000_000_000n
      }))
    const k1 = yield* Keys.generate("Ed25519")
    const key1 = Kad.Ipns.ipnsKey(PeerId.fromPrivateKey(k1))
    const record1 = record(k1, "/ipfs/bafkqaddwgevxmmraojswg33smq")
    expect(yield* ours.kad.put(key1, record1)).toBeGreaterThan(0)
    expect(yield* JsKad.get(peer, getAt, key1)).toEqual(record1)

    const k2 = yield* Keys.generate("Ed25519")
    const key2 = Kad.Ipns.ipnsKey(PeerId.fromPrivateKey(k2))
    const record2 = record(k2, "/ipfs/bafkqabtimvwgy3yk")
    yield* JsKad.put(peer, putAt, key2, record2)
    expect(yield* ours.kad.get(key2)).toEqual(record2)
  })

/** §Content routing both ways: a CID we provide is found by their node `findAt`; one `nodes[provideAt]` provides is found by us. */
export const providersBothWays = (
  peer: JsPeer,
  nodes: ReadonlyArray<JsKad.PeerInfo>,
  ours: OurNode,
  findAt: number,
  provideAt: number
) =>
  Effect.gen(function*() {
    const c1 = randomCid()
    expect(yield* ours.kad.provide(Kad.cidKey(c1.cid))).toBeGreaterThan(0)
    const providers1 = yield* JsKad.findProviders(peer, findAt, c1.cid, 1)
    expect(providers1.map((p) => p.peerId)).toContain(ours.host.peerId.toString())

    const c2 = randomCid()
    yield* JsKad.provide(peer, provideAt, c2.cid)
    const providers2 = yield* ours.kad.findProviders(c2.key)
    expect(providers2.map((p) => p.peerId.toString())).toContain(nodes[provideAt]!.peerId)
  })
