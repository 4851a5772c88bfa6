/**
 * The contract between the router-agnostic pubsub core (`Pubsub.ts`) and a
 * router (floodsub, gossipsub): what a router is told (peers, subscriptions,
 * validated messages, control messages) and what it may do (send an RPC to a
 * peer). A router is a synchronous state machine plus its own background
 * jobs; every decision it makes happens inside one of these calls, so a whole
 * network of routers can be driven by `TestClock`.
 *
 * Anchors: go-libp2p-pubsub `pubsub.go` `PubSubRouter` (AddPeer, RemovePeer,
 * HandleRPC, Publish, Join, Leave), rust `gossipsub/src/behaviour.rs`.
 *
 * @since 0.2.0
 */
import type { Effect, Scope } from "effect"
import type * as Multiaddr from "../../core/Multiaddr.ts"
import type * as PeerId from "../../core/PeerId.ts"
import type * as Messages from "./messages.ts"

/** A pubsub peer as the core keeps it: one per remote peer with our outbound stream open. */
export interface PeerHandle {
  readonly id: PeerId.PeerId
  /** `id.toString()`, the key of every per-peer map. */
  readonly key: string
  /** The protocol negotiated on our outbound stream to it. */
  readonly protocol: string
  /** Whether we dialed the connection the stream runs on (gossipsub v1.1 D_out). */
  readonly outbound: boolean
  /** The remote address of that connection (gossipsub v1.1 P₆ counts peers per IP). */
  readonly remoteAddr: Multiaddr.Multiaddr
  /** The topics the peer said it subscribes to. */
  readonly topics: ReadonlySet<string>
}

/** A message the core accepted, handed to the router to send on. */
export interface RoutedMessage {
  readonly message: Messages.Message
  readonly topic: string
  /** The message id (the configured message-id function). */
  readonly id: Uint8Array
  /** `id` as a binary string, the key of the router's maps. */
  readonly idKey: string
  /** Encoded size of `message` (v1.2 IDONTWANT threshold). */
  readonly size: number
}

/** What the core gives a router. */
export interface RouterContext {
  readonly localPeer: PeerId.PeerId
  readonly peers: ReadonlyMap<string, PeerHandle>
  /** Queue an RPC to a peer; `false` when its queue is full (the RPC is dropped). */
  readonly send: (peer: PeerHandle, rpc: Messages.RPC) => boolean
  /** Whether we subscribe to `topic`. */
  readonly subscribed: (topic: string) => boolean
  /** Whether the seen-cache holds a message id. */
  readonly seen: (idKey: string) => boolean
  /** Clock time in ms (the node's `Clock`, so `TestClock` in tests). */
  readonly now: () => number
  /** A number in [0, 1) from the node's seeded generator. */
  readonly random: () => number
  /** Ask the node to connect to `target` (in the background, bounded; failures are ignored). */
  readonly connect: (target: Multiaddr.Multiaddr | PeerId.PeerId) => void
}

export interface PubsubRouter {
  /** The protocols to offer for our outbound stream and to handle inbound, in preference order. */
  readonly protocols: ReadonlyArray<string>
  readonly addPeer: (peer: PeerHandle) => void
  readonly removePeer: (peer: PeerHandle) => void
  /** The peer (un)subscribed to `topic` (after `peer.topics` changed). */
  readonly onSubscription: (peer: PeerHandle, topic: string, subscribe: boolean) => void
  /** We subscribed to `topic` (first local subscriber). */
  readonly join: (topic: string) => void
  /** We unsubscribed from `topic` (last local subscriber gone). */
  readonly leave: (topic: string) => void
  /** A message seen for the first time arrived from `peer` (before validation). */
  readonly onFirstSeen: (peer: PeerHandle, msg: RoutedMessage) => void
  /** A message we had already seen arrived again from `peer`. */
  readonly onDuplicate: (peer: PeerHandle, idKey: string, topic: string) => void
  /** Validation rejected a message `peer` sent (scoring: P4). */
  readonly onReject: (peer: PeerHandle, topic: string) => void
  /** Send an accepted message on; `from` is undefined for our own. Returns how many peers it went to. */
  readonly forward: (msg: RoutedMessage, from: PeerHandle | undefined) => number
  readonly handleControl: (peer: PeerHandle, control: Messages.ControlMessage) => void
  /** Whether to process an RPC from `peer` at all (gossipsub v1.1 graylist); every RPC is dropped when false. */
  readonly acceptFrom: (peer: PeerHandle) => boolean
}

/** Builds a router from the core's context; its background jobs (heartbeat) live in the scope. */
export type RouterFactory = (ctx: RouterContext) => Effect.Effect<PubsubRouter, never, Scope.Scope>
