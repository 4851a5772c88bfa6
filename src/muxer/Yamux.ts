/**
 * Yamux (`/yamux/1.0.0`), the libp2p yamux spec
 * (https://github.com/libp2p/specs/blob/master/yamux/README.md, a verbatim
 * copy of hashicorp/yamux spec.md): a {@link StreamMuxer.StreamMuxer} that runs
 * many flow-controlled streams over one Duplex.
 *
 * - §Framing: 12-byte big-endian header, version 0, types Data / WindowUpdate /
 *   Ping / GoAway, flags SYN / ACK / FIN / RST.
 * - §StreamID Field: the client (outbound session) opens odd stream ids, the
 *   server even ones; 0 is the session.
 * - §Opening / §Closing a stream: SYN on the first frame, ACK on the first
 *   frame we send on an inbound stream (the ACK-backlog section: never
 *   implicitly), FIN per direction, RST to abort.
 * - §Flow Control: per-stream windows starting at 256 KiB; ours is auto-tuned
 *   up to `maxStreamWindow` (16 MiB) when the reader keeps up within 4 RTTs,
 *   as go-yamux and js-libp2p-yamux do; a writer never exceeds the peer's
 *   window and suspends until a WindowUpdate arrives.
 * - §Session termination: GoAway with code 0 (normal: `close`, the scope
 *   closing, or the remote's EOF), 1 (a protocol violation by the peer) or 2
 *   (internal error: I/O failure, keep-alive timeout). After the remote's
 *   normal GoAway no new streams open either way and the session ends (cleanly)
 *   once its last stream has finished; an error GoAway ends it at once with
 *   `MuxerError { reason: "GoAway" }`.
 * - §ACK backlog: at most `maxUnackedInboundStreams` (256) inbound streams we
 *   have not acknowledged yet, more are refused with RST; `open` waits while
 *   `maxAckBacklog` (256) of our streams are unacknowledged by the peer.
 *
 * Protocol violations by the peer — a bad version or type, a window overflow,
 * a frame for a stream id that was never opened (frames for streams that were
 * closed are ignored), a SYN that reuses an id or has our parity, data after
 * FIN, a data frame larger than any window we grant, the connection ending
 * inside a frame — end the session with GoAway(1) and
 * `MuxerError { reason: "ProtocolError" }`.
 *
 * @since 0.1.0
 */
import { Duration, type Effect, type Scope } from "effect"
import type * as Duplex from "../core/Duplex.ts"
import * as Options from "./internal/options.ts"
import type * as StreamMuxer from "./StreamMuxer.ts"
import * as Frame from "./yamux/frame.ts"
import * as Session from "./yamux/session.ts"

/** The multistream-select protocol id (spec §Specification). */
export const PROTOCOL = "/yamux/1.0.0"

export type YamuxSession = Session.YamuxSession

export interface YamuxOptions {
  /** Receive window each stream starts with; at least 256 KiB (the spec's initial window). Default 256 KiB. */
  readonly initialStreamWindow?: number
  /** Largest receive window auto-tuning may grow to; at most 2^32 - 1. Default 16 MiB. */
  readonly maxStreamWindow?: number
  /** Concurrent inbound streams; more are refused with RST. Default 1024. */
  readonly maxInboundStreams?: number
  /** Concurrent outbound streams; `open` fails with `TooManyStreams` beyond. Default 1024. */
  readonly maxOutboundStreams?: number
  /** Inbound streams we have not yet acknowledged; more are refused with RST. Default 256 (spec: at least 256). */
  readonly maxUnackedInboundStreams?: number
  /** Our streams the peer has not acknowledged yet; `open` waits beyond. Default 256 (spec: at most 256). */
  readonly maxAckBacklog?: number
  /** Ping the peer periodically and close the session when it stops answering. Default true. */
  readonly enableKeepAlive?: boolean
  /** Keep-alive ping interval. Default 30 seconds. */
  readonly keepAliveInterval?: Duration.Input
  /** How long a keep-alive ping may go unanswered while nothing else arrives either. Default 10 seconds. */
  readonly pingTimeout?: Duration.Input
  /** Largest data frame payload we send. Default 256 KiB. */
  readonly maxFrameSize?: number
  /** How long closing waits to flush the GoAway before resetting the Duplex. Default 5 seconds. */
  readonly closeTimeout?: Duration.Input
  /** Bytes of data queued for the writer beyond which stream writes wait. Default 1 MiB. */
  readonly writeHighWater?: number
}

export const defaults = {
  initialStreamWindow: Frame.INITIAL_WINDOW,
  maxStreamWindow: 16 * 1024 * 1024,
  maxInboundStreams: 1024,
  maxOutboundStreams: 1024,
  maxUnackedInboundStreams: 256,
  maxAckBacklog: 256,
  enableKeepAlive: true,
  keepAliveInterval: Duration.seconds(30),
  pingTimeout: Duration.seconds(10),
  maxFrameSize: 256 * 1024,
  closeTimeout: Duration.seconds(5),
  writeHighWater: 1024 * 1024
} as const

/**
 * The effective configuration for `options`: defaults filled in, values
 * clamped to what the spec allows (windows within [256 KiB, 2^32 - 1], limits
 * at least 1).
 */
export const resolve = (options: YamuxOptions = {}): Session.Config => {
  const initialWindow = Options.clampInt(
    options.initialStreamWindow,
    defaults.initialStreamWindow,
    Frame.INITIAL_WINDOW,
    Frame.MAX_UINT32
  )
  return {
    ...Options.resolveCommon(options, defaults, Frame.MAX_UINT32),
    initialWindow,
    maxWindow: Options.clampInt(options.maxStreamWindow, defaults.maxStreamWindow, initialWindow, Frame.MAX_UINT32),
    maxUnackedInbound: Options.atLeast(options.maxUnackedInboundStreams, defaults.maxUnackedInboundStreams, 1),
    maxAckBacklog: Options.atLeast(options.maxAckBacklog, defaults.maxAckBacklog, 1),
    enableKeepAlive: options.enableKeepAlive ?? defaults.enableKeepAlive,
    keepAliveInterval: Options.duration(options.keepAliveInterval, defaults.keepAliveInterval),
    pingTimeout: Options.duration(options.pingTimeout, defaults.pingTimeout)
  }
}

/**
 * Run a yamux session over `duplex` in the current scope. `direction`
 * "outbound" is the client (odd stream ids), "inbound" the server.
 */
export const session = (
  duplex: Duplex.Duplex,
  direction: StreamMuxer.Direction,
  options?: YamuxOptions
): Effect.Effect<YamuxSession, never, Scope.Scope> => Session.make(duplex, direction, resolve(options))

/** A yamux StreamMuxer with the given options. */
export const make = (options?: YamuxOptions): StreamMuxer.StreamMuxer => {
  const config = resolve(options)
  return {
    protocol: PROTOCOL,
    create: (duplex, { direction, memory, services }) => Session.make(duplex, direction, config, memory, services)
  }
}

/** The yamux StreamMuxer with default options. */
export const yamux: StreamMuxer.StreamMuxer = make()
