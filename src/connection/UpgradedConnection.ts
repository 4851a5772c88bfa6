/**
 * The connection runtime: what an upgraded connection does once the
 * {@link Upgrader} has secured and multiplexed it. The class
 * {@link UpgradedConnection} implements the `Connection` contract; its accept
 * loop takes inbound streams from the muxer session, negotiates each one's
 * protocol against the {@link Registrar}'s list and runs the registered
 * handler in a fiber in the stream's own child scope of the connection's.
 *
 * Memory: an idle connection is this one object (state in fields, behaviour
 * on the prototype) and a notice registered with its muxer session
 * (`whenAcceptable`): no fiber waits on `session.accept` while nothing
 * arrives. Each inbound stream is accepted and served by a fiber of its own,
 * started by that notice; a muxer without `whenAcceptable` gets one detached
 * accept-loop fiber instead. Nothing else is allocated per connection until a
 * stream or a waiter on `closed` appears (see `bench/heap-per-conn.ts`).
 *
 * Resource limits: every stream — inbound or outbound — reserves a stream
 * slot and its initial receive window with the connection's
 * {@link ResourceManager.ConnectionScope} before it is negotiated, then moves
 * to its protocol's scope. A stream beyond a limit is reset (inbound) or
 * refused with `ConnectionError { reason: "LimitExceeded" }` (outbound).
 *
 * @since 0.1.0
 */
import { Cause, Clock, type Context, Deferred, type Duration, Effect, Exit, Fiber, Option, Scope } from "effect"
import * as Duplex from "../core/Duplex.ts"
import * as PeerId from "../core/PeerId.ts"
import type * as Metrics from "../internal/metrics.ts"
import * as Release from "../internal/release.ts"
import * as Multistream from "../multistream/Multistream.ts"
import type * as StreamMuxer from "../muxer/StreamMuxer.ts"
import type * as SecureChannel from "../security/SecureChannel.ts"
import type * as Transport from "../transport/Transport.ts"
import * as Connection from "./Connection.ts"
import * as ConnectionMetrics from "./metrics.ts"
import type { Registrar } from "./Registrar.ts"
import type * as ResourceManager from "./ResourceManager.ts"

let nextConnectionId = 0

/** What every connection of one Upgrader shares. */
export interface Shared {
  /** The services the fibers serving inbound streams run with (a muxer with `whenAcceptable`). */
  readonly services: Context.Context<never>
  readonly registrar: Registrar["Service"]
  readonly streamTimeout: Duration.Input
  readonly streamMemory: number
  /** The node's metrics registry (streams opened). */
  readonly metrics: Metrics.Recorder
  /** Whether the node was built with a tracer of its own (else inbound streams make no spans). */
  readonly traced: boolean
  /** Data bytes of the streams that have ended, by protocol label (read at scrape time). */
  readonly closedStreamBytes: Map<string, Connection.ByteTotals>
}

/** One connection's parts, from the upgrade. */
export interface ConnectionArgs {
  readonly raw: Transport.RawConnection
  readonly direction: Connection.Direction
  readonly secured: SecureChannel.SecuredConnection
  readonly security: string
  readonly muxer: string
  readonly session: StreamMuxer.MuxedSession
  readonly resources: ResourceManager.ConnectionScope | undefined
  readonly owned: Scope.Closeable | undefined
}

const closedError = () => new Connection.ConnectionError({ reason: "Closed", message: "connection is closed" })

const limitError = (cause: ResourceManager.LimitExceeded) =>
  new Connection.ConnectionError({ reason: "LimitExceeded", message: cause.message, cause })

const muxerError = (cause: StreamMuxer.MuxerError) =>
  new Connection.ConnectionError({ reason: "Muxer", message: cause.message, cause })

const negotiationError = (
  e: Multistream.MultistreamError | Duplex.DuplexError | Connection.ConnectionError
): Connection.ConnectionError =>
  e._tag === "ConnectionError"
    ? e
    : new Connection.ConnectionError({ reason: "Negotiation", message: e.message, cause: e })

/**
 * An upgraded connection: its state in fields and its behaviour on the
 * prototype (an idle connection holds this object, not a closure per
 * operation). Lives in `scope`; closes `owned` (that same scope, when the
 * upgrade was given it) once it ends.
 */
export class UpgradedConnection implements Connection.Connection, Release.Releasable {
  readonly id: string
  readonly remotePeer: PeerId.PeerId
  readonly remotePublicKey: Connection.Connection["remotePublicKey"]
  readonly remoteAddr: Transport.RawConnection["remoteAddr"]
  readonly localAddr: Transport.RawConnection["localAddr"]
  readonly direction: Connection.Direction
  readonly security: string
  readonly muxer: string
  readonly openedAt: number
  readonly limits: Transport.ConnectionLimits | undefined
  readonly shared: Shared
  readonly session: StreamMuxer.MuxedSession
  readonly resources: ResourceManager.ConnectionScope | undefined
  readonly scope: Scope.Scope
  readonly owned: Scope.Closeable | undefined
  readonly raw: Transport.RawConnection
  /** `close` was called, or the connection ended. */
  closing = false
  /** The connection ended: `closed` has resolved. */
  done = false
  /** Made only when someone waits on `closed` before the end. */
  signal: Deferred.Deferred<void> | undefined = undefined
  /** Inbound streams per protocol (for `maxInboundStreams`), made on the first one. */
  inbound: Map<string, number> | undefined = undefined
  /** The negotiated streams open now (for `streams()`), with their muxed streams, made on the first one. */
  open: Map<Connection.Stream, StreamMuxer.MuxedStream> | undefined = undefined
  /** Why the connection ended (set by the first close or by the end of the session). */
  reason: Connection.CloseReason | undefined = undefined

  constructor(shared: Shared, args: ConnectionArgs, scope: Scope.Scope, openedAt: number) {
    this.id = `c${++nextConnectionId}`
    this.remotePeer = args.secured.remotePeer
    this.remotePublicKey = args.secured.remotePublicKey
    this.remoteAddr = args.raw.remoteAddr
    this.localAddr = args.raw.localAddr
    this.direction = args.direction
    this.security = args.security
    this.muxer = args.muxer
    this.openedAt = openedAt
    this.limits = args.raw.limits
    this.shared = shared
    this.session = args.session
    this.resources = args.resources
    this.scope = scope
    this.owned = args.owned
    this.raw = args.raw
  }

  /** The accept loop (detached; interrupted by {@link release}), for a muxer without `whenAcceptable`. */
  loop: Fiber.Fiber<void> | undefined = undefined

  /** Mark the connection ended and wake whoever waits on `closed` (idempotent). */
  markEnded(): void {
    this.closing = true
    this.reason ??= "local"
    if (this.done) return
    this.done = true
    if (this.signal !== undefined) Deferred.doneUnsafe(this.signal, Exit.void)
  }

  /** The connection's scope closed: it has ended; its accept loop stops (unless it is the one closing). */
  release(): void {
    this.markEnded()
    const loop = this.loop
    if (loop === undefined) return
    this.loop = undefined
    if (Fiber.getCurrent() !== loop) loop.interruptUnsafe()
  }

  /** Ended: mark it, then close the owned scope (socket, reservations, registrations). */
  end(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.markEnded()
      const owned = this.owned
      return owned === undefined ? Effect.void : Scope.close(owned, Exit.void)
    })
  }

  get closed(): Effect.Effect<void> {
    return Effect.suspend(() => this.done ? Effect.void : Deferred.await(this.signal ??= Deferred.makeUnsafe<void>()))
  }

  get close(): Effect.Effect<void> {
    return this.closeWith("local")
  }

  closeWith(reason: Connection.CloseReason): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.closing) return this.closed
      this.closing = true
      this.reason ??= reason
      return Effect.andThen(this.session.close, this.end())
    })
  }

  closeReason(): Connection.CloseReason | undefined {
    return this.reason
  }

  /** The session ended on `cause` (its `accept` failed): the remote or an error ended it, unless we closed first. */
  sessionEnded(cause: Cause.Cause<StreamMuxer.MuxerError>): Effect.Effect<void> {
    if (this.reason === undefined) {
      const error = Cause.findErrorOption(cause)
      this.reason = Option.isSome(error) ? Connection.closeReasonOf(error.value) : "error"
    }
    return this.end()
  }

  isClosed(): boolean {
    return this.closing
  }

  streamCount(): number {
    return this.session.streamCount()
  }

  bytes(): { readonly read: number; readonly written: number } | undefined {
    return this.raw.bytes?.()
  }

  /** The remote peer id as text, made on first use (span attributes of inbound streams). */
  peerString: string | undefined = undefined
  remotePeerString(): string {
    return this.peerString ??= PeerId.toString(this.remotePeer)
  }

  streams(): ReadonlyArray<Connection.Stream> {
    return this.open === undefined ? [] : Array.from(this.open.keys())
  }

  /** The protocol as a bounded label: registered here, else "other". */
  labelOf(protocol: string): string {
    return this.shared.registrar.lookup(protocol) !== undefined ? protocol : "other"
  }

  streamBytes(into: Map<string, Connection.ByteTotals>): void {
    const open = this.open
    if (open === undefined) return
    for (const [stream, muxed] of open) Connection.addBytes(into, this.labelOf(stream.protocol), muxed.bytes?.())
  }

  /**
   * A negotiated stream: counted in the metrics (its protocol as a label only
   * when registered here, else "other") and listed by `streams()` until the
   * current (stream) scope closes; then its byte totals join the closed
   * streams' (the muxer counted them, nothing is recorded per chunk).
   */
  track(
    stream: Connection.Stream,
    muxed: StreamMuxer.MuxedStream
  ): Effect.Effect<Connection.Stream, never, Scope.Scope> {
    return Effect.suspend(() => {
      const { metrics, closedStreamBytes } = this.shared
      const label = this.labelOf(stream.protocol)
      metrics.update(ConnectionMetrics.streamsOpened.with(label, stream.direction), 1)
      const open = this.open ??= new Map()
      open.set(stream, muxed)
      return Effect.as(
        Effect.addFinalizer(() =>
          Effect.sync(() => {
            const map = this.open
            if (map === undefined || !map.delete(stream)) return
            if (map.size === 0) this.open = undefined
            Connection.addBytes(closedStreamBytes, label, muxed.bytes?.())
          })
        ),
        stream
      )
    })
  }

  /** Reserve a stream slot and its receive window until the current (stream) scope closes. */
  reserveStream(direction: Connection.Direction) {
    const resources = this.resources
    return resources === undefined
      ? Effect.succeed(undefined)
      : Effect.tap(resources.openStream(direction), (s) => s.reserveMemory(this.shared.streamMemory))
  }

  newStream(
    protocols: ReadonlyArray<string>,
    opts?: Connection.NewStreamOptions
  ): Effect.Effect<Connection.Stream, Connection.ConnectionError, Scope.Scope> {
    const self = this
    return Effect.gen(function*() {
      if (self.closing) return yield* closedError()
      const reserved = yield* Effect.mapError(self.reserveStream("outbound"), limitError)
      const muxed = yield* Effect.mapError(self.session.open, muxerError)
      const lazy = (opts?.lazy ?? true) && protocols.length === 1
      if (lazy) {
        if (reserved !== undefined) {
          yield* reserved.setProtocol(protocols[0]!).pipe(
            Effect.mapError(limitError),
            Effect.tapError(() => muxed.reset)
          )
        }
        const duplex = Multistream.toDuplex(Multistream.lazySelect(muxed, protocols[0]!))
        return yield* self.track(toStream(duplex, protocols[0]!, muxed), muxed)
      }
      const selected = yield* Multistream.select(muxed, protocols).pipe(
        Effect.timeoutOrElse({
          duration: self.shared.streamTimeout,
          orElse: () =>
            Effect.fail(new Connection.ConnectionError({ reason: "Timeout", message: "stream negotiation timed out" }))
        }),
        Effect.mapError(negotiationError),
        Effect.tapError(() => muxed.reset)
      )
      if (reserved !== undefined) {
        yield* reserved.setProtocol(selected.protocol).pipe(
          Effect.mapError(limitError),
          Effect.tapError(() => muxed.reset)
        )
      }
      return yield* self.track(toStream(selected.duplex, selected.protocol, muxed), muxed)
    })
  }

  /**
   * Accept inbound streams until the session ends (then `accept` fails), each
   * served in its own fiber in its own child scope of the connection's; then
   * end the connection. A loop of plain continuations: an idle connection's
   * fiber holds no generator frame.
   */
  acceptLoop(): Effect.Effect<void> {
    return Effect.suspend(() => {
      const streamScope = Scope.forkUnsafe(this.scope)
      return Effect.matchCauseEffect(Scope.provide(this.session.accept, streamScope), {
        // one-parameter handlers: matchCauseEffect keeps them as they are (no wrapper closure)
        onFailure: (cause) => Effect.andThen(Scope.close(streamScope, Exit.void), this.sessionEnded(cause)),
        // started at once: scheduling it would give this long-lived fiber a dispatcher of its own
        onSuccess: (muxed) =>
          Effect.andThen(
            Effect.forkIn(
              Effect.ensuring(Scope.provide(this.serveStream(muxed), streamScope), Scope.close(streamScope, Exit.void)),
              streamScope,
              { startImmediately: true }
            ),
            this.acceptLoop()
          )
      })
    })
  }

  /**
   * With a muxer that has `whenAcceptable`: when the session has an inbound
   * stream (or has ended), {@link acceptNext} runs; nothing waits meanwhile.
   */
  armAccept(): void {
    this.session.whenAcceptable!(() => this.acceptNext())
  }

  /** Inside {@link acceptNext} (a notice that comes meanwhile sets `acceptAgain`). */
  accepting = false
  acceptAgain = false

  /**
   * Accept the next inbound stream and serve it in a fiber of its own, in its
   * own child scope of the connection's (closing the connection's scope
   * interrupts it). Once that fiber has accepted its stream and started
   * serving it (it runs synchronously until it first waits), the notice is
   * armed again; a notice that comes at once (more streams queued) is served
   * by this loop, not by recursion, so streams are served in arrival order.
   * When the session has ended, `accept` fails and the connection ends.
   */
  acceptNext(): void {
    if (this.accepting) {
      this.acceptAgain = true
      return
    }
    this.accepting = true
    try {
      do {
        this.acceptAgain = false
        if (this.done) return
        const streamScope = Scope.forkUnsafe(this.scope)
        let starting = true
        let accepted = false
        const fiber = Effect.runForkWith(this.shared.services)(
          Effect.matchCauseEffect(Scope.provide(this.session.accept, streamScope), {
            onFailure: (cause) => Effect.andThen(Scope.close(streamScope, Exit.void), this.sessionEnded(cause)),
            onSuccess: (muxed) => {
              // `accept` had to wait (the notice was early): arm for the next one now
              if (starting) accepted = true
              else this.armAccept()
              return Effect.ensuring(
                Scope.provide(this.serveStream(muxed), streamScope),
                Scope.close(streamScope, Exit.void)
              )
            }
          })
        )
        starting = false
        Fiber.runIn(fiber, streamScope)
        if (accepted) this.armAccept()
      } while (this.acceptAgain)
    } finally {
      this.accepting = false
    }
  }

  /** An inbound stream of `protocol` ended; an idle connection keeps no (empty) map. */
  releaseInbound(protocol: string): void {
    const inbound = this.inbound
    if (inbound === undefined) return
    const left = (inbound.get(protocol) ?? 1) - 1
    if (left > 0) inbound.set(protocol, left)
    else if (inbound.delete(protocol) && inbound.size === 0) this.inbound = undefined
  }

  /** An inbound stream: negotiate with the registrar's protocols, run the handler. */
  serveStream(muxed: StreamMuxer.MuxedStream): Effect.Effect<void, never, Scope.Scope> {
    const self = this
    const { registrar, streamTimeout } = this.shared
    return Effect.gen(function*() {
      // beyond a limit the stream is reset before anything is read from it
      const reserved = yield* self.reserveStream("inbound")
      const negotiated = yield* Multistream.handle(muxed, (id: string) => registrar.lookup(id) !== undefined).pipe(
        Effect.timeoutOrElse({
          duration: streamTimeout,
          orElse: () => Effect.fail(new Connection.ConnectionError({ reason: "Timeout", message: "negotiation" }))
        })
      )
      const registration = registrar.lookup(negotiated.protocol)
      if (registration === undefined) return yield* muxed.reset
      if (reserved !== undefined) yield* reserved.setProtocol(negotiated.protocol)
      const inbound = self.inbound ??= new Map()
      const protocol = negotiated.protocol
      const count = inbound.get(protocol) ?? 0
      if (count >= registration.options.maxInboundStreams) return yield* muxed.reset
      inbound.set(protocol, count + 1)
      yield* Effect.addFinalizer(() => Effect.sync(() => self.releaseInbound(protocol)))
      const stream = yield* self.track(toStream(negotiated.duplex, protocol, muxed), muxed)
      if (self.shared.traced) yield* Effect.annotateCurrentSpan("libp2p.protocol", protocol)
      yield* registration.handler(stream, self)
      // Graceful end: half-close, then let the remote finish (bounded) before the scope
      // closes — closing the scope of an unfinished stream resets it, and a reset may
      // overtake the reply the handler just wrote.
      yield* closeGracefully(stream, streamTimeout)
    }).pipe(
      Effect.catchCause((cause) =>
        Effect.logDebug("inbound stream handler failed; resetting the stream", cause).pipe(
          Effect.andThen(muxed.reset)
        )
      ),
      (serve) =>
        this.shared.traced
          // a root span per inbound stream (the connection's accept loop has no span of its own to hang it on)
          ? Effect.withSpan(serve, "libp2p.stream.inbound", {
            root: true,
            captureStackTrace: false, // see internal/spans.ts
            attributes: { "libp2p.connection": this.id, "libp2p.peer": this.remotePeerString() }
          })
          : serve
    )
  }
}

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

const toStream = (duplex: Duplex.Duplex, protocol: string, muxed: StreamMuxer.MuxedStream): Connection.Stream => {
  const stream: Connection.Stream = {
    read: duplex.read,
    write: duplex.write,
    closeWrite: duplex.closeWrite,
    reset: duplex.reset,
    protocol,
    id: muxed.id,
    direction: muxed.direction
  }
  return Duplex.ownsReads(duplex) ? Duplex.withOwnedReads(stream) : stream
}

/**
 * The connection of `args`, living in the current scope, with its accept loop
 * started.
 */
export const make = (shared: Shared, args: ConnectionArgs): Effect.Effect<Connection.Connection, never, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) =>
    Effect.flatMap(Clock.currentTimeMillis, (openedAt) => {
      const conn = new UpgradedConnection(shared, args, scope, openedAt)
      // When the session ends (remote close, GoAway, error), `accept` fails (the
      // StreamMuxer contract), so the connection learns it from `accept` alone (no
      // race against `session.closed`) and ends. With `whenAcceptable`, the session's
      // notice starts a fiber per inbound stream and none waits meanwhile; it is first
      // armed from a fiber of its own that ends at once, so that a stream already
      // queued is served after `make` has returned, as the accept loop would; those
      // fibers run with the node's services (`Shared.services`). Without it, the
      // accept loop is one detached fiber. The connection's release (with the
      // scope's other bookkeeping, one finalizer) marks it ended (a later notice does
      // nothing) and interrupts the loop.
      if (args.session.whenAcceptable !== undefined) {
        return Effect.as(
          Effect.andThen(Effect.forkDetach(Effect.sync(() => conn.armAccept())), Release.acquire(() => conn)),
          conn
        )
      }
      return Effect.uninterruptible(
        Effect.flatMap(Effect.forkDetach(conn.acceptLoop()), (loop) => {
          conn.loop = loop
          return Effect.as(Release.acquire(() => conn), conn)
        })
      )
    }))
