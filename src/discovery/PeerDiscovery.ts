/**
 * Peer discovery: the contract every discovery mechanism feeds (issue 18;
 * go-libp2p `core/discovery`, js-libp2p's `peer:discovery` event, rust's
 * `ToSwarm::NewExternalAddrOfPeer`), and the consumer that acts on it.
 *
 * **The hub** ({@link PeerDiscovery}, `layer`). Any number of sources run at
 * once — {@link Bootstrap}, {@link Mdns}, the rendezvous client, later the
 * DHT — and each reports what it finds with `announce(peer)`, or hands the
 * hub a whole stream with `register(source)`, run in a fiber of the caller's
 * scope (a source's Layer registers in its own scope: removing the Layer
 * stops the source). What comes out is `discovered`/`subscribe`: one stream
 * of {@link DiscoveredPeer} (peer id, addresses, source name), read by as
 * many consumers as want it.
 *
 * What the hub lets through is bounded and cleaned, whatever a source sends:
 * our own peer id is dropped; an address whose `/p2p/<id>` names another peer
 * is dropped (a spoofed or confused record), the `/p2p` suffix of the others
 * is removed; at most `maxAddrsPerPeer` addresses (default 32) per
 * announcement; an announcement with no address left is dropped. A peer is
 * emitted again by the same source only when its addresses changed or
 * `reannounceAfter` (default 5 min) has passed since it was last emitted; the
 * hub remembers at most `maxTracked` (default 1,024) (source, peer) pairs, the
 * oldest forgotten first. Each subscriber has a sliding buffer of
 * `EVENTS_BUFFER` announcements (a slow consumer loses the oldest).
 * Subscribe before starting sources: an announcement made while nobody
 * listens still counts for deduplication (the CLI subscribes first).
 *
 * **The consumer** (`layerConnect`): every discovered peer's addresses go to
 * the {@link Peerstore} as `routing` addresses (they expire after the peer
 * store's `routingTtl`, 1 h by default, renewed when discovered again); the
 * peer is dialed when the node has fewer than `minConnections` connected
 * peers (default 50) and no connection to it. Dials go through `host.dial`,
 * so the ConnectionManager's cap and the Dialer's per-address backoff apply
 * (a backing-off peer fails fast with `Backoff` and is not retried here);
 * at most `maxConcurrentDials` (default 8) at once, later announcements wait
 * in the subscriber's sliding buffer.
 *
 * @since 0.3.0
 */
import { Clock, Context, Duration, Effect, Layer, PubSub, Schema, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { Identity } from "../core/Identity.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import { Host } from "../host/Host.ts"
import { Peerstore } from "../host/Peerstore.ts"
import { clampInt, duration } from "../internal/options.ts"

/** Where a peer was found. The names the library's sources use; others are allowed. */
export type DiscoverySource = "bootstrap" | "mdns" | "rendezvous" | "dht" | (string & {})

export interface DiscoveredPeer {
  readonly peerId: PeerId.PeerId
  /** Addresses without the `/p2p/<id>` suffix. */
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  readonly source: DiscoverySource
}

/** A source failed in a way it cannot recover from (a socket it cannot open, …). */
export class DiscoveryError extends Schema.TaggedError<DiscoveryError>()("DiscoveryError", {
  source: Schema.String,
  reason: Schema.Literals(["Socket", "Config"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** Announcements buffered per subscriber (sliding). */
export const EVENTS_BUFFER = 256

export interface PeerDiscoveryOptions {
  /** Addresses kept per announcement (default 32). */
  readonly maxAddrsPerPeer?: number | undefined
  /** (source, peer) pairs remembered for deduplication (default 1,024). */
  readonly maxTracked?: number | undefined
  /** A peer whose addresses did not change is emitted again after this long (default 5 min). */
  readonly reannounceAfter?: Duration.Input | undefined
}

export const defaults = {
  maxAddrsPerPeer: 32,
  maxTracked: 1024,
  reannounceAfter: Duration.minutes(5)
} as const

export class PeerDiscovery extends Context.Service<PeerDiscovery, {
  /** Report one peer (cleaned and deduplicated as the module doc says). */
  readonly announce: (peer: DiscoveredPeer) => Effect.Effect<void>
  /** Run a source's stream, announcing each element, in a fiber of the current scope. */
  readonly register: (peers: Stream.Stream<DiscoveredPeer>) => Effect.Effect<void, never, Scope.Scope>
  /** Every announcement from the moment the stream is run (each run subscribes on its own). */
  readonly discovered: Stream.Stream<DiscoveredPeer>
  /** Subscribe now: nothing announced after `subscribe` returns is missed, while the scope lasts. */
  readonly subscribe: Effect.Effect<Stream.Stream<DiscoveredPeer>, never, Scope.Scope>
}>()("effect-libp2p/PeerDiscovery") {}

/** `addrs` of `peer` without `/p2p` suffixes, those naming another peer dropped, deduplicated, capped. */
export const cleanAddrs = (
  peer: PeerId.PeerId,
  addrs: ReadonlyArray<Multiaddr.Multiaddr>,
  max: number
): ReadonlyArray<Multiaddr.Multiaddr> => {
  const id = PeerId.toString(peer)
  const out: Array<Multiaddr.Multiaddr> = []
  for (const addr of addrs) {
    if (out.length >= max) break
    const named = Multiaddr.getPeerId(addr)
    if (named !== undefined && named !== id) continue
    const bare = named === undefined ? addr : Multiaddr.decapsulateCode(addr, Multiaddr.codes.p2p)
    if (Multiaddr.isEmpty(bare) || out.some((a) => Multiaddr.equals(a, bare))) continue
    out.push(bare)
  }
  return out
}

export const make = Effect.fnUntraced(function*(options: PeerDiscoveryOptions = {}) {
  const identity = yield* Identity
  const maxAddrs = clampInt(options.maxAddrsPerPeer, defaults.maxAddrsPerPeer, 1, 1024)
  const maxTracked = clampInt(options.maxTracked, defaults.maxTracked, 1, 1_000_000)
  const reannounce = Duration.toMillis(duration(options.reannounceAfter, defaults.reannounceAfter))
  const events = yield* PubSub.sliding<DiscoveredPeer>(EVENTS_BUFFER)
  yield* Effect.addFinalizer(() => PubSub.shutdown(events))
  /** `source peer` → the addresses last emitted and when; insertion order is age (a Map re-inserted on use). */
  const seen = new Map<string, { readonly addrs: string; readonly at: number }>()

  const announce = (peer: DiscoveredPeer): Effect.Effect<void> =>
    Effect.gen(function*() {
      if (PeerId.equals(peer.peerId, identity.peerId)) return
      const addrs = cleanAddrs(peer.peerId, peer.addrs, maxAddrs)
      if (addrs.length === 0) return
      const key = `${peer.source} ${PeerId.toString(peer.peerId)}`
      const text = addrs.map(Multiaddr.toString).sort().join(" ")
      const now = yield* Clock.currentTimeMillis
      const last = seen.get(key)
      if (last !== undefined && last.addrs === text && now - last.at < reannounce) return
      seen.delete(key)
      seen.set(key, { addrs: text, at: now })
      while (seen.size > maxTracked) seen.delete(seen.keys().next().value!)
      yield* PubSub.publish(events, { peerId: peer.peerId, addrs, source: peer.source })
    })

  return PeerDiscovery.of({
    announce,
    register: (peers) => Effect.asVoid(Effect.forkScoped(Stream.runForEach(peers, announce))),
    discovered: Stream.fromPubSub(events),
    subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription)
  })
})

/** The hub (needs the node's `Identity`, to drop itself). */
export const layer = (options?: PeerDiscoveryOptions) => Layer.effect(PeerDiscovery, make(options))

export interface ConnectOptions {
  /** Dial discovered peers while fewer than this many peers are connected (default 50; 0: never dial). */
  readonly minConnections?: number | undefined
  /** Dials in flight at once (default 8). */
  readonly maxConcurrentDials?: number | undefined
  /** Told of each failed dial (default: a debug log line). */
  readonly onDialFailure?:
    | ((peer: DiscoveredPeer, error: { readonly message: string }) => Effect.Effect<void>)
    | undefined
}

export const connectDefaults = { minConnections: 50, maxConcurrentDials: 8 } as const

/** The number of distinct peers with an open connection. */
export const connectedPeers = (host: Host["Service"]): number => {
  const peers = new Set<string>()
  for (const c of host.connections()) peers.add(PeerId.toString(c.remotePeer))
  return peers.size
}

/**
 * Feed the peer store and dial: run in a fiber of the current scope (see the
 * module doc). Subscribes before returning, so nothing announced after it
 * returns is missed.
 */
export const connect = (options: ConnectOptions = {}) =>
  Effect.gen(function*() {
    const discovery = yield* PeerDiscovery
    const host = yield* Host
    const peerstore = yield* Peerstore
    const min = clampInt(options.minConnections, connectDefaults.minConnections, 0, 1_000_000)
    const concurrency = clampInt(options.maxConcurrentDials, connectDefaults.maxConcurrentDials, 1, 256)
    const onFailure = options.onDialFailure ??
      ((p: DiscoveredPeer, e: { readonly message: string }) =>
        Effect.logDebug(`discovery: dial ${PeerId.toString(p.peerId)} (${p.source}) failed: ${e.message}`))
    const stream = yield* discovery.subscribe
    const handle = (peer: DiscoveredPeer) =>
      Effect.gen(function*() {
        yield* peerstore.merge(peer.peerId, { addrs: peer.addrs, addrSource: "routing" })
        if (host.connections(peer.peerId).length > 0 || connectedPeers(host) >= min) return
        yield* host.dial(peer.peerId).pipe(Effect.catch((e) => onFailure(peer, e)))
      })
    yield* Effect.forkScoped(Stream.runDrain(Stream.mapEffect(stream, handle, { concurrency, unordered: true })))
  })

/** {@link connect} as a Layer (needs PeerDiscovery, Host, Peerstore). */
export const layerConnect = (options?: ConnectOptions) => Layer.effectDiscard(connect(options))
