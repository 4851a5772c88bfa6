/**
 * The Unix domain socket transport (libp2p connections spec §Transports;
 * multiaddr protocols table: `unix`, code 0x0190, a path protocol): dials and
 * listens on `/unix/<path>` with stream sockets (`SOCK_STREAM`) and hands out
 * raw connections as a {@link Duplex.Duplex}, through the same machinery as
 * TCP (`internal/netTransport.ts`, `SocketDuplex.ts`).
 *
 * - Addresses: `/unix/<path>`, optionally followed by `/p2p/<id>` for a dial
 *   (ignored here). Both string forms name the same path: the multiaddr spec's
 *   `/unix/tmp/x.sock` and js-libp2p's `/unix/%2Ftmp%2Fx.sock` (see
 *   `Multiaddr.ts`); the listener reports the address it was given.
 * - Dial: the dial deadline is `dialTimeout` (default 5 s) or
 *   `DialOptions.timeout`. No socket file (ENOENT) or a file nobody listens
 *   on (ECONNREFUSED) → `TransportError Refused`; the deadline → `Timeout`;
 *   anything else (EACCES, EAGAIN from a full accept queue, a path too long
 *   for `sun_path`) → `Io`.
 * - Listen: when the path already exists, it is probed first. A socket file
 *   that refuses connections is what a crashed listener leaves behind: it is
 *   removed and the listen goes ahead. A socket that answers (a live
 *   listener), or a path that is not a socket, is never touched: the listen
 *   fails with `AddressInUse`.
 * - Closing the listener's scope stops accepting, interrupts every handler,
 *   closes every accepted socket and removes the socket file (libuv unlinks
 *   it when the server closes; should it still be there, it is removed only
 *   if it is still the file this listener bound, same device and inode).
 * - `remoteAddr` and `localAddr` of a connection are both the listener's
 *   `/unix/<path>` (a dialing socket has no name of its own), as js-libp2p does.
 * - Half-close is `shutdown(SHUT_WR)`: the remote reads EOF and can still
 *   write back. A Unix socket has no RST: `reset` fails our own reads and
 *   writes with `Reset` at once and closes the socket; the remote reads the
 *   end (EOF; ECONNRESET only if the kernel still held bytes for us, which
 *   Node's eager reader makes rare) and its next writes fail with `Reset`
 *   (EPIPE).
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Duration, Effect, Result } from "effect"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import type * as Duplex from "../core/Duplex.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import { errorCode } from "../internal/errors.ts"
import * as Errors from "./internal/errors.ts"
import * as NetTransport from "./internal/netTransport.ts"
import * as SocketDuplex from "./SocketDuplex.ts"
import * as Transport from "./Transport.ts"

export interface UnixOptions {
  /** Dial deadline when the dial does not give one (default 5 seconds). */
  readonly dialTimeout?: Duration.Input
  /** Deadline for probing an existing socket file before listening on its path (default 1 second). */
  readonly probeTimeout?: Duration.Input
  /** Listen backlog (default 511, Node's). */
  readonly backlog?: number
  /** Unread bytes per connection above which the socket is paused (default 4 MiB). */
  readonly maxBufferedBytes?: number
  /** How long closing a connection waits for written bytes to flush (default 2 seconds). */
  readonly closeTimeout?: Duration.Input
}

/** A Unix socket listener: the bound address and a view on what it holds. */
export interface UnixListener extends Transport.Listener {
  /** The socket file's path. */
  readonly path: string
  /** Accepted sockets not yet closed, and handler fibers still running. */
  readonly stats: Effect.Effect<{ readonly connections: number; readonly handlers: number }>
}

export interface UnixTransport extends Transport.Transport {
  readonly listen: (
    addr: Multiaddr.Multiaddr,
    handler: Transport.Handler
  ) => Effect.Effect<UnixListener, Transport.TransportError, Scope.Scope>
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

const { p2p, unix } = Multiaddr.codes

/** `/unix/<path>` alone (`withP2p`: or followed by `/p2p/<id>`): the path, else undefined. */
const unixPath = (addr: Multiaddr.Multiaddr, withP2p: boolean): string | undefined => {
  const [first, ...rest] = addr.components
  if (first?.code !== unix || first.value === undefined || first.value.length === 0) return undefined
  if (rest.length === 0 || (withP2p && rest.length === 1 && rest[0]!.code === p2p)) return first.value
  return undefined
}

/** True for `/unix/<path>[/p2p/<id>]`. */
export const canDial = (addr: Multiaddr.Multiaddr): boolean => unixPath(addr, true) !== undefined

/** True for `/unix/<path>`. */
export const canListen = (addr: Multiaddr.Multiaddr): boolean => unixPath(addr, false) !== undefined

/**
 * The `/unix/<path>` multiaddr of a path; a relative path is made absolute
 * first (the multiaddr string form has no relative paths).
 */
export const fromPath = (path: string): Result.Result<Multiaddr.Multiaddr, Multiaddr.MultiaddrError> =>
  Multiaddr.fromString(`/unix/${encodeURIComponent(Path.resolve(path))}`)

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const unsupported = (addr: Multiaddr.Multiaddr, what: string) =>
  new Transport.TransportError({
    reason: "Unsupported",
    address: addr.toString(),
    message: `unix: cannot ${what} ${addr.toString()}`
  })

/** ENOENT: no socket file, so nothing listens there, the Unix form of a refusal. */
const dialError = (addr: Multiaddr.Multiaddr, err: unknown): Transport.TransportError => {
  const code = errorCode(err)
  const reason = code === "ECONNREFUSED" || code === "ENOENT" ? "Refused" : code === "ETIMEDOUT" ? "Timeout" : "Io"
  return Errors.dialError("unix", addr, err, reason)
}

const listenError = (addr: Multiaddr.Multiaddr, err: unknown): Transport.TransportError =>
  Errors.listenError("unix", addr, err)

const inUse = (addr: Multiaddr.Multiaddr, why: string): Transport.TransportError =>
  new Transport.TransportError({
    reason: "AddressInUse",
    address: addr.toString(),
    message: `unix: listen ${addr.toString()}: ${why}`
  })

// ---------------------------------------------------------------------------
// Socket files
// ---------------------------------------------------------------------------

interface FileId {
  readonly dev: number
  readonly ino: number
  readonly socket: boolean
}

/** What is at `path` (without following a symlink), or undefined when nothing is. */
const lstat = (path: string): Effect.Effect<FileId | undefined, unknown> =>
  Effect.callback<FileId | undefined, unknown>((resume) => {
    Fs.lstat(path, (err, st) => {
      if (err !== null) {
        resume(errorCode(err) === "ENOENT" ? Effect.succeed(undefined) : Effect.fail(err))
      } else {
        resume(Effect.succeed({ dev: st.dev, ino: st.ino, socket: st.isSocket() }))
      }
    })
  })

/** Remove `path`; already gone is fine. */
const unlink = (path: string): Effect.Effect<void, unknown> =>
  Effect.callback<void, unknown>((resume) => {
    Fs.unlink(path, (err) => {
      resume(err === null || errorCode(err) === "ENOENT" ? Effect.void : Effect.fail(err))
    })
  })

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

const MiB = 1024 * 1024

/** The Unix socket transport with these options (a plain `Transport` value: no resources until used). */
export const make = (options: UnixOptions = {}): UnixTransport => {
  const dialTimeout = options.dialTimeout ?? Duration.seconds(5)
  const probeTimeout = options.probeTimeout ?? Duration.seconds(1)
  const backlog = options.backlog ?? 511
  const duplexOptions: SocketDuplex.Options = {
    maxBufferedBytes: options.maxBufferedBytes ?? 4 * MiB,
    closeTimeout: options.closeTimeout ?? Duration.seconds(2)
  }

  const connect = (addr: Multiaddr.Multiaddr, path: string, timeout: Duration.Input) =>
    NetTransport.connect({
      create: () => Net.createConnection({ path, allowHalfOpen: true }),
      timeout,
      duplexOptions,
      dialError: (err) => dialError(addr, err),
      timeoutError: () =>
        new Transport.TransportError({
          reason: "Timeout",
          address: addr.toString(),
          message: `unix: dial ${addr.toString()}: no connection within ${
            Duration.format(Duration.fromInputUnsafe(timeout))
          }`
        })
    })

  const dial = (
    addr: Multiaddr.Multiaddr,
    dialOptions?: Transport.DialOptions
  ): Effect.Effect<Transport.RawConnection, Transport.TransportError, Scope.Scope> =>
    Effect.gen(function*() {
      const path = unixPath(addr, true)
      if (path === undefined) return yield* unsupported(addr, "dial")
      const sd = yield* Effect.acquireRelease(
        connect(addr, path, dialOptions?.timeout ?? dialTimeout),
        (sd) => sd.close,
        { interruptible: true }
      )
      const local = Multiaddr.decapsulateCode(addr, p2p)
      const duplex: Duplex.Duplex = sd.duplex
      return { duplex, remoteAddr: local, localAddr: local, bytes: SocketDuplex.bytesOf(sd.socket) }
    })

  /**
   * Make way for a listener at `path`: nothing there → go ahead; a socket
   * that refuses connections (left by a crashed process) → remove it; a
   * socket that answers, or anything that is not a socket → AddressInUse.
   */
  const clearStale = (addr: Multiaddr.Multiaddr, path: string) =>
    Effect.gen(function*() {
      const ioError = (err: unknown) => listenError(addr, err)
      const existing = yield* Effect.mapError(lstat(path), ioError)
      if (existing === undefined) return
      if (!existing.socket) return yield* inUse(addr, `${path} exists and is not a socket`)
      const probe = yield* Effect.result(Effect.scoped(
        Effect.acquireRelease(connect(addr, path, probeTimeout), (sd) => sd.close)
      ))
      if (Result.isSuccess(probe)) return yield* inUse(addr, `a listener answers at ${path}`)
      if (probe.failure.reason !== "Refused") {
        return yield* inUse(addr, `${path} is a socket that could not be probed: ${probe.failure.message}`)
      }
      yield* Effect.logDebug(`unix: removing stale socket file ${path}`)
      yield* Effect.mapError(unlink(path), ioError)
    })

  const listen = (
    addr: Multiaddr.Multiaddr,
    handler: Transport.Handler
  ): Effect.Effect<UnixListener, Transport.TransportError, Scope.Scope> =>
    Effect.gen(function*() {
      const path = unixPath(addr, false)
      if (path === undefined) return yield* unsupported(addr, "listen on")
      yield* clearStale(addr, path)

      /** The socket file this listener bound, once bound. */
      let bound: FileId | undefined
      // Added before `serve`'s own finalizers, so it runs after the server is closed.
      yield* Effect.addFinalizer(() =>
        Effect.gen(function*() {
          if (bound === undefined) return
          const now = yield* lstat(path)
          if (now !== undefined && now.dev === bound.dev && now.ino === bound.ino) yield* unlink(path)
        }).pipe(Effect.catchCause((cause) => Effect.logWarning(`unix: could not remove ${path}`, cause)))
      )

      const server = Net.createServer({ allowHalfOpen: true })
      const serving = yield* NetTransport.serve({
        name: "unix",
        addr,
        server,
        start: (server) => server.listen({ path, backlog }),
        listenError: (err) => listenError(addr, err),
        duplexOptions,
        connectionAddrs: () => ({ remoteAddr: addr, localAddr: addr }),
        handler
      })
      bound = yield* Effect.mapError(lstat(path), (err) => listenError(addr, err))
      return { addrs: [addr], path, stats: serving.stats }
    })

  return { name: "unix", canDial, canListen, dial, listen }
}

/** The Unix socket transport with default options. */
export const transport: UnixTransport = make()
