/**
 * Connection and Stream: what an upgraded connection looks like to the rest of
 * the node (libp2p connections spec §Connections and §Streams).
 *
 * A `Connection` is a secured, multiplexed link to one remote peer. It lives in
 * a Scope owned by the Host: closing that scope (or calling `close`) resets its
 * streams and closes its socket. A `Stream` is a muxed Duplex on which a
 * protocol was negotiated; it lives in the scope it was opened or accepted in.
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import { Schema } from "effect"
import * as Duplex from "../core/Duplex.ts"
import type * as Keys from "../core/Keys.ts"
import type * as Multiaddr from "../core/Multiaddr.ts"
import type * as PeerId from "../core/PeerId.ts"
import * as Multistream from "../multistream/Multistream.ts"
import type { Direction } from "../muxer/StreamMuxer.ts"
import * as StreamMuxer from "../muxer/StreamMuxer.ts"
import type { ConnectionLimits } from "../transport/Transport.ts"
import { LimitExceeded } from "./Limits.ts"

export type { ConnectionLimits, Direction }

export const ConnectionErrorReason = Schema.Literals([
  "Closed", // the connection is closed or closing
  "Negotiation", // multistream-select found no common protocol
  "Muxer", // the muxer refused or failed to open a stream
  "Timeout", // the stream did not open in time
  "LimitExceeded" // the resource manager refused the stream (the `cause` says which scope and resource)
])
export type ConnectionErrorReason = typeof ConnectionErrorReason.Type

/**
 * Why a stream could not be opened. `reason` says which step; `cause` keeps
 * the lower error as it is: `LimitExceeded` (its `scope`, `resource` and
 * `limit`), the muxer's `MuxerError`, the negotiation's `MultistreamError`
 * (or the stream's `DuplexError`).
 */
export class ConnectionError extends Schema.TaggedError<ConnectionError>()("ConnectionError", {
  reason: ConnectionErrorReason,
  message: Schema.String,
  cause: Schema.optional(
    Schema.Union([LimitExceeded, StreamMuxer.MuxerError, Multistream.MultistreamError, Duplex.DuplexError])
  )
}) {}

/** A negotiated stream. */
export interface Stream extends Duplex.Duplex {
  /** The protocol negotiated for this stream. */
  readonly protocol: string
  readonly id: string
  readonly direction: Direction
}

/**
 * Why a connection ended, as a bounded label: `local` (we closed it),
 * `remote` (the remote closed it: EOF, GoAway, or a reset of the connection,
 * e.g. a TCP RST from a remote that closed with bytes of ours unread),
 * `error` (the muxer or the transport failed otherwise), `timeout` (the muxer's keep-alive timed out), `trimmed`
 * (the connection manager closed it), `limit` (a limit closed it: the muxer's
 * stream limit, which a remote that keeps opening refused streams runs into).
 */
export const CloseReason = Schema.Literals(["local", "remote", "error", "timeout", "trimmed", "limit"])
export type CloseReason = typeof CloseReason.Type

/** The close reason of a session that ended on `error` (we did not close it first). */
export const closeReasonOf = (error: StreamMuxer.MuxerError): CloseReason => {
  switch (error.reason) {
    case "Closed":
    case "GoAway":
      return "remote"
    case "Timeout":
      return "timeout"
    case "TooManyStreams":
      return "limit"
    case "Io":
      return error.cause instanceof Duplex.DuplexError && error.cause.reason === "Reset" ? "remote" : "error"
    default:
      return "error"
  }
}

/** Data byte totals, added to as streams are read at scrape time. */
export interface ByteTotals {
  read: number
  written: number
}

/** Add a stream's `bytes` into `into` under `key`. */
export const addBytes = (
  into: Map<string, ByteTotals>,
  key: string,
  bytes: StreamMuxer.StreamBytes | undefined
): void => {
  if (bytes === undefined) return
  const t = into.get(key)
  if (t === undefined) into.set(key, { read: bytes.read, written: bytes.written })
  else {
    t.read += bytes.read
    t.written += bytes.written
  }
}

export interface NewStreamOptions {
  /** Skip waiting for the remote's confirmation when only one protocol is offered (lazy select). Default true. */
  readonly lazy?: boolean
}

export interface Connection {
  /** Unique within this node, for logs and bookkeeping. */
  readonly id: string
  readonly remotePeer: PeerId.PeerId
  readonly remotePublicKey: Keys.PublicKey
  readonly remoteAddr: Multiaddr.Multiaddr
  readonly localAddr: Multiaddr.Multiaddr
  readonly direction: Direction
  /** Security protocol id, e.g. "/noise". */
  readonly security: string
  /** Muxer protocol id, e.g. "/yamux/1.0.0". */
  readonly muxer: string
  /**
   * Present on a **limited** connection (a relayed one whose relay announced
   * a data or duration limit, circuit-v2.md §Reservation `Limit`), undefined
   * on a direct one: protocols that move much data or live long should not
   * use it. A relayed connection is recognised by its `remoteAddr`, which
   * contains `/p2p-circuit` (`<relay addr>/p2p/<relay>/p2p-circuit/p2p/<remote>`).
   */
  readonly limits?: ConnectionLimits | undefined
  /** Clock time (ms) when the upgrade finished. */
  readonly openedAt: number
  /** Open a stream and negotiate one of `protocols` (in preference order). The stream lives in the current scope. */
  readonly newStream: (
    protocols: ReadonlyArray<string>,
    options?: NewStreamOptions
  ) => Effect.Effect<Stream, ConnectionError, Scope.Scope>
  /** Streams currently open on this connection. */
  readonly streamCount: () => number
  /** Bytes moved on the wire so far, when the transport counts them (TCP, Unix); undefined otherwise. */
  readonly bytes: () => { readonly read: number; readonly written: number } | undefined
  /** The negotiated streams open now (protocol, direction), for status pages and metrics. */
  readonly streams: () => ReadonlyArray<Stream>
  /** Close the connection: reset its streams, close the socket. Idempotent. */
  readonly close: Effect.Effect<void>
  /** `close`, naming why (the first reason given, or the end's own, is the one kept). */
  readonly closeWith?: (reason: CloseReason) => Effect.Effect<void>
  /** Why the connection ended (undefined while it is open). */
  readonly closeReason?: () => CloseReason | undefined
  /**
   * Add the data bytes of the streams open now to `into`, keyed by protocol
   * label (the protocol when registered, else "other"); metrics read it at
   * scrape time.
   */
  readonly streamBytes?: (into: Map<string, ByteTotals>) => void
  /** Resolves when the connection has closed, for whatever reason. */
  readonly closed: Effect.Effect<void>
  /** True once the connection is closing or closed. */
  readonly isClosed: () => boolean
}
