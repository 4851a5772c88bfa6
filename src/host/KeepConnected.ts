/**
 * Keep a connection to one address open (the CLI's `--bootstrap`, ARCHITECTURE.md §7):
 * dial it, protect and tag its peer in the {@link ConnectionManager} so trimming
 * keeps its connections, and when the peer's last connection closes, dial
 * again; a failed dial is retried after a backoff that doubles up to
 * `maxBackoff` and starts over after a success. When the scope closes the
 * protection and tag are removed (the Host writes that to the peer store too),
 * so a peer dropped from the bootstrap list is not protected forever.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Stream } from "effect"
import type * as Scope from "effect/Scope"
import type { ConnectionManager } from "../connection/ConnectionManager.ts"
import type * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import { duration } from "../internal/options.ts"
import type { DialError, Host } from "./Host.ts"

/** The protection and tag name given to kept peers. */
export const TAG = "keep-connected"
/** The tag's value: a kept peer outranks peers with ordinary tags when trimming picks among unprotected ones. */
export const TAG_VALUE = 100

export interface KeepConnectedOptions {
  /** Wait before the first retry of a failed dial (default 1 s). */
  readonly initialBackoff?: Duration.Input
  /** The longest wait between retries (default 60 s). */
  readonly maxBackoff?: Duration.Input
  /** Told of each failed dial (default: a debug log line). */
  readonly onDialFailure?: (error: DialError) => Effect.Effect<void>
}

export const defaults = { initialBackoff: Duration.seconds(1), maxBackoff: Duration.seconds(60) } as const

/** Resolves when `peer` has no open connection (subscribed before looking, so no close is missed). */
const disconnected = (host: Host["Service"], peer: PeerId.PeerId) =>
  Effect.scoped(Effect.gen(function*() {
    const events = yield* host.subscribe
    if (host.connections(peer).length === 0) return
    yield* events.pipe(
      Stream.filter((e) => e._tag === "PeerDisconnect" && PeerId.equals(e.peerId, peer)),
      Stream.take(1),
      Stream.runDrain
    )
  }))

/** Keep `addr` connected in a fiber of the current scope (it stops when the scope closes). */
export const keepConnected = (
  host: Host["Service"],
  connectionManager: ConnectionManager["Service"],
  addr: Multiaddr.Multiaddr,
  options: KeepConnectedOptions = {}
): Effect.Effect<void, never, Scope.Scope> => {
  const initial = Duration.toMillis(duration(options.initialBackoff, defaults.initialBackoff))
  const max = Duration.toMillis(duration(options.maxBackoff, defaults.maxBackoff))
  const onFailure = options.onDialFailure ??
    ((e: DialError) => Effect.logDebug(`keep-connected: dial failed: ${e.message}`))
  let kept: PeerId.PeerId | undefined
  const release = Effect.suspend(() =>
    kept === undefined
      ? Effect.void
      : Effect.andThen(connectionManager.unprotect(kept, TAG), connectionManager.untagPeer(kept, TAG))
  )
  const loop = Effect.gen(function*() {
    let backoff = initial
    while (true) {
      const result = yield* Effect.result(host.dial(addr))
      if (result._tag === "Failure") {
        yield* onFailure(result.failure)
        yield* Effect.sleep(Duration.millis(backoff))
        backoff = Math.min(backoff * 2, max)
        continue
      }
      backoff = initial
      const peer = result.success.remotePeer
      kept = peer
      yield* connectionManager.protect(peer, TAG)
      yield* connectionManager.tagPeer(peer, TAG, TAG_VALUE)
      yield* disconnected(host, peer)
    }
  })
  return Effect.andThen(Effect.addFinalizer(() => release), Effect.asVoid(Effect.forkScoped(loop)))
}
