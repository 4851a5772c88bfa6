/**
 * The TCP transport (libp2p connections spec §Transports; addressing spec
 * §multiaddr basics for the `/ip4|ip6/<ip>/tcp/<port>` shape): dials and
 * listens on TCP multiaddrs and hands out raw connections as a
 * {@link Duplex.Duplex} (see `SocketDuplex.ts` for the byte path).
 *
 * - Dial: `/ip4/<ip>/tcp/<port>`, `/ip6/<ip>/tcp/<port>` (also with a leading
 *   `/ip6zone/<z>`), and `/dns|dns4|dns6/<name>/tcp/<port>` (Node resolves the
 *   name), each optionally followed by `/p2p/<id>`, which is ignored here.
 *   TCP_NODELAY and keep-alive are on. The dial deadline is `dialTimeout`
 *   (default 5 s) or `DialOptions.timeout`; errors map to
 *   `TransportError { reason }`: ECONNREFUSED → `Refused`, the deadline or
 *   ETIMEDOUT → `Timeout`, no route / DNS failure → `Unreachable`, anything
 *   else → `Io`.
 * - Listen: IP literals only; port 0 picks a free port and the listener
 *   reports the bound multiaddr. A wildcard (`0.0.0.0`, `::`) is reported as
 *   is; {@link interfaceAddrs} expands it to the machine's interface
 *   addresses. An `/ip6` listener is IPv6-only, so `/ip4/0.0.0.0` and
 *   `/ip6/::` can listen on the same port side by side.
 * - Each accepted connection runs the handler in its own fiber (tracked in the
 *   listener's `FiberSet`) with its own scope, which closes the socket when
 *   the handler ends, fails or dies; a failing handler is logged and the
 *   listener carries on. Closing the listener's scope stops accepting,
 *   interrupts every handler and closes every accepted socket (this machinery,
 *   shared with the Unix transport, is in `internal/netTransport.ts`).
 * - `remoteAddr` / `localAddr` are the socket's own addresses (for a dial by
 *   DNS name, the resolved IP), without `/p2p`.
 *
 * - Port reuse (`reusePort: true`, for TCP hole punching, DCUtR): listeners
 *   are opened with SO_REUSEPORT, and a dial with `fromListenPort` binds its
 *   socket to a listener's port (same family) with SO_REUSEPORT through Node's
 *   `net.BoundSocket` (Node ≥ 24.19) before connecting, so the connection
 *   leaves from the address we listen on. Two such dials towards each other
 *   at the same time make one connection (a TCP simultaneous open: both
 *   sides see an outbound connection, so the layers above need an explicit
 *   role, `UpgradeOptions.role`). A plain `connect({ localPort })` cannot do
 *   this: Node binds it without SO_REUSEPORT and fails with EADDRINUSE.
 *   Without a reusePort listener of the family, such a dial fails
 *   `Unsupported`.
 *
 * Built on `node:net` directly rather than `effect/socket`: the flowing-mode
 * reader hands Node's chunks over without the copy that a paused `read()`
 * makes on Node < 26, and half-close (FIN) and reset (RST) map one-to-one
 * onto `socket.end()` and `socket.resetAndDestroy()` (measurements in
 * bench/transport/socketCompare.ts).
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Duration, Effect, Result } from "effect"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as MultiaddrNet from "../core/MultiaddrNet.ts"
import { errorCode } from "../internal/errors.ts"
import * as Errors from "./internal/errors.ts"
import * as NetTransport from "./internal/netTransport.ts"
import * as SocketDuplex from "./SocketDuplex.ts"
import * as Transport from "./Transport.ts"

export interface TcpOptions {
  /** Dial deadline when the dial does not give one (default 5 seconds). */
  readonly dialTimeout?: Duration.Input
  /** Listen backlog (default 511, Node's). */
  readonly backlog?: number
  /** Unread bytes per connection above which the socket is paused (default 4 MiB). */
  readonly maxBufferedBytes?: number
  /** How long closing a connection waits for written bytes to flush (default 2 seconds). */
  readonly closeTimeout?: Duration.Input
  /** TCP keep-alive idle time before the first probe (default 15 seconds, as go's net.Dialer). */
  readonly keepAliveInitialDelay?: Duration.Input
  /**
   * Open listeners with SO_REUSEPORT, so that dials with
   * `DialOptions.fromListenPort` can leave from their port (default false).
   */
  readonly reusePort?: boolean
  /**
   * With `reusePort`: every dial to an IP address leaves from the listening
   * port of its family when there is one (as go-libp2p's TCP transport does),
   * falling back to an ephemeral port when that port cannot be used for it
   * (EADDRINUSE, EADDRNOTAVAIL: a connection to the same address from that
   * port exists). Peers then observe our listening port through the NAT, so
   * identify's observed addresses are the ones a hole punch needs. Dials to
   * this machine's own addresses (loopback, interfaces) keep ephemeral ports:
   * from the listening port they could connect the socket to itself. Default
   * false.
   */
  readonly dialFromListenPort?: boolean
}

/** A TCP listener: the bound addresses and a view on what it holds. */
export interface TcpListener extends Transport.Listener {
  /** Accepted sockets not yet closed, and handler fibers still running. */
  readonly stats: Effect.Effect<{ readonly connections: number; readonly handlers: number }>
}

export interface TcpTransport extends Transport.Transport {
  readonly listen: (
    addr: Multiaddr.Multiaddr,
    handler: Transport.Handler
  ) => Effect.Effect<TcpListener, Transport.TransportError, Scope.Scope>
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

const { dns, dns4, dns6, ip4, ip6, ip6zone, p2p, tcp } = Multiaddr.codes

/**
 * The host components that lead a TCP multiaddr (after an optional ip6zone),
 * then `/tcp/<port>`, then nothing or `/p2p/<id>`.
 */
const tcpShape = (addr: Multiaddr.Multiaddr, hosts: ReadonlyArray<number>): boolean => {
  let cs = Multiaddr.protoCodes(addr)
  if (cs[0] === ip6zone) {
    if (cs[1] !== ip6) return false
    cs = cs.slice(1)
  }
  const [host, port, ...rest] = cs
  if (host === undefined || !hosts.includes(host) || port !== tcp) return false
  return rest.length === 0 || (rest.length === 1 && rest[0] === p2p)
}

const DIAL_HOSTS = [ip4, ip6, dns, dns4, dns6]
const LISTEN_HOSTS = [ip4, ip6]

/** True for `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/p2p/<id>]`. */
export const canDial = (addr: Multiaddr.Multiaddr): boolean => tcpShape(addr, DIAL_HOSTS)

/** True for `/ip4|ip6/<ip>/tcp/<port>` (an IP literal; port 0 for "any"). */
export const canListen = (addr: Multiaddr.Multiaddr): boolean => tcpShape(addr, LISTEN_HOSTS)

const unsupported = (addr: Multiaddr.Multiaddr, what: string) =>
  new Transport.TransportError({
    reason: "Unsupported",
    address: addr.toString(),
    message: `tcp: cannot ${what} ${addr.toString()}`
  })

const nodeAddress = (
  addr: Multiaddr.Multiaddr,
  ok: boolean,
  what: string
): Result.Result<Multiaddr.NodeAddress, Transport.TransportError> => {
  if (!ok) return Result.fail(unsupported(addr, what))
  const na = Multiaddr.toNodeAddress(addr)
  return Result.isFailure(na) ? Result.fail(unsupported(addr, what)) : Result.succeed(na.success)
}

/** The multiaddr of a socket endpoint (an IPv4-mapped IPv6 address becomes `/ip4`). */
const endpointAddr = (
  host: string | undefined,
  port: number | undefined
): Result.Result<Multiaddr.Multiaddr, Multiaddr.MultiaddrError> | undefined => {
  if (host === undefined || port === undefined) return undefined
  const mapped = host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host
  const family = Net.isIPv4(mapped) ? 4 : 6
  return Multiaddr.fromNodeAddress({ family, host: mapped, port, transport: "tcp" })
}

const socketAddrs = (
  socket: Net.Socket
): { readonly remoteAddr: Multiaddr.Multiaddr; readonly localAddr: Multiaddr.Multiaddr } | string => {
  const remote = endpointAddr(socket.remoteAddress, socket.remotePort)
  const local = endpointAddr(socket.localAddress, socket.localPort)
  if (remote === undefined || local === undefined) return "socket closed before its addresses were known"
  if (Result.isFailure(remote)) return remote.failure.message
  if (Result.isFailure(local)) return local.failure.message
  return { remoteAddr: remote.success, localAddr: local.success }
}

/**
 * The concrete addresses a listener bound to a wildcard (`0.0.0.0` / `::`) is
 * reachable on ({@link MultiaddrNet.interfaceAddrs}, kept here for callers of
 * this module).
 */
export const interfaceAddrs = MultiaddrNet.interfaceAddrs

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

const MiB = 1024 * 1024

/**
 * An address of this machine (loopback, or an interface's): a dial there
 * from our listening port could reach that very port and connect the socket
 * to itself (a TCP self-connect), so `dialFromListenPort` leaves such dials
 * on ephemeral ports.
 */
const isOwnAddress = (host: string): boolean => {
  const bare = host.startsWith("::ffff:") ? host.slice(7) : host.split("%")[0]!
  if (bare === "::1" || bare.startsWith("127.") || bare === "0.0.0.0" || bare === "::") return true
  try {
    return Object.values(Os.networkInterfaces()).some((infos) => infos?.some((i) => i.address === bare) === true)
  } catch {
    return false
  }
}

/** Errors of a dial from the listening port that an ephemeral port avoids. */
const PORT_TAKEN = new Set(["EADDRINUSE", "EADDRNOTAVAIL"])

/** The TCP transport with these options (a plain `Transport` value: no resources until used). */
export const make = (options: TcpOptions = {}): TcpTransport => {
  const dialTimeout = options.dialTimeout ?? Duration.seconds(5)
  const backlog = options.backlog ?? 511
  const duplexOptions: SocketDuplex.Options = {
    maxBufferedBytes: options.maxBufferedBytes ?? 4 * MiB,
    closeTimeout: options.closeTimeout ?? Duration.seconds(2)
  }
  const keepAliveDelay = Duration.toMillis(Duration.fromInputUnsafe(options.keepAliveInitialDelay ?? "15 seconds"))
  const reusePort = options.reusePort === true
  const dialFromListenPort = reusePort && options.dialFromListenPort === true
  /** The bound endpoints of the open reusePort listeners, in opening order. */
  const reusable = new Set<Multiaddr.NodeAddress>()

  const dial = (
    addr: Multiaddr.Multiaddr,
    dialOptions?: Transport.DialOptions
  ): Effect.Effect<Transport.RawConnection, Transport.TransportError, Scope.Scope> =>
    Effect.gen(function*() {
      const target = yield* Effect.fromResult(nodeAddress(addr, canDial(addr), "dial"))
      const timeout = dialOptions?.timeout ?? dialTimeout
      const from = [...reusable].find((l) => l.family === target.family && Net.isIP(target.host) !== 0)
      if (dialOptions?.fromListenPort === true && from === undefined) {
        return yield* new Transport.TransportError({
          reason: "Unsupported",
          address: addr.toString(),
          message: `tcp: dial ${addr.toString()} from a listening port: no reusePort listener for IPv${target.family}`
        })
      }
      const implicit = dialFromListenPort && from !== undefined && !isOwnAddress(target.host)
      const connected = dialOptions?.fromListenPort === true || implicit
        ? connect(addr, target, timeout, from).pipe(
          // by default only: a port already connected to that address is no reason to fail the dial
          Effect.catchIf(
            (e) => dialOptions?.fromListenPort !== true && PORT_TAKEN.has(errorCode(e.cause) ?? ""),
            () => connect(addr, target, timeout, undefined)
          )
        )
        : connect(addr, target, timeout, undefined)
      const sd = yield* Effect.acquireRelease(connected, (sd) => sd.close, { interruptible: true })
      const addrs = socketAddrs(sd.socket)
      if (typeof addrs === "string") {
        return yield* new Transport.TransportError({
          reason: "Io",
          address: addr.toString(),
          message: `tcp: dial ${addr.toString()}: ${addrs}`
        })
      }
      return { duplex: sd.duplex, ...addrs, bytes: SocketDuplex.bytesOf(sd.socket) }
    })

  /** Connect, with exactly one outcome (see `internal/netTransport.ts`). */
  const connect = (
    addr: Multiaddr.Multiaddr,
    target: Multiaddr.NodeAddress,
    timeout: Duration.Input,
    from: Multiaddr.NodeAddress | undefined
  ): Effect.Effect<NetTransport.Connected, Transport.TransportError> =>
    NetTransport.connect({
      create: () =>
        from !== undefined ? connectFrom(from, target) : Net.createConnection({
          host: target.host,
          port: target.port,
          family: target.family,
          noDelay: true,
          keepAlive: true,
          keepAliveInitialDelay: keepAliveDelay,
          allowHalfOpen: true
        }),
      timeout,
      duplexOptions,
      dialError: (err) => Errors.dialError("tcp", addr, err),
      timeoutError: () =>
        new Transport.TransportError({
          reason: "Timeout",
          address: addr.toString(),
          message: `tcp: dial ${addr.toString()}: no connection within ${
            Duration.format(Duration.fromInputUnsafe(timeout))
          }`
        })
    })

  /** A socket bound to `from` with SO_REUSEPORT (beside its listener), connecting to `target`; throws as `createConnection`. */
  const connectFrom = (from: Multiaddr.NodeAddress, target: Multiaddr.NodeAddress): Net.Socket => {
    const handle = new Net.BoundSocket({
      host: from.host,
      port: from.port,
      reusePort: true,
      ipv6Only: from.family === 6
    })
    let socket: Net.Socket | undefined
    try {
      socket = new Net.Socket({ handle, allowHalfOpen: true })
    } finally {
      // a socket that could not take the handle leaves it to us (the error goes on to the caller's Effect.try)
      if (socket === undefined) handle[Symbol.dispose]()
    }
    socket.setNoDelay(true)
    socket.setKeepAlive(true, keepAliveDelay)
    return socket.connect({ host: target.host, port: target.port })
  }

  const listen = (
    addr: Multiaddr.Multiaddr,
    handler: Transport.Handler
  ): Effect.Effect<TcpListener, Transport.TransportError, Scope.Scope> =>
    Effect.gen(function*() {
      const target = yield* Effect.fromResult(nodeAddress(addr, canListen(addr), "listen on"))
      const server = Net.createServer({
        allowHalfOpen: true,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: keepAliveDelay
      })
      const serving = yield* NetTransport.serve({
        name: "tcp",
        addr,
        server,
        start: (server) =>
          server.listen({
            host: target.host,
            port: target.port,
            backlog,
            ipv6Only: target.family === 6,
            reusePort
          }),
        listenError: (err) => Errors.listenError("tcp", addr, err),
        duplexOptions,
        connectionAddrs: socketAddrs,
        handler
      })

      const bound = server.address()
      const boundAddr = bound !== null && typeof bound === "object"
        ? endpointAddr(bound.address, bound.port)
        : undefined
      if (boundAddr === undefined || Result.isFailure(boundAddr)) {
        return yield* new Transport.TransportError({
          reason: "Io",
          address: addr.toString(),
          message: `tcp: listen ${addr.toString()}: no bound address`
        })
      }
      if (reusePort && bound !== null && typeof bound === "object") {
        const endpoint: Multiaddr.NodeAddress = { ...target, host: bound.address, port: bound.port }
        yield* Effect.acquireRelease(
          Effect.sync(() => reusable.add(endpoint)),
          () => Effect.sync(() => reusable.delete(endpoint))
        )
      }
      return { addrs: [boundAddr.success], stats: serving.stats }
    })

  return { name: "tcp", canDial, canListen, dial, listen }
}

/** The TCP transport with default options. */
export const transport: TcpTransport = make()
