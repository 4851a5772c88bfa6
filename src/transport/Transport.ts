/**
 * The Transport contract (libp2p connections spec §Transports): dial a
 * multiaddr to a raw byte stream, or listen on one and hand each inbound raw
 * connection to a handler. Implementations: Tcp, WebSocket, Unix, Memory.
 *
 * Everything is scoped. A dialed `RawConnection` is closed when the scope it
 * was dialed in closes; a `Listener` stops accepting and closes every
 * connection it accepted when the scope it was made in closes. Each inbound
 * connection has its own scope (a child of the listener's, owning the socket)
 * and runs `handler` in it, in its own supervised fiber; the connection is
 * closed when the handler ends (or fails, or is interrupted) — unless the
 * handler returns {@link KeepOpen}: then the connection outlives the handler
 * (no fiber waits for it) and its scope, the handler's second argument, is
 * closed by whoever the handler handed it to, when the socket closes, or with
 * the listener's scope, whichever comes first.
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Scope } from "effect"
import { Context, Layer, Schema } from "effect"
import type * as Duplex from "../core/Duplex.ts"
import type * as Multiaddr from "../core/Multiaddr.ts"

export const TransportErrorReason = Schema.Literals([
  "Unsupported", // this transport does not handle the address
  "Refused", // the remote refused (ECONNREFUSED)
  "Timeout", // the dial ran past its deadline
  "Unreachable", // no route / host down / DNS failure
  "AddressInUse", // listen: EADDRINUSE
  "Io" // any other socket error
])
export type TransportErrorReason = typeof TransportErrorReason.Type

export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  reason: TransportErrorReason,
  address: Schema.String,
  message: Schema.String,
  /** The socket's own error (a Node system error with its `code`), when there was one. */
  cause: Schema.optional(Schema.Defect())
}) {}

/** A raw (not yet secured) connection. */
export interface RawConnection {
  readonly duplex: Duplex.Duplex
  readonly remoteAddr: Multiaddr.Multiaddr
  readonly localAddr: Multiaddr.Multiaddr
  /**
   * Bytes moved on the wire so far, when the transport counts them anyway
   * (a `node:net` socket's `bytesRead`/`bytesWritten`): read at status and
   * scrape time, nothing is counted per chunk for it.
   */
  readonly bytes?: () => ByteCounts
  /**
   * Set on a limited connection (a relayed one whose relay announced limits,
   * circuit-v2.md §Reservation `Limit`): the relay cuts it after `data` bytes
   * in either direction or `durationMs`, whichever comes first (an absent
   * field is unlimited). Undefined on a direct connection. The Upgrader
   * copies it onto the `Connection`.
   */
  readonly limits?: ConnectionLimits | undefined
}

/** What a relay allows a limited connection: absent fields are unlimited. */
export interface ConnectionLimits {
  /** Bytes in each direction. */
  readonly data?: bigint | undefined
  /** Lifetime in milliseconds. */
  readonly durationMs?: number | undefined
}

export interface ByteCounts {
  readonly read: number
  readonly written: number
}

export interface Listener {
  /** The addresses actually bound (port 0 resolved to the real port). */
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

/**
 * Returned by a listen {@link Handler} that hands its connection over: the
 * connection stays open after the handler ends, until its scope is closed.
 */
export const KeepOpen: unique symbol = Symbol.for("effect-libp2p/Transport/KeepOpen")
export type KeepOpen = typeof KeepOpen

/**
 * What a listener runs for each inbound connection, in the connection's scope
 * (also given as `scope`, closeable, for a handler that returns
 * {@link KeepOpen} to hand over). Any other result is ignored.
 */
export type Handler = (
  conn: RawConnection,
  scope: Scope.Closeable
) => Effect.Effect<unknown, never, Scope.Scope>

export interface DialOptions {
  /** Deadline for the transport-level dial (default: the transport's own). */
  readonly timeout?: Duration.Input
  /**
   * Dial from the port a listener of this transport is bound to (TCP with
   * `reusePort`: the socket is bound to the listening port with SO_REUSEPORT),
   * so the remote sees the address we listen on — what a TCP simultaneous open
   * through NATs (DCUtR hole punching) needs. A transport that cannot fails
   * the dial with `Unsupported`.
   */
  readonly fromListenPort?: boolean
}

export interface Transport {
  /** A short name for logs and metrics ("tcp", "ws", "memory" …). */
  readonly name: string
  /** True when this transport can dial `addr` (ignoring a trailing /p2p/…). */
  readonly canDial: (addr: Multiaddr.Multiaddr) => boolean
  /** True when this transport can listen on `addr`. */
  readonly canListen: (addr: Multiaddr.Multiaddr) => boolean
  readonly dial: (
    addr: Multiaddr.Multiaddr,
    options?: DialOptions
  ) => Effect.Effect<RawConnection, TransportError, Scope.Scope>
  readonly listen: (
    addr: Multiaddr.Multiaddr,
    handler: Handler
  ) => Effect.Effect<Listener, TransportError, Scope.Scope>
}

/**
 * The transports a node uses, in preference order. Swapping or adding a
 * transport is providing another `Transports` layer.
 */
export class Transports extends Context.Service<Transports, ReadonlyArray<Transport>>()("effect-libp2p/Transports") {}

/** The transports, in preference order, as a layer. */
export const layer = (transports: ReadonlyArray<Transport>): Layer.Layer<Transports> =>
  Layer.succeed(Transports, transports)
