/**
 * How a listener runs its handler for each inbound connection (the scoped
 * contract of `Transport.ts`, libp2p connections spec §Transports), shared by
 * the TCP, Unix, WebSocket and memory transports:
 *
 * - every connection's scope is a child of one per-listener parent whose
 *   finalizers run in parallel, so closing the listener closes all its
 *   connections at once (not one flush deadline after another);
 * - the connection's own release (closing its socket) is the scope's first
 *   finalizer, so it runs last;
 * - the handler runs in a fiber of the listener's `FiberSet` with that scope;
 *   the scope is closed when the handler fails, dies, is interrupted, or
 *   succeeds — unless it returns `KeepOpen`, in which case the fiber ends and
 *   the scope stays open until its new owner, the socket's end, or the
 *   listener closes it. An idle connection kept open holds no fiber here.
 *
 * @since 0.1.0
 */
import type { Fiber } from "effect"
import { Cause, Effect, Exit, Scope } from "effect"
import * as Transport from "../Transport.ts"

/** A `FiberSet` runtime's fork function. */
export type Run = (effect: Effect.Effect<void>) => Fiber.Fiber<void, never>

/**
 * The parent of a listener's connection scopes, in the current (listener)
 * scope: add it after the listener's "stop accepting" finalizer is known to
 * run first (i.e. fork it before adding that finalizer).
 */
export const connectionsScope: Effect.Effect<Scope.Closeable, never, Scope.Scope> = Effect.flatMap(
  Effect.scope,
  (listener) => Scope.fork(listener, "parallel")
)

export interface ServeParams {
  /** Transport name for log lines ("tcp", "unix", "ws", "memory"). */
  readonly name: string
  /** From {@link connectionsScope}. */
  readonly parent: Scope.Scope
  readonly run: Run
  readonly handler: Transport.Handler
  readonly conn: Transport.RawConnection
  /** Closes the connection (its socket): the scope's first finalizer. */
  readonly release: Effect.Effect<void>
  /** Do not log a handler failure (logged at warning level by default; interruptions never are). */
  readonly quiet?: boolean
  /** The socket (or WebSocket): its `close` event closes the connection's scope. */
  readonly socket?: CloseEvents
  /** Called on that `close` event first (the listener's own bookkeeping). */
  readonly onClose?: () => void
}

/** Something that emits `close` once it is gone (a `net.Socket`, a `ws` WebSocket). */
export interface CloseEvents {
  readonly once: (event: "close", listener: () => void) => unknown
}

const logFailure =
  (name: string, conn: Transport.RawConnection, quiet: boolean | undefined) =>
  (cause: Cause.Cause<never>): Effect.Effect<void> =>
    Cause.hasInterruptsOnly(cause) || quiet === true
      ? Effect.void
      : Effect.logWarning(`${name}: connection handler for ${conn.remoteAddr.toString()} failed`, cause)

/** Serve one accepted connection: make its scope, run the handler in it. */
export const serve = (params: ServeParams): void => {
  const { conn, handler, run, release } = params
  const scope = Scope.forkUnsafe(params.parent)
  const end = params.socket === undefined ? undefined : closeOnEnd(params.socket, scope, run, params.onClose)
  run(
    Scope.addFinalizerExit(scope, () => release).pipe(
      Effect.andThen(Effect.suspend(() => handler(conn, scope))),
      Scope.provide(scope),
      Effect.onExit((exit) => {
        // kept open: unless its socket is already gone
        if (Exit.isSuccess(exit) && exit.value === Transport.KeepOpen && (end === undefined || end.keep())) {
          return Effect.void
        }
        return Scope.close(scope, Exit.void)
      }),
      Effect.catchCause(logFailure(params.name, conn, params.quiet))
    )
  )
}

/**
 * A socket that closes releases everything its connection holds, once the
 * handler has handed the connection over (while the handler runs, it may
 * still read what arrived before the close). `keep()` says whether the socket
 * is still there (false: close the scope now).
 */
class CloseOnEnd {
  readonly scope: Scope.Closeable
  readonly run: Run
  kept = false
  gone = false
  constructor(scope: Scope.Closeable, run: Run) {
    this.scope = scope
    this.run = run
  }
  keep(): boolean {
    this.kept = true
    return !this.gone
  }
  closed(): void {
    this.gone = true
    if (this.kept && this.scope.state._tag !== "Closed") this.run(Scope.close(this.scope, Exit.void))
  }
}

const closeOnEnd = (
  socket: CloseEvents,
  scope: Scope.Closeable,
  run: Run,
  onClose: (() => void) | undefined
): CloseOnEnd => {
  const end = new CloseOnEnd(scope, run)
  socket.once("close", () => {
    onClose?.()
    end.closed()
  })
  return end
}
