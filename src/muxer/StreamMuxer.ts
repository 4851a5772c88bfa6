/**
 * The StreamMuxer contract (libp2p connections spec §Stream multiplexing):
 * many independent, flow-controlled byte streams over one secured Duplex.
 * Implementations: Yamux (`/yamux/1.0.0`) and mplex (`/mplex/6.7.0`).
 *
 * A `MuxedSession` lives in the scope it was created in: closing that scope
 * resets every open stream and closes the underlying Duplex. Each stream lives
 * in the scope it was opened or accepted in: when that scope closes, a stream
 * that has not finished in both directions is reset.
 *
 * @since 0.1.0
 */
import type { Context, Effect, Scope } from "effect"
import { Schema } from "effect"
import type * as Duplex from "../core/Duplex.ts"

export const MuxerErrorReason = Schema.Literals([
  "ProtocolError", // a frame broke the protocol (bad version, window overflow, unknown stream …)
  "GoAway", // the remote sent GoAway (or we did): no new streams
  "Closed", // the session is closed
  "TooManyStreams", // a stream limit was reached
  "Timeout", // keep-alive ping timed out
  "Io" // the underlying Duplex failed
])
export type MuxerErrorReason = typeof MuxerErrorReason.Type

export class MuxerError extends Schema.TaggedError<MuxerError>()("MuxerError", {
  reason: MuxerErrorReason,
  message: Schema.String,
  /** The lower failure (an `Io` error's `DuplexError`), if any. */
  cause: Schema.optional(Schema.Defect())
}) {}

export type Direction = "inbound" | "outbound"

export interface MuxedStream extends Duplex.Duplex {
  /** Muxer-specific stream id (as a string, for logs). */
  readonly id: string
  readonly direction: Direction
  /**
   * Data bytes received and sent on this stream so far (payload, not frame
   * headers): plain counters the muxer keeps, read at scrape time for the
   * per-protocol byte metrics. Optional for muxers that do not count.
   */
  readonly bytes?: () => StreamBytes
}

/** A stream's data byte totals. */
export interface StreamBytes {
  readonly read: number
  readonly written: number
}

export interface MuxedSession {
  /** Open a new outbound stream, owned by the current scope. */
  readonly open: Effect.Effect<MuxedStream, MuxerError, Scope.Scope>
  /** The next inbound stream, owned by the current scope. Fails once the session is closed. */
  readonly accept: Effect.Effect<MuxedStream, MuxerError, Scope.Scope>
  /**
   * Optional: call `notify` once, when `accept` has something to return — an
   * inbound stream is queued or the session has ended — at once if it has now.
   * Called from the session's reader (after its state is consistent); `notify`
   * must not block. For a consumer that keeps no fiber parked on `accept`
   * while the connection is idle (the connection runtime: one fiber fewer per
   * idle connection). Notice only: `accept` may still wait (mplex drops a
   * queued stream that is reset before it is accepted). A method: call it on
   * the session (yamux keeps it on its prototype).
   */
  whenAcceptable?(notify: () => void): void
  /** Graceful close: send GoAway (or equivalent), refuse new streams, reset the rest and close. */
  readonly close: Effect.Effect<void>
  /** Waits until the session has ended; fails with the reason when it ended on an error. */
  readonly closed: Effect.Effect<void, MuxerError>
  /** Streams currently open. */
  readonly streamCount: () => number
}

/**
 * Memory a muxer holds beyond what was reserved for a stream when it opened
 * (yamux: a receive window grown past the initial one), reserved
 * synchronously with the connection's resource scope: `reserve` says whether
 * a limit allows it (when not, the muxer does not grow), `release` gives it
 * back (a window shrunk, a stream closed). Whatever is still reserved when
 * the connection ends is given back with it.
 */
export interface MemoryBudget {
  readonly reserve: (bytes: number) => boolean
  readonly release: (bytes: number) => void
}

export interface StreamMuxer {
  /** The multistream-select protocol id, e.g. "/yamux/1.0.0". */
  readonly protocol: string
  readonly create: (
    duplex: Duplex.Duplex,
    options: {
      readonly direction: Direction
      readonly memory?: MemoryBudget | undefined
      /**
       * The services the session's own fibers (reader, writers) run with. A
       * connection's upgrader passes the node's, so that an idle session
       * holds no copy of the context it was created in (a span omitted from
       * that context flattens it into a new map: ~0.9 KiB per connection).
       * Default: the creating fiber's services, without its span.
       */
      readonly services?: Context.Context<never> | undefined
    }
  ) => Effect.Effect<MuxedSession, never, Scope.Scope>
}
