/**
 * Kad test nodes on the memory transport: the Memory preset with a Kad layer
 * on top, seeded identities (so a run is reproducible), and helpers to wire a
 * network and compute the true closest peers.
 */
import { Context, Effect, Layer, Result } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import * as Keys from "../../../src/core/Keys.ts"
import type * as PeerId from "../../../src/core/PeerId.ts"
import * as Kad from "../../../src/protocols/kad/Kad.ts"
import * as RoutingTable from "../../../src/protocols/kad/RoutingTable.ts"
import { MemoryNetwork } from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../../support/node.ts"

/** A deterministic Ed25519 key from a small number. */
export const seededKey = (seed: number): Keys.PrivateKey => {
  const bytes = new Uint8Array(32)
  new DataView(bytes.buffer).setUint32(0, seed + 1)
  bytes[31] = 0x4b
  return Result.getOrThrow(Keys.ed25519FromSeed(bytes))
}

/** The Memory preset on the MemoryNetwork in context, listening on /memory/0, with a seeded identity if asked. */
export const memoryLayer = (seed?: number, preset: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork
    return Nodes.Memory({
      listen: [ma("/memory/0")],
      ...(seed !== undefined ? { privateKey: seededKey(seed) } : {}),
      ...preset
    }).pipe(Layer.provide(Layer.succeed(MemoryNetwork, network)))
  })

/** A memory node with Kad, on the MemoryNetwork in context; its services and its `kad`. */
export const kadNode = (options: Kad.KadOptions = {}, seed?: number, preset: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const node = yield* memoryLayer(seed, preset)
    const layer = Kad.layer({ refreshInterval: "1 hour", ...options }).pipe(Layer.provideMerge(node))
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return { ...servicesOf(ctx as Context.Context<NodeServices>), kad: Context.get(ctx, Kad.Kad), context: ctx }
  })

export type KadNode = Effect.Success<ReturnType<typeof kadNode>>

/** The `count` peers of `among` closest to the raw key `key`, closest first (brute force). */
export const trueClosest = (key: Uint8Array, among: ReadonlyArray<PeerId.PeerId>, count: number) => {
  const target = RoutingTable.keyOf(key)
  return [...among]
    .map((p) => ({ p, key: RoutingTable.peerKey(p) }))
    .sort((a, b) => RoutingTable.compareDistance(target, a.key, b.key))
    .slice(0, count)
    .map((x) => x.p.toString())
}

/**
 * Dial `b` from `a`, identify, and wait until `a`'s Kad has handled the identify result
 * (its table learns of `b` from a stream of identify results, in another fiber).
 */
export const connect = (a: KadNode, b: { readonly addr: KadNode["addr"] }) =>
  Effect.gen(function*() {
    const conn = yield* a.host.dial(b.addr)
    yield* a.identify.identify(conn)
    for (let i = 0; i < 100 && !a.kad.peers().some((p) => p.toString() === conn.remotePeer.toString()); i++) {
      yield* Effect.yieldNow
    }
  })
