/**
 * Upgrader: raw connection → secured → multiplexed `Connection`, per the
 * libp2p connections spec §Upgrading connections:
 *
 * 1. multistream-select the security protocol (dialer proposes in preference order);
 * 2. run the secure channel handshake (remote peer id checked against the dialed one);
 * 3. multistream-select the muxer over the secured channel — skipped when the
 *    handshake already agreed on one (Noise extensions / TLS ALPN, the
 *    inlined muxer negotiation spec);
 * 4. start the muxer session and hand it to the connection runtime
 *    (`UpgradedConnection.ts`): inbound streams negotiate their protocol with
 *    the Registrar's list and run the registered handler in a supervised fiber.
 *
 * The Connection lives in the Scope the upgrade ran in.
 *
 * Resource limits: given the connection's {@link ResourceManager.ConnectionScope},
 * the upgrade moves it to the remote peer's scope once the handshake named the
 * peer (refused with `LimitExceeded` beyond the peer's connection limit),
 * reserves the muxer's per-connection buffer, and every stream — inbound or
 * outbound — reserves a stream slot and its initial receive window before it
 * is negotiated, then moves to its protocol's scope. A stream beyond a limit
 * is reset (inbound) or refused with `ConnectionError { reason:
 * "LimitExceeded" }` (outbound). All of it is released when the stream's or
 * the connection's scope closes.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Schema, type Scope, Tracer } from "effect"
import * as Duplex from "../core/Duplex.ts"
import { Identity } from "../core/Identity.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Metrics from "../internal/metrics.ts"
import * as Spans from "../internal/spans.ts"
import * as Multistream from "../multistream/Multistream.ts"
import type * as StreamMuxer from "../muxer/StreamMuxer.ts"
import type * as SecureChannel from "../security/SecureChannel.ts"
import { SecurityError } from "../security/SecureChannel.ts"
import type * as Transport from "../transport/Transport.ts"
import type * as Connection from "./Connection.ts"
import * as ConnectionMetrics from "./metrics.ts"
import { Registrar } from "./Registrar.ts"
import type * as ResourceManager from "./ResourceManager.ts"
import * as UpgradedConnection from "./UpgradedConnection.ts"

export const UpgradeErrorReason = Schema.Literals([
  "SecurityNegotiation", // no common security protocol
  "Security", // the secure channel handshake failed
  "PeerIdMismatch", // the remote is not the peer we dialed
  "MuxerNegotiation", // no common muxer
  "Timeout", // the whole upgrade ran past its deadline
  "Closed" // the raw connection failed or ended during the upgrade
])
export type UpgradeErrorReason = typeof UpgradeErrorReason.Type

/**
 * Why an upgrade failed. `reason` says which step; `cause` keeps the lower
 * error as it is: the `MultistreamError` (or the stream's `DuplexError`) of a
 * negotiation, the secure channel's `SecurityError` (e.g. Noise's `Decrypt`,
 * `InvalidSignature`, `PeerIdMismatch`). The message is the lower error's,
 * with the step named once by whoever reports it (`DialError`: `Security: …`).
 */
export class UpgradeError extends Schema.TaggedError<UpgradeError>()("UpgradeError", {
  reason: UpgradeErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Union([Multistream.MultistreamError, Duplex.DuplexError, SecurityError]))
}) {}

export interface UpgraderOptions {
  /** Secure channels in preference order (the dialer proposes them in this order). */
  readonly security: ReadonlyArray<SecureChannel.SecureChannel>
  /** Stream muxers in preference order. */
  readonly muxers: ReadonlyArray<StreamMuxer.StreamMuxer>
  /** Deadline for the whole upgrade (default 10 s). */
  readonly upgradeTimeout?: Duration.Input
  /**
   * Deadline for negotiating a stream's protocol (default 5 s: an unnegotiated
   * stream holds a slot of the shared transient pool meanwhile).
   */
  readonly streamNegotiationTimeout?: Duration.Input
  /** Memory each stream reserves with the resource manager: the muxer's initial receive window (default 256 KiB). */
  readonly streamMemory?: number
  /** Memory each connection reserves with the resource manager: the muxer's write buffer (default 1 MiB). */
  readonly connectionMemory?: number
}

export interface UpgradeOptions {
  /** The connection's resource scope; without one nothing is accounted. */
  readonly resources?: ResourceManager.ConnectionScope
  /**
   * The scope the upgrade runs in (the current one), handed over to the
   * connection: it closes it when it ends (`close`, a remote close, an error),
   * so nobody has to wait on `closed` to do it. Without it, whoever owns the
   * current scope closes it (typically after `closed`).
   */
  readonly scope?: Scope.Closeable
  /**
   * Who negotiates as the initiator (multistream-select dialer, security
   * client, muxer initiator). By default the connection's direction decides:
   * outbound initiates. A TCP simultaneous open (DCUtR hole punching) makes
   * an outbound connection on both sides, so there the protocol that made it
   * names the role (DCUtR: the peer that received the relayed connection's
   * hole-punch stream is the initiator). The connection keeps its direction.
   */
  readonly role?: "initiator" | "responder"
}

export class Upgrader extends Context.Service<Upgrader, {
  readonly upgradeOutbound: (
    raw: Transport.RawConnection,
    options?: UpgradeOptions & { readonly remotePeer?: PeerId.PeerId }
  ) => Effect.Effect<Connection.Connection, UpgradeError | ResourceManager.LimitExceeded, Scope.Scope>
  readonly upgradeInbound: (
    raw: Transport.RawConnection,
    options?: UpgradeOptions
  ) => Effect.Effect<Connection.Connection, UpgradeError | ResourceManager.LimitExceeded, Scope.Scope>
  /** Data bytes of the streams that have ended on this node's connections, by protocol label (for metrics). */
  readonly closedStreamBytes: () => ReadonlyMap<string, Connection.ByteTotals>
}>()("effect-libp2p/Upgrader") {}

/** A failed negotiation step as an UpgradeError with `reason`, keeping the step's error as the cause. */
const asUpgradeError =
  (reason: UpgradeErrorReason) => (cause: Multistream.MultistreamError | Duplex.DuplexError | SecurityError) =>
    new UpgradeError({ reason, message: cause.message, cause })

export const make = (options: UpgraderOptions) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const registrar = yield* Registrar
    const upgradeTimeout = options.upgradeTimeout ?? Duration.seconds(10)
    const streamTimeout = options.streamNegotiationTimeout ?? Duration.seconds(5)
    const streamMemory = options.streamMemory ?? 256 * 1024
    const connectionMemory = options.connectionMemory ?? 1024 * 1024
    const securityIds = options.security.map((s) => s.protocol)
    const muxerIds = options.muxers.map((m) => m.protocol)
    const metrics = yield* Metrics.recorder

    const upgrade = (
      raw: Transport.RawConnection,
      direction: Connection.Direction,
      remotePeer: PeerId.PeerId | undefined,
      resources: ResourceManager.ConnectionScope | undefined,
      owned: Scope.Closeable | undefined,
      role: UpgradeOptions["role"]
    ): Effect.Effect<Connection.Connection, UpgradeError | ResourceManager.LimitExceeded, Scope.Scope> =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        const initiates = role === undefined ? direction === "outbound" : role === "initiator"
        const { channel, secured } = yield* Effect.gen(function*() {
          // 1. security protocol
          const sec = initiates
            ? yield* Multistream.select(raw.duplex, securityIds).pipe(
              Effect.mapError(asUpgradeError("SecurityNegotiation"))
            )
            : yield* Multistream.handle(raw.duplex, securityIds).pipe(
              Effect.mapError(asUpgradeError("SecurityNegotiation"))
            )
          const channel = options.security.find((s) => s.protocol === sec.protocol)!
          yield* Effect.annotateCurrentSpan("libp2p.security", channel.protocol)
          // 2. handshake
          const secureOptions: SecureChannel.SecureOptions = {
            localKey: identity.privateKey,
            muxers: muxerIds,
            ...(remotePeer !== undefined ? { remotePeer } : {})
          }
          const secured = yield* (initiates
            ? channel.secureOutbound(sec.duplex, secureOptions)
            : channel.secureInbound(sec.duplex, secureOptions)).pipe(
              Effect.mapError((e) => asUpgradeError(e.reason === "PeerIdMismatch" ? "PeerIdMismatch" : "Security")(e))
            )
          return { channel, secured }
        }).pipe(Spans.withSpan("libp2p.upgrade.security"))
        // the remote is known: the connection leaves the transient scope for the peer's
        if (resources !== undefined) {
          yield* resources.setPeer(secured.remotePeer)
          yield* resources.reserveMemory(connectionMemory)
        }
        // 3. muxer (early-negotiated, or multistream-select)
        const { muxer, session } = yield* Effect.gen(function*() {
          let muxerId = secured.muxer
          let muxDuplex: Duplex.Duplex = secured.duplex
          if (muxerId === undefined || !muxerIds.includes(muxerId)) {
            const m = initiates
              ? yield* Multistream.select(secured.duplex, muxerIds).pipe(
                Effect.mapError(asUpgradeError("MuxerNegotiation"))
              )
              : yield* Multistream.handle(secured.duplex, muxerIds).pipe(
                Effect.mapError(asUpgradeError("MuxerNegotiation"))
              )
            muxerId = m.protocol
            muxDuplex = m.duplex
          }
          const muxer = options.muxers.find((m) => m.protocol === muxerId)!
          yield* Effect.annotateCurrentSpan({
            "libp2p.muxer": muxer.protocol,
            "libp2p.muxer.early": muxDuplex === secured.duplex
          })
          // yamux's receive windows grow into the connection's (and peer's) memory limits
          return {
            muxer,
            session: yield* muxer.create(muxDuplex, {
              direction: initiates ? "outbound" : "inbound",
              memory: resources?.memory,
              services: shared.services
            })
          }
        }).pipe(Spans.withSpan("libp2p.upgrade.muxer"))
        const seconds = ((yield* Clock.currentTimeMillis) - started) / 1000
        metrics.update(ConnectionMetrics.handshakeDuration.with(direction, channel.protocol, muxer.protocol), seconds)
        yield* Effect.annotateCurrentSpan("libp2p.peer", PeerId.toString(secured.remotePeer))
        return { raw, direction, secured, security: channel.protocol, muxer: muxer.protocol, session, resources, owned }
      }).pipe(
        Effect.timeoutOrElse({
          duration: upgradeTimeout,
          orElse: () => Effect.fail(new UpgradeError({ reason: "Timeout", message: "connection upgrade timed out" }))
        }),
        Effect.tapError((e) => {
          metrics.update(ConnectionMetrics.handshakeFailures.with(direction, Metrics.kindOf(e)), 1)
          return raw.duplex.reset
        }),
        Spans.withSpan("libp2p.upgrade", { attributes: { "libp2p.direction": direction } }),
        // the connection's runtime (accept loop, inbound streams) is not part of the upgrade's span
        Effect.flatMap((args) => UpgradedConnection.make(shared, args))
      )

    // spans per inbound stream only when the node exports traces (Tracing.layerOtlp): they cost ~a span per stream
    const traced = (yield* Effect.tracer) !== Tracer.nativeTracer
    const closedStreamBytes = new Map<string, Connection.ByteTotals>()
    const shared: UpgradedConnection.Shared = {
      // the node's services, for the fibers that serve inbound streams (not those of
      // whichever fiber upgraded the connection: a dial's references stay with the dial)
      services: yield* Effect.context<never>(),
      registrar,
      streamTimeout,
      streamMemory,
      metrics,
      traced,
      closedStreamBytes
    }

    return Upgrader.of({
      upgradeOutbound: (raw, opts) =>
        upgrade(raw, "outbound", opts?.remotePeer, opts?.resources, opts?.scope, opts?.role),
      upgradeInbound: (raw, opts) => upgrade(raw, "inbound", undefined, opts?.resources, opts?.scope, opts?.role),
      closedStreamBytes: () => closedStreamBytes
    })
  })

export const layer = (options: UpgraderOptions) => Layer.effect(Upgrader, make(options))
