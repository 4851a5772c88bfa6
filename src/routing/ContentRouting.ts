/**
 * Content routing, the contract (go core/routing/routing.go `ContentRouting`
 * and `ValueStore`): announce and find providers of a key (for a CID, its
 * multihash), and put and get records. Kad-DHT is one implementation
 * (`Kad.layerContentRouting`). Contracts only.
 *
 * @since 0.2.0
 */
import { Context, type Effect } from "effect"
import type { PeerInfo, RoutingError } from "./PeerRouting.ts"

export class ContentRouting extends Context.Service<ContentRouting, {
  /** Announce this node as a provider of `key`. */
  readonly provide: (key: Uint8Array) => Effect.Effect<void, RoutingError>
  /** Providers of `key`, at most `limit` (the implementation's default when absent). */
  readonly findProviders: (
    key: Uint8Array,
    options?: { readonly limit?: number }
  ) => Effect.Effect<ReadonlyArray<PeerInfo>, RoutingError>
  /** Store a record. */
  readonly put: (key: Uint8Array, value: Uint8Array) => Effect.Effect<void, RoutingError>
  /** The best record for `key`. */
  readonly get: (key: Uint8Array) => Effect.Effect<Uint8Array, RoutingError>
}>()("effect-libp2p/ContentRouting") {}
