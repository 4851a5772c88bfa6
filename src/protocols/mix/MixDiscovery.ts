/**
 * Mix node discovery (LIP-99 §6.1): each mix node MUST make known that it
 * speaks Mix, its X25519 public key and one or more routable multiaddresses.
 * `MixDiscovery` is the pluggable source the sender samples paths from
 * (§8.5.2 step 2: "an unbiased random sample of live, routable mix nodes").
 *
 * Implementations here: `layerStatic` (a fixed list, e.g. from configuration)
 * and `makeRegistry`/`layerRegistry` (a list that grows and shrinks at run time,
 * for simulations and for adapters that learn nodes elsewhere). A Kad-DHT or
 * rendezvous-backed source is to come: it needs a record format for the mix
 * key that the spec does not define yet.
 *
 * @since 0.2.0
 */
import { Context, Effect, Layer, Ref } from "effect"
import type * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"

/** What §6.1 requires a mix node to publish. */
export interface MixNodeInfo {
  readonly peerId: PeerId.PeerId
  /** The X25519 public key for Sphinx (32 bytes). */
  readonly publicKey: Uint8Array
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

export class MixDiscovery extends Context.Service<MixDiscovery, {
  /** The mix nodes known now (the sender samples from them). */
  readonly nodes: Effect.Effect<ReadonlyArray<MixNodeInfo>>
}>()("effect-libp2p/MixDiscovery") {}

/** A fixed list. */
export const layerStatic = (nodes: ReadonlyArray<MixNodeInfo>): Layer.Layer<MixDiscovery> =>
  Layer.succeed(MixDiscovery, MixDiscovery.of({ nodes: Effect.succeed(nodes) }))

export interface Registry {
  readonly discovery: MixDiscovery["Service"]
  /** Add or replace a node (by peer id). */
  readonly add: (info: MixNodeInfo) => Effect.Effect<void>
  readonly remove: (peer: PeerId.PeerId) => Effect.Effect<void>
}

/** A mutable list, shared by whoever holds it (several nodes of one simulation may). */
export const makeRegistry = (initial: ReadonlyArray<MixNodeInfo> = []): Effect.Effect<Registry> =>
  Effect.map(Ref.make<ReadonlyArray<MixNodeInfo>>(initial), (ref) => ({
    discovery: MixDiscovery.of({ nodes: Ref.get(ref) }),
    add: (info) => Ref.update(ref, (list) => [...list.filter((n) => !PeerId.equals(n.peerId, info.peerId)), info]),
    remove: (peer) => Ref.update(ref, (list) => list.filter((n) => !PeerId.equals(n.peerId, peer)))
  }))

/** The registry's discovery as a layer. */
export const layerRegistry = (registry: Registry): Layer.Layer<MixDiscovery> =>
  Layer.succeed(MixDiscovery, registry.discovery)
