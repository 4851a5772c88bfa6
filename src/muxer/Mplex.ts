/**
 * mplex (`/mplex/6.7.0`), the libp2p mplex spec
 * (https://github.com/libp2p/specs/blob/master/mplex/README.md): a
 * {@link StreamMuxer.StreamMuxer} that runs many streams over one Duplex,
 * without flow control.
 *
 * - §Message format: `uvarint(id << 3 | flag) · uvarint(length) · data`;
 *   §Flag Values NewStream 0, MessageReceiver 1, MessageInitiator 2,
 *   CloseReceiver 3, CloseInitiator 4, ResetReceiver 5, ResetInitiator 6.
 * - §Opening a new stream: the session initiator (outbound) allocates odd
 *   ids, the receiver even ids; NewStream carries the stream's name (we send
 *   its id in decimal; names we receive are skipped). Ids are scoped by the
 *   stream's initiator, so the peer may use the same numbers as we do.
 * - §Writing to a stream: messages of at most `maxMessageSize` (1 MiB, as
 *   go-mplex and js-libp2p) are accepted — a larger one is a protocol error
 *   that ends the session; we send data frames of at most `maxFrameSize`.
 * - §Closing a stream: half-close per direction; reads return the data sent
 *   before the Close, then EOF; writing after our Close fails.
 * - §Resetting a stream: reads and writes fail with
 *   `DuplexError { reason: "Reset" }`, queued data is dropped.
 * - §Implementation notes: mplex has no back pressure. The spec lets a
 *   muxer block the connection until a slow stream is read, or reset the
 *   stream; we do both, as go-mplex does: a message that would take a
 *   stream's unread data past `maxStreamBuffer` (4 MiB, js-libp2p's
 *   per-stream read buffer) stops reading the connection (TCP then pushes
 *   back on the sender) until the application reads that stream, for at most
 *   `slowReaderTimeout` (5 s, go-mplex's ReceiveTimeout); then the stream is
 *   reset, its message dropped, and the session carries on. Unread data is
 *   therefore never more than `maxStreamBuffer` per stream.
 *
 * Limits the spec leaves open: inbound streams beyond `maxInboundStreams`
 * are refused with Reset, `open` fails with `TooManyStreams` beyond
 * `maxOutboundStreams`; frames for unknown streams are ignored (those for
 * recently closed streams silently), but more than
 * `maxUnknownFramesPerSecond` of them in one second end the session.
 *
 * Session end (mplex has no GoAway): closing the session's scope, `close`,
 * the remote's EOF or a protocol error reset every open stream (a Reset
 * frame each) and half-close the Duplex; `closed` fails with
 * `MuxerError { reason: "ProtocolError" }` when the peer broke the protocol
 * (bad varint, flag 7, a message over the limit, NewStream reusing an open
 * id, the connection ending inside a frame) and with `Io` when the Duplex
 * failed.
 *
 * @since 0.1.0
 */
import { Duration, type Effect, type Scope } from "effect"
import type * as Duplex from "../core/Duplex.ts"
import * as Options from "./internal/options.ts"
import * as Frame from "./mplex/frame.ts"
import * as Session from "./mplex/session.ts"
import type * as StreamMuxer from "./StreamMuxer.ts"

/** The multistream-select protocol id. */
export const PROTOCOL = "/mplex/6.7.0"

export type MplexSession = Session.MplexSession

export interface MplexOptions {
  /** Largest message accepted from the peer; larger ends the session. Default (and at most) 1 MiB. */
  readonly maxMessageSize?: number
  /** Largest data frame we send; at most 1 MiB (what peers accept). Default 64 KiB. */
  readonly maxFrameSize?: number
  /** Unread bytes one stream may hold. Default 4 MiB (at least `maxMessageSize`). */
  readonly maxStreamBuffer?: number
  /**
   * How long reading the connection waits for a stream at `maxStreamBuffer` to be read before
   * resetting that stream; 0 resets at once (js-libp2p's behaviour). Default 5 seconds (go-mplex).
   */
  readonly slowReaderTimeout?: Duration.Input
  /** Concurrent inbound streams; more are refused with Reset. Default 1024. */
  readonly maxInboundStreams?: number
  /** Concurrent outbound streams; `open` fails with `TooManyStreams` beyond. Default 1024. */
  readonly maxOutboundStreams?: number
  /** Frames for streams that never existed tolerated per second; more end the session. Default 1024. */
  readonly maxUnknownFramesPerSecond?: number
  /** How long closing waits to flush the resets before resetting the Duplex. Default 5 seconds. */
  readonly closeTimeout?: Duration.Input
  /** Bytes of data queued for the writer beyond which stream writes wait. Default 1 MiB. */
  readonly writeHighWater?: number
}

export const defaults = {
  maxMessageSize: Frame.MAX_MESSAGE_SIZE,
  maxFrameSize: 64 * 1024,
  maxStreamBuffer: 4 * 1024 * 1024,
  slowReaderTimeout: Duration.seconds(5),
  maxInboundStreams: 1024,
  maxOutboundStreams: 1024,
  maxUnknownFramesPerSecond: 1024,
  closeTimeout: Duration.seconds(5),
  writeHighWater: 1024 * 1024
} as const

/**
 * The effective configuration for `options`: defaults filled in, values
 * clamped (message and frame sizes within [1 KiB, 1 MiB], the stream buffer
 * at least one message, limits at least 0 or 1).
 */
export const resolve = (options: MplexOptions = {}): Session.Config => {
  const maxMessageSize = Options.clampInt(
    options.maxMessageSize,
    defaults.maxMessageSize,
    1024,
    Frame.MAX_MESSAGE_SIZE
  )
  return {
    ...Options.resolveCommon(options, defaults, Frame.MAX_MESSAGE_SIZE),
    maxMessageSize,
    maxStreamBuffer: Options.atLeast(options.maxStreamBuffer, defaults.maxStreamBuffer, maxMessageSize),
    slowReaderTimeout: Options.duration(options.slowReaderTimeout, defaults.slowReaderTimeout),
    maxUnknownFramesPerSecond: Options.atLeast(
      options.maxUnknownFramesPerSecond,
      defaults.maxUnknownFramesPerSecond,
      0
    )
  }
}

/**
 * Run an mplex session over `duplex` in the current scope. `direction`
 * "outbound" is the session initiator (odd stream ids), "inbound" the
 * receiver (even ids).
 */
export const session = (
  duplex: Duplex.Duplex,
  direction: StreamMuxer.Direction,
  options?: MplexOptions
): Effect.Effect<MplexSession, never, Scope.Scope> => Session.make(duplex, direction, resolve(options))

/** An mplex StreamMuxer with the given options. */
export const make = (options?: MplexOptions): StreamMuxer.StreamMuxer => {
  const config = resolve(options)
  return {
    protocol: PROTOCOL,
    create: (duplex, { direction }) => Session.make(duplex, direction, config)
  }
}

/** The mplex StreamMuxer with default options. */
export const mplex: StreamMuxer.StreamMuxer = make()
