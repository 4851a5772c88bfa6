/**
 * Bootstrap peers (issue 18 part 2; go-libp2p `config.Bootstrap` + kad-dht's
 * `BootstrapPeers`, js-libp2p `@libp2p/bootstrap`): a fixed list of
 * addresses, each ending in `/p2p/<peer id>`, announced to the
 * {@link PeerDiscovery} hub (source `"bootstrap"`) and dialed at start.
 *
 * Each address has a fiber of its own. While the node has fewer than
 * `minConnections` connected peers (default: unbounded, i.e. every bootstrap
 * peer is kept connected) and none to this one, it dials; a failed dial is
 * retried on a `Schedule`: exponential from `initialBackoff` (1 s), doubling,
 * capped at `maxBackoff` (60 s), with jitter, for as long as the peer is
 * still wanted. When connected (or when enough peers are), it waits for the
 * peer's disconnect or `checkInterval` (10 s), whichever comes first, and
 * looks again. A dialed bootstrap peer is protected and tagged
 * (`KeepConnected.TAG`) in the ConnectionManager so trimming keeps it; the
 * protection is removed when the scope closes.
 *
 * The Kad-DHT takes the same list as its `bootstrap` option (its first peers,
 * dialed by each refresh); any peer this module connects is identified and
 * enters the routing table through identify as every other connection does.
 *
 * @since 0.3.0
 */
import { Duration, Effect, Layer, Option, Schedule, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { ConnectionManager } from "../connection/ConnectionManager.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import type { DialError } from "../host/Host.ts"
import { Host } from "../host/Host.ts"
import * as KeepConnected from "../host/KeepConnected.ts"
import { duration } from "../internal/options.ts"
import { connectedPeers, DiscoveryError, PeerDiscovery } from "./PeerDiscovery.ts"

export const SOURCE = "bootstrap"

export interface BootstrapOptions {
  /** The bootstrap peers' addresses, each ending in `/p2p/<peer id>`. */
  readonly peers: ReadonlyArray<Multiaddr.Multiaddr>
  /** Dial while fewer than this many peers are connected (default: always, i.e. keep each bootstrap peer). */
  readonly minConnections?: number | undefined
  /** First retry delay after a failed dial (default 1 s). */
  readonly initialBackoff?: Duration.Input | undefined
  /** Longest retry delay (default 60 s). */
  readonly maxBackoff?: Duration.Input | undefined
  /** How often a satisfied peer is looked at again (default 10 s). */
  readonly checkInterval?: Duration.Input | undefined
  /** Told of each failed dial (default: a debug log line). */
  readonly onDialFailure?: ((addr: Multiaddr.Multiaddr, error: DialError) => Effect.Effect<void>) | undefined
}

export const defaults = {
  initialBackoff: Duration.seconds(1),
  maxBackoff: Duration.seconds(60),
  checkInterval: Duration.seconds(10)
} as const

/** The peer id of each address; a `DiscoveryError` (`Config`) for one without `/p2p/<id>`. */
export const parsePeers = (peers: ReadonlyArray<Multiaddr.Multiaddr>) =>
  Effect.forEach(peers, (addr) => {
    const id = Multiaddr.getPeerId(addr)
    const parsed = id === undefined ? undefined : PeerId.fromString(id)
    return parsed === undefined || parsed._tag === "Failure"
      ? Effect.fail(
        new DiscoveryError({
          source: SOURCE,
          reason: "Config",
          message: `bootstrap address ${Multiaddr.toString(addr)} has no valid /p2p/<peer id>`
        })
      )
      : Effect.succeed({ addr, peerId: parsed.success })
  })

/** The exponential backoff with jitter, capped: 1 s, 2 s, 4 s, … `max`. */
export const backoff = (initial: Duration.Duration, max: Duration.Duration) =>
  Schedule.min([Schedule.exponential(initial), Schedule.spaced(max)]).pipe(Schedule.jittered)

/** Run the bootstrap fibers in the current scope (see the module doc). */
export const start = (options: BootstrapOptions): Effect.Effect<
  void,
  DiscoveryError,
  Host | ConnectionManager | Scope.Scope
> =>
  Effect.gen(function*() {
    const host = yield* Host
    const connectionManager = yield* ConnectionManager
    const discovery = yield* Effect.serviceOption(PeerDiscovery)
    const peers = yield* parsePeers(options.peers)
    const min = options.minConnections ?? Infinity
    const initial = duration(options.initialBackoff, defaults.initialBackoff)
    const max = duration(options.maxBackoff, defaults.maxBackoff)
    const check = duration(options.checkInterval, defaults.checkInterval)
    const onFailure = options.onDialFailure ??
      ((addr: Multiaddr.Multiaddr, e: DialError) =>
        Effect.logDebug(`bootstrap: dial ${Multiaddr.toString(addr)} failed: ${e.message}`))
    if (Option.isSome(discovery)) {
      for (const p of peers) yield* discovery.value.announce({ peerId: p.peerId, addrs: [p.addr], source: SOURCE })
    }
    const kept = new Set<PeerId.PeerId>()
    yield* Effect.addFinalizer(() =>
      Effect.forEach(kept, (peer) =>
        Effect.andThen(
          connectionManager.unprotect(peer, KeepConnected.TAG),
          connectionManager.untagPeer(peer, KeepConnected.TAG)
        ), { discard: true })
    )
    const wanted = (peer: PeerId.PeerId) => host.connections(peer).length === 0 && connectedPeers(host) < min

    /** Resolves at the peer's disconnect or after `checkInterval`. */
    const waitForChange = (peer: PeerId.PeerId) =>
      Effect.scoped(Effect.gen(function*() {
        const events = yield* host.subscribe
        if (wanted(peer)) return
        yield* events.pipe(
          Stream.filter((e) => e._tag === "PeerDisconnect" && PeerId.equals(e.peerId, peer)),
          Stream.take(1),
          Stream.runDrain,
          Effect.timeoutOption(check)
        )
      }))

    const keep = (addr: Multiaddr.Multiaddr, peer: PeerId.PeerId) =>
      Effect.gen(function*() {
        while (true) {
          if (wanted(peer)) {
            const dialed = yield* host.dial(addr).pipe(
              Effect.tapError((e) => onFailure(addr, e)),
              Effect.retry({ schedule: backoff(initial, max), while: () => wanted(peer) }),
              Effect.option
            )
            if (Option.isSome(dialed) && !kept.has(peer)) {
              kept.add(peer)
              yield* connectionManager.protect(peer, KeepConnected.TAG)
              yield* connectionManager.tagPeer(peer, KeepConnected.TAG, KeepConnected.TAG_VALUE)
            }
          }
          yield* waitForChange(peer)
        }
      })
    for (const p of peers) yield* Effect.forkScoped(keep(p.addr, p.peerId))
  })

/** {@link start} as a Layer (needs Host and ConnectionManager; announces to PeerDiscovery when there is one). */
export const layer = (options: BootstrapOptions) => Layer.effectDiscard(start(options))
