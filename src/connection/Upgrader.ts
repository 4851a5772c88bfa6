/**
 * Upgrader: raw connection → secured → multiplexed `Connection`, per the
 * libp2p connections spec §Upgrading connections:
 *
 * 1. multistream-select the security protocol (dialer proposes in preference order);
 * 2. run the secure channel handshake (remote peer id checked against the dialed one);
 * 3. multistream-select the muxer over the secured channel — skipped when the
 *    handshake already agreed on one (Noise extensions / TLS ALPN, the
 *    inlined muxer negotiation spec);
 * 4. start the muxer session; inbound streams negotiate their protocol with
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
import { Clock, Context, Deferred, Duration, Effect, Exit, FiberSet, Layer, Schema, Scope } from "effect"
import type * as Duplex from "../core/Duplex.ts"
import type * as PeerId from "../core/PeerId.ts"
import * as Multistream from "../multistream/Multistream.ts"
import type * as StreamMuxer from "../muxer/StreamMuxer.ts"
import type * as SecureChannel from "../security/SecureChannel.ts"
import type * as Transport from "../transport/Transport.ts"
import { Identity } from "../host/Identity.ts"
import { Registrar } from "../host/Registrar.ts"
import * as Connection from "./Connection.ts"
import type * as ResourceManager from "./ResourceManager.ts"

export const UpgradeErrorReason = Schema.Literals([
  "SecurityNegotiation", // no common security protocol
  "Security", // the secure channel handshake failed
  "PeerIdMismatch", // the remote is not the peer we dialed
  "MuxerNegotiation", // no common muxer
  "Timeout", // the whole upgrade ran past its deadline
  "Closed" // the raw connection failed or ended during the upgrade
])
export type UpgradeErrorReason = typeof UpgradeErrorReason.Type

export class UpgradeError extends Schema.TaggedError<UpgradeError>()("UpgradeError", {
  reason: UpgradeErrorReason,
  message: Schema.String
}) {}

export interface UpgraderOptions {
  /** Secure channels in preference order (the dialer proposes them in this order). */
  readonly security: ReadonlyArray<SecureChannel.SecureChannel>
  /** Stream muxers in preference order. */
  readonly muxers: ReadonlyArray<StreamMuxer.StreamMuxer>
  /** Deadline for the whole upgrade (default 10 s). */
  readonly upgradeTimeout?: Duration.Input
  /** Deadline for negotiating an inbound stream's protocol (default 10 s). */
  readonly streamNegotiationTimeout?: Duration.Input
  /** Memory each stream reserves with the resource manager: the muxer's initial receive window (default 256 KiB). */
  readonly streamMemory?: number
  /** Memory each connection reserves with the resource manager: the muxer's write buffer (default 1 MiB). */
  readonly connectionMemory?: number
}

export interface UpgradeOptions {
  /** The connection's resource scope; without one nothing is accounted. */
  readonly resources?: ResourceManager.ConnectionScope
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
}>()("effect-libp2p/Upgrader") {}

let nextConnectionId = 0

/** Map any failure of a negotiation step to an UpgradeError with `reason`. */
const asUpgradeError = (reason: UpgradeErrorReason) => (e: { readonly message: string; readonly _tag: string }) =>
  new UpgradeError({ reason, message: `${e._tag}: ${e.message}` })

export const make = (options: UpgraderOptions) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const registrar = yield* Registrar
    const upgradeTimeout = options.upgradeTimeout ?? Duration.seconds(10)
    const streamTimeout = options.streamNegotiationTimeout ?? Duration.seconds(10)
    const streamMemory = options.streamMemory ?? 256 * 1024
    const connectionMemory = options.connectionMemory ?? 1024 * 1024
    const securityIds = options.security.map((s) => s.protocol)
    const muxerIds = options.muxers.map((m) => m.protocol)

    const upgrade = (
      raw: Transport.RawConnection,
      direction: Connection.Direction,
      remotePeer: PeerId.PeerId | undefined,
      resources: ResourceManager.ConnectionScope | undefined
    ): Effect.Effect<Connection.Connection, UpgradeError | ResourceManager.LimitExceeded, Scope.Scope> =>
      Effect.gen(function*() {
        // 1. security protocol
        const sec = direction === "outbound"
          ? yield* Multistream.select(raw.duplex, securityIds).pipe(
            Effect.mapError(asUpgradeError("SecurityNegotiation"))
          )
          : yield* Multistream.handle(raw.duplex, securityIds).pipe(
            Effect.mapError(asUpgradeError("SecurityNegotiation"))
          )
        const channel = options.security.find((s) => s.protocol === sec.protocol)!
        // 2. handshake
        const secureOptions: SecureChannel.SecureOptions = {
          localKey: identity.privateKey,
          muxers: muxerIds,
          ...(remotePeer !== undefined ? { remotePeer } : {})
        }
        const secured = yield* (direction === "outbound"
          ? channel.secureOutbound(sec.duplex, secureOptions)
          : channel.secureInbound(sec.duplex, secureOptions)).pipe(
            Effect.mapError((e) =>
              new UpgradeError({
                reason: e.reason === "PeerIdMismatch" ? "PeerIdMismatch" : "Security",
                message: `${channel.protocol}: ${e.reason}: ${e.message}`
              })
            )
          )
        // the remote is known: the connection leaves the transient scope for the peer's
        if (resources !== undefined) {
          yield* resources.setPeer(secured.remotePeer)
          yield* resources.reserveMemory(connectionMemory)
        }
        // 3. muxer (early-negotiated, or multistream-select)
        let muxerId = secured.muxer
        let muxDuplex: Duplex.Duplex = secured.duplex
        if (muxerId === undefined || !muxerIds.includes(muxerId)) {
          const m = direction === "outbound"
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
        const session = yield* muxer.create(muxDuplex, { direction })
        return yield* makeConnection({
          raw,
          direction,
          secured,
          security: channel.protocol,
          muxer: muxer.protocol,
          session,
          resources
        })
      }).pipe(
        Effect.timeoutOrElse({
          duration: upgradeTimeout,
          orElse: () =>
            Effect.fail(new UpgradeError({ reason: "Timeout", message: "connection upgrade timed out" }))
        }),
        Effect.tapError(() => raw.duplex.reset)
      )

    const makeConnection = (args: {
      readonly raw: Transport.RawConnection
      readonly direction: Connection.Direction
      readonly secured: SecureChannel.SecuredConnection
      readonly security: string
      readonly muxer: string
      readonly session: StreamMuxer.MuxedSession
      readonly resources: ResourceManager.ConnectionScope | undefined
    }) =>
      Effect.gen(function*() {
        const scope = yield* Effect.scope
        const closedSignal = yield* Deferred.make<void>()
        const openedAt = yield* Clock.currentTimeMillis
        const handlers = yield* FiberSet.make<void, never>()
        let closing = false
        const inboundPerProtocol = new Map<string, number>()
        const { session, resources } = args
        /** Reserve a stream slot and its receive window until the current (stream) scope closes. */
        const reserveStream = (direction: Connection.Direction) =>
          resources === undefined
            ? Effect.succeed(undefined)
            : Effect.tap(resources.openStream(direction), (s) => s.reserveMemory(streamMemory))
        const limitError = (e: ResourceManager.LimitExceeded) =>
          new Connection.ConnectionError({
            reason: "LimitExceeded",
            message: e.message,
            limit: { scope: e.scope, resource: e.resource }
          })

        const close = Effect.suspend(() => {
          if (closing) return Deferred.await(closedSignal)
          closing = true
          return session.close.pipe(Effect.andThen(Deferred.succeed(closedSignal, undefined)))
        })

        const connection: Connection.Connection = {
          id: `c${++nextConnectionId}`,
          remotePeer: args.secured.remotePeer,
          remotePublicKey: args.secured.remotePublicKey,
          remoteAddr: args.raw.remoteAddr,
          localAddr: args.raw.localAddr,
          direction: args.direction,
          security: args.security,
          muxer: args.muxer,
          openedAt,
          newStream: (protocols, opts) =>
            Effect.gen(function*() {
              if (closing) {
                return yield* new Connection.ConnectionError({ reason: "Closed", message: "connection is closed" })
              }
              const reserved = yield* Effect.mapError(reserveStream("outbound"), limitError)
              const muxed = yield* session.open.pipe(
                Effect.mapError((e) => new Connection.ConnectionError({ reason: "Muxer", message: e.message }))
              )
              const lazy = (opts?.lazy ?? true) && protocols.length === 1
              if (lazy) {
                if (reserved !== undefined) {
                  yield* reserved.setProtocol(protocols[0]!).pipe(
                    Effect.mapError(limitError),
                    Effect.tapError(() => muxed.reset)
                  )
                }
                const duplex = Multistream.toDuplex(Multistream.lazySelect(muxed, protocols[0]!))
                return toStream(duplex, protocols[0]!, muxed)
              }
              const selected = yield* Multistream.select(muxed, protocols).pipe(
                Effect.timeoutOrElse({
                  duration: streamTimeout,
                  orElse: () =>
                    Effect.fail(
                      new Connection.ConnectionError({ reason: "Timeout", message: "stream negotiation timed out" })
                    )
                }),
                Effect.mapError((e) =>
                  e._tag === "ConnectionError"
                    ? e
                    : new Connection.ConnectionError({ reason: "Negotiation", message: e.message })
                ),
                Effect.tapError(() => muxed.reset)
              )
              if (reserved !== undefined) {
                yield* reserved.setProtocol(selected.protocol).pipe(
                  Effect.mapError(limitError),
                  Effect.tapError(() => muxed.reset)
                )
              }
              return toStream(selected.duplex, selected.protocol, muxed)
            }),
          streamCount: () => session.streamCount(),
          close,
          closed: Deferred.await(closedSignal),
          isClosed: () => closing
        }

        // Inbound streams: negotiate with the registrar's protocols, run the handler supervised.
        const serveStream = (muxed: StreamMuxer.MuxedStream) =>
          Effect.gen(function*() {
            // beyond a limit the stream is reset before anything is read from it
            const reserved = yield* reserveStream("inbound")
            const negotiated = yield* Multistream.handle(muxed, (id: string) => registrar.lookup(id) !== undefined).pipe(
              Effect.timeoutOrElse({
                duration: streamTimeout,
                orElse: () => Effect.fail(new Connection.ConnectionError({ reason: "Timeout", message: "negotiation" }))
              })
            )
            const registration = registrar.lookup(negotiated.protocol)
            if (registration === undefined) return yield* muxed.reset
            if (reserved !== undefined) yield* reserved.setProtocol(negotiated.protocol)
            const count = inboundPerProtocol.get(negotiated.protocol) ?? 0
            if (count >= registration.options.maxInboundStreams) return yield* muxed.reset
            inboundPerProtocol.set(negotiated.protocol, count + 1)
            yield* Effect.addFinalizer(() =>
              Effect.sync(() => inboundPerProtocol.set(negotiated.protocol, (inboundPerProtocol.get(negotiated.protocol) ?? 1) - 1))
            )
            const stream = toStream(negotiated.duplex, negotiated.protocol, muxed)
            yield* registration.handler(stream, connection)
            // Graceful end: half-close, then let the remote finish (bounded) before the scope
            // closes — closing the scope of an unfinished stream resets it, and a reset may
            // overtake the reply the handler just wrote.
            yield* closeGracefully(stream, streamTimeout)
          }).pipe(
            Effect.catchCause((cause) =>
              Effect.logDebug("inbound stream handler failed; resetting the stream", cause).pipe(
                Effect.andThen(muxed.reset)
              )
            )
          )

        const acceptLoop = Effect.gen(function*() {
          while (true) {
            const streamScope = yield* Scope.fork(scope)
            const muxed = yield* Scope.provide(session.accept, streamScope).pipe(
              Effect.tapError(() => Scope.close(streamScope, Exit.void))
            )
            yield* FiberSet.run(
              handlers,
              Scope.provide(serveStream(muxed), streamScope).pipe(
                Effect.ensuring(Scope.close(streamScope, Exit.void))
              )
            )
          }
        }).pipe(Effect.ignore)

        // When the session ends (remote close, GoAway, error), `accept` fails (the
        // StreamMuxer contract), so the accept loop ends, and the connection is closed.
        // (One fiber per connection: no race against `session.closed`.)
        yield* Effect.forkScoped(
          acceptLoop.pipe(
            Effect.andThen(Effect.suspend(() => {
              closing = true
              return Deferred.succeed(closedSignal, undefined)
            }))
          )
        )
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() => {
            closing = true
            return Deferred.succeed(closedSignal, undefined)
          })
        )
        return connection
      })

    return Upgrader.of({
      upgradeOutbound: (raw, opts) => upgrade(raw, "outbound", opts?.remotePeer, opts?.resources),
      upgradeInbound: (raw, opts) => upgrade(raw, "inbound", undefined, opts?.resources)
    })
  })

/**
 * Half-close `stream` and wait (at most `timeout`) for the remote to close its
 * side, discarding anything it still sends.
 */
export const closeGracefully = (stream: Duplex.Duplex, timeout: Duration.Input): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* stream.closeWrite
    while (true) {
      const chunks = yield* stream.read
      if (chunks.length === 0) return
    }
  }).pipe(Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.void }), Effect.ignore)

const toStream = (duplex: Duplex.Duplex, protocol: string, muxed: StreamMuxer.MuxedStream): Connection.Stream => ({
  read: duplex.read,
  write: duplex.write,
  closeWrite: duplex.closeWrite,
  reset: duplex.reset,
  protocol,
  id: muxed.id,
  direction: muxed.direction
})

export const layer = (options: UpgraderOptions) => Layer.effect(Upgrader, make(options))
