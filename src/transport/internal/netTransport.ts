/**
 * The `node:net` dial and listen machinery shared by the TCP and Unix domain
 * socket transports (libp2p connections spec §Transports; the scoped contract
 * of `Transport.ts`). The address handling (which multiaddrs, which socket
 * options, how errors map) stays in each transport; what is here is the part
 * that is the same for any stream socket:
 *
 * - {@link connect}: a `net.createConnection` with exactly one outcome — a
 *   connected socket wrapped as a {@link SocketDuplex.SocketDuplex}, or a
 *   failure with the socket destroyed (a late `connect` after the deadline or
 *   an interruption closes the socket it would have given).
 * - {@link serve}: run a `net.Server` in the current scope. Each accepted
 *   socket runs the handler in its own fiber (tracked in a `FiberSet`) with its
 *   own scope (`inbound.ts`), which closes the socket when the handler ends,
 *   fails or dies — or, for a handler that returns `KeepOpen`, when its new
 *   owner closes it; a socket that closes closes its scope. A failing handler
 *   is logged and the listener carries on. Closing the scope stops accepting,
 *   closes every connection (in parallel), interrupts every handler, and waits
 *   (bounded by `closeTimeout`) for the server to let go.
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Exit, FiberSet, Scope } from "effect"
import type * as Net from "node:net"
import type * as Multiaddr from "../../core/Multiaddr.ts"
import { errorMessage } from "../../internal/errors.ts"
import * as SocketDuplex from "../SocketDuplex.ts"
import type * as Transport from "../Transport.ts"
import * as Inbound from "./inbound.ts"

/** A connected socket and its Duplex. */
export type Connected = SocketDuplex.SocketDuplex

export interface ConnectParams {
  /** Makes the socket and starts connecting (may throw: reported through `dialError`). */
  readonly create: () => Net.Socket
  readonly timeout: Duration.Input
  readonly duplexOptions: SocketDuplex.Options
  /** A socket error (or a throw from `create`) as the transport's error. */
  readonly dialError: (err: unknown) => Transport.TransportError
  /** The error for a dial that ran past `timeout`. */
  readonly timeoutError: () => Transport.TransportError
}

/**
 * Connect, with exactly one outcome: a connected socket handed to the caller,
 * or a failure with the socket destroyed. The caller owns closing the result
 * (`acquireRelease` with `close`).
 */
export const connect = (params: ConnectParams): Effect.Effect<Connected, Transport.TransportError> =>
  Effect.suspend(() => {
    const result = Deferred.makeUnsafe<Connected, Transport.TransportError>()
    let socket: Net.Socket
    try {
      socket = params.create()
    } catch (err) {
      return Effect.fail(params.dialError(err))
    }
    let connected: Connected | undefined
    const onConnect = () => {
      socket.off("error", onError)
      connected = SocketDuplex.make(socket, params.duplexOptions)
      // Settled already (deadline, interruption): nobody will own it.
      if (!Deferred.doneUnsafe(result, Exit.succeed(connected))) socket.destroy()
    }
    const onError = (err: Error) => {
      socket.off("connect", onConnect)
      socket.destroy()
      Deferred.doneUnsafe(result, Exit.fail(params.dialError(err)))
    }
    socket.once("connect", onConnect)
    socket.once("error", onError)
    /**
     * Settle with `err` and destroy the socket, unless already settled.
     * Returns whether it settled (false: the connection was made first).
     */
    const abandon = (err: Transport.TransportError): boolean => {
      if (!Deferred.doneUnsafe(result, Exit.fail(err))) return false
      socket.off("connect", onConnect)
      socket.off("error", onError)
      socket.on("error", () => {}) // nothing may be emitted unheard while it goes
      socket.destroy()
      return true
    }
    return Deferred.await(result).pipe(
      Effect.timeoutOrElse({
        duration: params.timeout,
        orElse: () =>
          Effect.suspend(() => {
            abandon(params.timeoutError())
            // Connected at the last moment: the connection wins over the deadline.
            return Deferred.await(result)
          })
      }),
      Effect.onInterrupt(() =>
        Effect.suspend(() => {
          if (abandon(params.dialError(new Error("dial interrupted")))) return Effect.void
          // Connected just as we were interrupted: close what nobody will own.
          return connected === undefined ? Effect.void : connected.close
        })
      )
    )
  })

export interface ServeParams {
  /** Transport name for log lines ("tcp", "unix"). */
  readonly name: string
  /** The address being listened on (for log lines). */
  readonly addr: Multiaddr.Multiaddr
  /** A fresh server, not yet listening (made with `allowHalfOpen: true`). */
  readonly server: Net.Server
  /** Calls `server.listen(...)` (may throw: reported through `listenError`). */
  readonly start: (server: Net.Server) => void
  readonly listenError: (err: unknown) => Transport.TransportError
  readonly duplexOptions: SocketDuplex.Options
  /** The multiaddrs of an accepted socket, or why they are unknown (the socket is then dropped). */
  readonly connectionAddrs: (
    socket: Net.Socket
  ) => { readonly remoteAddr: Multiaddr.Multiaddr; readonly localAddr: Multiaddr.Multiaddr } | string
  readonly handler: Transport.Handler
}

export interface Serving {
  /** Accepted sockets not yet closed, and handler fibers still running. */
  readonly stats: Effect.Effect<{ readonly connections: number; readonly handlers: number }>
}

/**
 * Start `server` and serve accepted sockets until the current scope closes.
 * Succeeds once the server is listening (then `server.address()` is known).
 */
export const serve = (params: ServeParams): Effect.Effect<Serving, Transport.TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const { addr, duplexOptions, handler, name, server } = params
    /** Accepted sockets not yet closed. */
    const sockets = new Set<Net.Socket>()
    let closing = false
    const serverClosed = Deferred.makeUnsafe<void>()

    // Runs last: close what is left, then wait for the server to let go.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closing = true
        for (const socket of sockets) socket.destroy()
        sockets.clear()
        return Deferred.await(serverClosed).pipe(Effect.timeoutOption(duplexOptions.closeTimeout), Effect.asVoid)
      })
    )
    const handlers = yield* FiberSet.make<void, never>()
    const run = yield* FiberSet.runtime(handlers)<never>()
    // Closed second: every connection at once (then the FiberSet interrupts every handler).
    const parent = yield* Inbound.connectionsScope
    // Runs first: stop accepting.
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        closing = true
        server.close(() => Deferred.doneUnsafe(serverClosed, Exit.void))
      })
    )

    server.on("connection", (socket: Net.Socket) => {
      if (closing) {
        socket.destroy()
        return
      }
      sockets.add(socket)
      const sd = SocketDuplex.make(socket, duplexOptions)
      const addrs = params.connectionAddrs(socket)
      if (typeof addrs === "string") {
        socket.once("close", () => sockets.delete(socket))
        socket.destroy()
        return
      }
      Inbound.serve({
        name,
        parent,
        run,
        handler,
        conn: {
          duplex: sd.duplex,
          remoteAddr: addrs.remoteAddr,
          localAddr: addrs.localAddr,
          bytes: SocketDuplex.bytesOf(socket)
        },
        release: sd.close,
        socket: sd,
        onClose: () => sockets.delete(socket)
      })
    })

    yield* Effect.callback<void, Transport.TransportError>((resume) => {
      const onError = (err: Error) => {
        server.off("listening", onListening)
        resume(Effect.fail(params.listenError(err)))
      }
      const onListening = () => {
        server.off("error", onError)
        // Later server errors (accept failures such as EMFILE) do not stop it: log them.
        server.on("error", (err) => {
          run(Effect.logWarning(`${name}: listener ${addr.toString()}: ${errorMessage(err)}`))
        })
        resume(Effect.void)
      }
      server.once("error", onError)
      server.once("listening", onListening)
      try {
        params.start(server)
      } catch (err) {
        server.off("error", onError)
        server.off("listening", onListening)
        resume(Effect.fail(params.listenError(err)))
      }
    })

    return {
      stats: Effect.map(FiberSet.size(handlers), (n) => ({ connections: sockets.size, handlers: n }))
    }
  })
