/**
 * The WebSocket transport (libp2p websockets spec,
 * https://github.com/libp2p/specs/blob/master/websockets/README.md): the raw
 * libp2p byte stream (multistream-select, then Noise, then Yamux, exactly as
 * over TCP) carried in binary WebSocket messages (RFC 6455), plain (`/ws`) or
 * over TLS (`/wss`, `/tls/ws`). The byte path is `internal/wsDuplex.ts`
 * (which also explains how `closeWrite` maps onto the closing handshake:
 * WebSocket has no half-close).
 *
 * Addresses (spec §Addressing):
 * - Dial: `/ip4|ip6|dns|dns4|dns6/<host>[/tcp/<port>]` followed by `/ws`,
 *   `/wss`, `/tls/ws` or `/tls/sni/<name>/ws`, optionally `/http-path/<path>`
 *   (the request path), optionally `/p2p/<id>` (ignored here). Without
 *   `/tcp` the port is 80 for `/ws` and 443 for a secure address (spec
 *   §Addressing). `/tls/sni/<name>` connects to the host but sends `<name>`
 *   as TLS server name and HTTP `Host`, and checks the certificate against it.
 * - Listen: `/ip4|ip6/<ip>/tcp/<port>` followed by `/ws`, `/wss` or `/tls/ws`,
 *   optionally `/http-path/<path>` (then only that path is upgraded). Port 0
 *   picks a free port; the listener reports the bound address with the same
 *   suffix. A secure listener needs `certificate` (PEM key and chain): the
 *   spec's §Certificates leaves obtaining one to the operator;
 *   `canListen` is false for `/wss` and `/tls/ws` without it.
 *
 * Listening: one `node:net` server per listener; each accepted socket (for
 * a secure listener wrapped in a server-side `tls.TLSSocket`) is handed to an
 * `http.Server` that never listens itself, whose `upgrade` event goes to
 * `ws`'s `WebSocketServer.handleUpgrade`. A request that is not a valid
 * WebSocket handshake (a plain GET, a bad `Upgrade`/`Sec-WebSocket-Key`,
 * bytes that are not HTTP) gets `400 Bad Request` and is closed; a
 * connection that has not completed its upgrade after `handshakeTimeout` is
 * dropped. Each upgraded connection runs the handler in its own fiber with
 * its own scope (the Transport contract); closing the listener's scope stops
 * accepting, interrupts every handler, closes every connection and drops
 * every half-made one.
 *
 * Dialing uses `ws`'s client with permessage-deflate off (libp2p's bytes are
 * encrypted, compression gains nothing) and no redirects; the deadline is
 * `dialTimeout` (default 10 s) or `DialOptions.timeout`. Errors map to
 * `TransportError { reason }` as for TCP: ECONNREFUSED → `Refused`, the
 * deadline → `Timeout`, no route / DNS failure → `Unreachable`, anything else
 * (TLS verification, an HTTP answer other than 101) → `Io`.
 *
 * Messages above `maxPayload` (default 16 MiB; libp2p's own are at most a
 * Noise message, 64 KiB) close the connection with 1009 and fail its reads.
 *
 * @since 0.1.0
 */
import type { Fiber } from "effect"
import { Deferred, Duration, Effect, Exit, FiberSet, Result, Scope } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import type * as Stream from "node:stream"
import * as Tls from "node:tls"
import type { ClientOptions } from "ws"
import { WebSocket, WebSocketServer } from "ws"
import * as Multiaddr from "../core/Multiaddr.ts"
import { errorCode, errorMessage } from "../internal/errors.ts"
import * as Errors from "./internal/errors.ts"
import * as Inbound from "./internal/inbound.ts"
import * as WsDuplex from "./internal/wsDuplex.ts"
import * as Transport from "./Transport.ts"

export interface Certificate {
  /** PEM certificate chain (leaf first). */
  readonly cert: string
  /** PEM private key of the leaf certificate. */
  readonly key: string
}

export interface WebSocketOptions {
  /** Certificate and key for `/wss` and `/tls/ws` listeners. */
  readonly certificate?: Certificate
  /** Extra trust anchors (PEM) for secure dials, replacing Node's default CA list (as `tls.connect`'s `ca`). */
  readonly ca?: string | ReadonlyArray<string>
  /** Verify the server certificate on secure dials (default true). */
  readonly rejectUnauthorized?: boolean
  /** Dial deadline (TCP + TLS + HTTP upgrade) when the dial does not give one (default 10 seconds). */
  readonly dialTimeout?: Duration.Input
  /** How long an inbound connection may take to complete TLS and the HTTP upgrade (default 10 seconds). */
  readonly handshakeTimeout?: Duration.Input
  /** Largest message accepted (default 16 MiB); a larger one closes the connection with 1009. */
  readonly maxPayload?: number
  /** Unread bytes per connection above which reading is paused (default 4 MiB). */
  readonly maxBufferedBytes?: number
  /** How long closing a connection waits for the closing handshake (default 2 seconds). */
  readonly closeTimeout?: Duration.Input
  /** Listen backlog (default 511, Node's). */
  readonly backlog?: number
  /** TCP keep-alive idle time before the first probe (default 15 seconds). */
  readonly keepAliveInitialDelay?: Duration.Input
}

/** A WebSocket listener: the bound addresses and a view on what it holds. */
export interface WebSocketListener extends Transport.Listener {
  /**
   * `sockets`: accepted TCP sockets not yet closed (upgraded or not);
   * `connections`: upgraded WebSocket connections not yet closed;
   * `handlers`: handler fibers still running.
   */
  readonly stats: Effect.Effect<{ readonly sockets: number; readonly connections: number; readonly handlers: number }>
}

export interface WebSocketTransport extends Transport.Transport {
  readonly listen: (
    addr: Multiaddr.Multiaddr,
    handler: Transport.Handler
  ) => Effect.Effect<WebSocketListener, Transport.TransportError, Scope.Scope>
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

const { dns, dns4, dns6, ip4, ip6, p2p, tcp, tls, sni, ws, wss } = Multiaddr.codes
const httpPath = Multiaddr.codes["http-path"]

/** A WebSocket multiaddr taken apart. */
export interface WsAddress {
  /** TLS (`/wss`, `/tls/ws`, `/tls/sni/<name>/ws`). */
  readonly secure: boolean
  /** IP literal or DNS name (IPv6 without brackets). */
  readonly host: string
  /** 4 / 6 for an IP literal or `/dns4` / `/dns6`, 0 for `/dns`. */
  readonly family: 0 | 4 | 6
  readonly port: number
  /** The TLS server name of `/tls/sni/<name>`. */
  readonly sni?: string
  /** The HTTP request path: `/` unless `/http-path/<p>` gives one (decoded). */
  readonly path: string
  /** The security + ws part as written: `/ws`, `/wss`, `/tls/ws` or `/tls/sni/<name>/ws`. */
  readonly transport: string
  /** `/http-path/<p>` as written, or "". */
  readonly httpPath: string
}

const componentText = (c: Multiaddr.Component): string => c.value === undefined ? `/${c.name}` : `/${c.name}/${c.value}`

const decodePath = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value)
  } catch {
    return undefined
  }
}

const parse = (addr: Multiaddr.Multiaddr, listening: boolean): WsAddress | undefined => {
  const cs = addr.components
  const host = cs[0]
  if (host === undefined || host.value === undefined) return undefined
  const family: 0 | 4 | 6 | undefined = host.code === ip4 ?
    4 :
    host.code === ip6 ?
    6 :
    listening ?
    undefined :
    host.code === dns4 ?
    4 :
    host.code === dns6 ?
    6 :
    host.code === dns ?
    0 :
    undefined
  if (family === undefined) return undefined
  let i = 1
  let port: number | undefined
  if (cs[i]?.code === tcp) {
    port = Number(cs[i]!.value)
    i++
  } else if (listening) {
    return undefined
  }
  const start = i
  let secure: boolean
  let serverName: string | undefined
  const c = cs[i]
  if (c?.code === ws) {
    secure = false
    i++
  } else if (c?.code === wss) {
    secure = true
    i++
  } else if (c?.code === tls) {
    secure = true
    i++
    if (cs[i]?.code === sni && !listening) {
      serverName = cs[i]!.value
      i++
    }
    if (cs[i]?.code !== ws) return undefined
    i++
  } else {
    return undefined
  }
  const transport = cs.slice(start, i).map(componentText).join("")
  let path = "/"
  let pathText = ""
  if (cs[i]?.code === httpPath) {
    const decoded = decodePath(cs[i]!.value ?? "")
    if (decoded === undefined) return undefined
    path = decoded.startsWith("/") ? decoded : `/${decoded}`
    pathText = componentText(cs[i]!)
    i++
  }
  if (cs[i]?.code === p2p) i++
  if (i !== cs.length) return undefined
  return {
    secure,
    host: host.value,
    family,
    port: port ?? (secure ? 443 : 80),
    ...(serverName !== undefined ? { sni: serverName } : {}),
    path,
    transport,
    httpPath: pathText
  }
}

/** `addr` taken apart for a dial, or undefined when this transport does not dial it. */
export const parseDial = (addr: Multiaddr.Multiaddr): WsAddress | undefined => parse(addr, false)

/** `addr` taken apart for a listen, or undefined when this transport cannot listen on it. */
export const parseListen = (addr: Multiaddr.Multiaddr): WsAddress | undefined => parse(addr, true)

/** True for the dialable WebSocket addresses (module doc comment). */
export const canDial = (addr: Multiaddr.Multiaddr): boolean => parseDial(addr) !== undefined

const encodePath = (path: string): string => path.split("/").map(encodeURIComponent).join("/")

/** The `ws://` / `wss://` URL a WebSocket address dials (`/tls/sni` names the server, not the host). */
export const toUrl = (target: WsAddress): string => {
  const host = target.family === 6 || (target.family === 0 && Net.isIPv6(target.host))
    ? `[${target.host}]`
    : target.host
  return `${target.secure ? "wss" : "ws"}://${host}:${target.port}${encodePath(target.path)}`
}

const unsupported = (addr: Multiaddr.Multiaddr, what: string, why = "") =>
  new Transport.TransportError({
    reason: "Unsupported",
    address: addr.toString(),
    message: `ws: cannot ${what} ${addr.toString()}${why}`
  })

/** The `/ip4|ip6/<ip>/tcp/<port>` multiaddr of a socket endpoint (an IPv4-mapped IPv6 address becomes `/ip4`). */
const endpointAddr = (host: string | undefined, port: number | undefined): Multiaddr.Multiaddr | undefined => {
  if (host === undefined || port === undefined) return undefined
  const mapped = host.startsWith("::ffff:") && host.includes(".") ? host.slice(7) : host
  const r = Multiaddr.fromNodeAddress({ family: Net.isIPv4(mapped) ? 4 : 6, host: mapped, port, transport: "tcp" })
  return Result.isSuccess(r) ? r.success : undefined
}

const suffixAddr = (text: string): Multiaddr.Multiaddr => {
  const r = Multiaddr.fromString(text)
  return Result.isSuccess(r) ? r.success : Multiaddr.empty
}

const socketAddrs = (
  socket: Net.Socket,
  remoteSuffix: Multiaddr.Multiaddr,
  localSuffix: Multiaddr.Multiaddr
): { readonly remoteAddr: Multiaddr.Multiaddr; readonly localAddr: Multiaddr.Multiaddr } | undefined => {
  const remote = endpointAddr(socket.remoteAddress, socket.remotePort)
  const local = endpointAddr(socket.localAddress, socket.localPort)
  if (remote === undefined || local === undefined) return undefined
  return {
    remoteAddr: Multiaddr.encapsulate(remote, remoteSuffix),
    localAddr: Multiaddr.encapsulate(local, localSuffix)
  }
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

const ignore = () => {}

/** An HTTP error answer written straight to a socket that is not (or no longer) HTTP-managed, then closed. */
const rejectSocket = (socket: Stream.Duplex, status: 400 | 404 | 431, text: string) => {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.once("finish", () => socket.destroy())
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}

// ---------------------------------------------------------------------------
// Transport
// ---------------------------------------------------------------------------

const MiB = 1024 * 1024

/** The WebSocket transport with these options (a plain `Transport` value: no resources until used). */
export const make = (options: WebSocketOptions = {}): WebSocketTransport => {
  const dialTimeout = options.dialTimeout ?? Duration.seconds(10)
  const handshakeTimeout = options.handshakeTimeout ?? Duration.seconds(10)
  const maxPayload = options.maxPayload ?? 16 * MiB
  const backlog = options.backlog ?? 511
  const duplexOptions: WsDuplex.Options = {
    maxBufferedBytes: options.maxBufferedBytes ?? 4 * MiB,
    closeTimeout: options.closeTimeout ?? Duration.seconds(2)
  }
  const keepAliveDelay = Duration.toMillis(Duration.fromInputUnsafe(options.keepAliveInitialDelay ?? "15 seconds"))
  const certificate = options.certificate

  const canListen = (addr: Multiaddr.Multiaddr): boolean => {
    const target = parseListen(addr)
    return target !== undefined && (!target.secure || certificate !== undefined)
  }

  const clientOptions = (target: WsAddress): ClientOptions => {
    const base: ClientOptions = {
      perMessageDeflate: false,
      followRedirects: false,
      maxPayload,
      ...(target.family !== 0 ? { family: target.family } : {})
    }
    if (!target.secure) return base
    return {
      ...base,
      ...(options.ca !== undefined ? { ca: typeof options.ca === "string" ? options.ca : [...options.ca] } : {}),
      ...(options.rejectUnauthorized !== undefined ? { rejectUnauthorized: options.rejectUnauthorized } : {}),
      ...(target.sni !== undefined
        ? {
          servername: target.sni,
          headers: { host: target.port === 443 ? target.sni : `${target.sni}:${target.port}` }
        }
        : {})
    }
  }

  const dial = (
    addr: Multiaddr.Multiaddr,
    dialOptions?: Transport.DialOptions
  ): Effect.Effect<Transport.RawConnection, Transport.TransportError, Scope.Scope> =>
    Effect.gen(function*() {
      const target = parseDial(addr)
      if (target === undefined) return yield* unsupported(addr, "dial")
      const timeout = dialOptions?.timeout ?? dialTimeout
      const connected = yield* Effect.acquireRelease(connect(addr, target, timeout), (c) => c.close, {
        interruptible: true
      })
      const localSuffix = suffixAddr(target.secure ? (target.transport.startsWith("/wss") ? "/wss" : "/tls/ws") : "/ws")
      const addrs = socketAddrs(connected.socket, suffixAddr(target.transport + target.httpPath), localSuffix)
      if (addrs === undefined) {
        return yield* new Transport.TransportError({
          reason: "Io",
          address: addr.toString(),
          message: `ws: dial ${addr.toString()}: socket closed before its addresses were known`
        })
      }
      return { duplex: connected.duplex, ...addrs }
    })

  type Connected = WsDuplex.WsDuplex & { readonly socket: Net.Socket }

  /**
   * Open the WebSocket, with exactly one outcome: an open connection handed
   * to the caller, or a failure with the connection dropped (an `open` after
   * the deadline or an interruption closes what nobody will own).
   */
  const connect = (
    addr: Multiaddr.Multiaddr,
    target: WsAddress,
    timeout: Duration.Input
  ): Effect.Effect<Connected, Transport.TransportError> =>
    Effect.suspend(() => {
      const result = Deferred.makeUnsafe<Connected, Transport.TransportError>()
      let socket: WebSocket
      try {
        socket = new WebSocket(toUrl(target), clientOptions(target))
      } catch (err) {
        return Effect.fail(Errors.dialError("ws", addr, err))
      }
      // `ws` may emit more than one error while it goes; none may go unheard.
      socket.on("error", ignore)
      let upgraded: Net.Socket | undefined
      let connected: Connected | undefined
      const onUpgrade = (res: Http.IncomingMessage) => {
        upgraded = res.socket
      }
      const onOpen = () => {
        socket.off("error", onError)
        if (upgraded === undefined) {
          socket.terminate()
          Deferred.doneUnsafe(result, Exit.fail(Errors.dialError("ws", addr, new Error("upgraded without a socket"))))
          return
        }
        connected = { ...WsDuplex.make(socket, upgraded, duplexOptions), socket: upgraded }
        // Settled already (deadline, interruption): nobody will own it.
        if (!Deferred.doneUnsafe(result, Exit.succeed(connected))) socket.terminate()
      }
      const onError = (err: Error) => {
        socket.off("open", onOpen)
        socket.terminate()
        Deferred.doneUnsafe(result, Exit.fail(Errors.dialError("ws", addr, err)))
      }
      socket.once("upgrade", onUpgrade)
      socket.once("open", onOpen)
      socket.once("error", onError)
      /** Settle with `err` and drop the connection, unless already settled (then false). */
      const abandon = (err: Transport.TransportError): boolean => {
        if (!Deferred.doneUnsafe(result, Exit.fail(err))) return false
        socket.off("open", onOpen)
        socket.off("error", onError)
        socket.terminate()
        return true
      }
      return Deferred.await(result).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.suspend(() => {
              abandon(
                new Transport.TransportError({
                  reason: "Timeout",
                  address: addr.toString(),
                  message: `ws: dial ${addr.toString()}: no connection within ${
                    Duration.format(Duration.fromInputUnsafe(timeout))
                  }`
                })
              )
              // Opened at the last moment: the connection wins over the deadline.
              return Deferred.await(result)
            })
        }),
        Effect.onInterrupt(() =>
          Effect.suspend(() => {
            if (abandon(Errors.dialError("ws", addr, new Error("dial interrupted")))) return Effect.void
            return connected === undefined ? Effect.void : connected.close
          })
        )
      )
    })

  const listen = (
    addr: Multiaddr.Multiaddr,
    handler: Transport.Handler
  ): Effect.Effect<WebSocketListener, Transport.TransportError, Scope.Scope> =>
    Effect.gen(function*() {
      const target = parseListen(addr)
      if (target === undefined) return yield* unsupported(addr, "listen on")
      let secureContext: Tls.SecureContext | undefined
      if (target.secure) {
        if (certificate === undefined) return yield* unsupported(addr, "listen on", ": no certificate configured")
        secureContext = yield* Effect.try({
          try: () => Tls.createSecureContext({ cert: certificate.cert, key: certificate.key }),
          catch: (err) =>
            new Transport.TransportError({
              reason: "Io",
              address: addr.toString(),
              message: `ws: listen ${addr.toString()}: bad certificate or key: ${errorMessage(err)}`
            })
        })
      }

      const server = Net.createServer({ noDelay: true, keepAlive: true, keepAliveInitialDelay: keepAliveDelay })
      // Never listens: sockets are handed to it (for TLS, once wrapped).
      const httpServer = Http.createServer()
      const wsServer = new WebSocketServer({
        noServer: true,
        clientTracking: false,
        perMessageDeflate: false,
        maxPayload
      })

      interface Pending {
        readonly raw: Net.Socket
        upgraded: boolean
        deadline: Fiber.Fiber<void> | undefined
      }
      /** The socket HTTP sees (raw, or its TLS wrapper) → its accept-time state. */
      const pending = new WeakMap<Stream.Duplex, Pending>()
      /** Accepted TCP sockets not yet closed. */
      const sockets = new Set<Net.Socket>()
      let connections = 0
      let closing = false
      const serverClosed = Deferred.makeUnsafe<void>()

      // Runs last: drop what is left, then wait for the server to let go.
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
      const deadlines = yield* FiberSet.make<void, never>()
      const runDeadline = yield* FiberSet.runtime(deadlines)<never>()
      // Closed second: every connection at once (then the FiberSets interrupt every handler and deadline).
      const parent = yield* Inbound.connectionsScope
      // Runs first: stop accepting.
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          closing = true
          server.close(() => Deferred.doneUnsafe(serverClosed, Exit.void))
        })
      )

      const remoteSuffix = suffixAddr(target.transport)
      const localSuffix = suffixAddr(target.transport + target.httpPath)

      server.on("connection", (raw: Net.Socket) => {
        if (closing) {
          raw.destroy()
          return
        }
        sockets.add(raw)
        raw.on("error", ignore)
        let httpSocket: Stream.Duplex = raw
        if (secureContext !== undefined) {
          const tlsSocket = new Tls.TLSSocket(raw, { isServer: true, secureContext })
          tlsSocket.on("error", () => tlsSocket.destroy())
          httpSocket = tlsSocket
        }
        const state: Pending = { raw, upgraded: false, deadline: undefined }
        pending.set(httpSocket, state)
        state.deadline = runDeadline(
          Effect.sleep(handshakeTimeout).pipe(Effect.andThen(Effect.sync(() => {
            state.deadline = undefined
            if (!state.upgraded) {
              httpSocket.destroy()
              raw.destroy()
            }
          })))
        )
        raw.once("close", () => {
          sockets.delete(raw)
          state.deadline?.interruptUnsafe()
          state.deadline = undefined
        })
        httpServer.emit("connection", httpSocket)
      })

      // Not a handshake: a plain request gets 400 and the connection closes.
      httpServer.on("request", (_req: Http.IncomingMessage, res: Http.ServerResponse) => {
        res.writeHead(400, { "connection": "close", "content-type": "text/plain" })
        res.end("expected a WebSocket upgrade\n")
      })
      // Bytes that are not HTTP, or headers too large.
      httpServer.on("clientError", (err: Error, socket: Stream.Duplex) => {
        if (errorCode(err) === "HPE_HEADER_OVERFLOW") rejectSocket(socket, 431, "Request Header Fields Too Large")
        else rejectSocket(socket, 400, "Bad Request")
      })
      httpServer.on("upgrade", (req: Http.IncomingMessage, socket: Stream.Duplex, head: Buffer) => {
        const state = pending.get(socket)
        if (closing || state === undefined) {
          socket.destroy()
          return
        }
        if (target.httpPath !== "") {
          const url = req.url ?? "/"
          const q = url.indexOf("?")
          const path = decodePath(q < 0 ? url : url.slice(0, q))
          if (path !== target.path) {
            rejectSocket(socket, 404, "Not Found")
            return
          }
        }
        // A bad handshake: `ws` answers 400 and closes the socket.
        wsServer.handleUpgrade(req, socket, head, (websocket) => {
          state.upgraded = true
          state.deadline?.interruptUnsafe()
          state.deadline = undefined
          if (closing) {
            websocket.terminate()
            return
          }
          const wd = WsDuplex.make(websocket, socket, duplexOptions)
          connections++
          const addrs = socketAddrs(state.raw, remoteSuffix, localSuffix)
          if (addrs === undefined) {
            websocket.once("close", () => connections--)
            websocket.terminate()
            return
          }
          Inbound.serve({
            name: "ws",
            parent,
            run,
            handler,
            conn: { duplex: wd.duplex, remoteAddr: addrs.remoteAddr, localAddr: addrs.localAddr },
            release: wd.close,
            socket: websocket,
            onClose: () => connections--
          })
        })
      })

      yield* Effect.callback<void, Transport.TransportError>((resume) => {
        const onError = (err: Error) => {
          server.off("listening", onListening)
          resume(Effect.fail(Errors.listenError("ws", addr, err)))
        }
        const onListening = () => {
          server.off("error", onError)
          server.on("error", (err) => {
            run(Effect.logWarning(`ws: listener ${addr.toString()}: ${errorMessage(err)}`))
          })
          resume(Effect.void)
        }
        server.once("error", onError)
        server.once("listening", onListening)
        try {
          server.listen({ host: target.host, port: target.port, backlog, ipv6Only: target.family === 6 })
        } catch (err) {
          server.off("error", onError)
          server.off("listening", onListening)
          resume(Effect.fail(Errors.listenError("ws", addr, err)))
        }
      })

      const address = server.address()
      const boundBase = address !== null && typeof address === "object"
        ? endpointAddr(address.address, address.port)
        : undefined
      if (boundBase === undefined) {
        return yield* new Transport.TransportError({
          reason: "Io",
          address: addr.toString(),
          message: `ws: listen ${addr.toString()}: no bound address`
        })
      }
      return {
        addrs: [Multiaddr.encapsulate(boundBase, localSuffix)],
        stats: Effect.map(FiberSet.size(handlers), (n) => ({ sockets: sockets.size, connections, handlers: n }))
      }
    })

  return { name: "ws", canDial, canListen, dial, listen }
}

/** The WebSocket transport with default options (no certificate: plain `/ws` listeners only). */
export const transport: WebSocketTransport = make()
