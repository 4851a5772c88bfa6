/**
 * Peer routing, the contract (go core/routing/routing.go `PeerRouting`): find
 * a peer's addresses by its id, and the peers closest to a key. Kad-DHT is one
 * implementation (`Kad.layerPeerRouting`), the Delegated Routing HTTP client
 * (`DelegatedRouting.layerPeerRouting`) another. Contracts only: this folder imports nothing but `core/`.
 *
 * @since 0.2.0
 */
import { Context, type Effect, Schema } from "effect"
import type * as Multiaddr from "../core/Multiaddr.ts"
import type * as PeerId from "../core/PeerId.ts"

/** A peer and its addresses. */
export interface PeerInfo {
  readonly peerId: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

/**
 * Why routing failed: `NotFound` (the network was asked and has nothing),
 * `Failed` (it could not be asked: no peers, timeouts, errors). The
 * implementation's own error is the `cause`.
 */
export const RoutingErrorReason = Schema.Literals(["NotFound", "Failed"])
export type RoutingErrorReason = typeof RoutingErrorReason.Type

export class RoutingError extends Schema.TaggedError<RoutingError>()("RoutingError", {
  reason: RoutingErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export class PeerRouting extends Context.Service<PeerRouting, {
  /** The addresses of a peer. */
  readonly findPeer: (peer: PeerId.PeerId) => Effect.Effect<PeerInfo, RoutingError>
  /** The peers closest to a key, closest first. */
  readonly getClosestPeers: (key: Uint8Array) => Effect.Effect<ReadonlyArray<PeerInfo>, RoutingError>
}>()("effect-libp2p/PeerRouting") {}
