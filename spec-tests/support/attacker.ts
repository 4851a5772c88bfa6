/**
 * Helpers for the node-level bad-input tests (ARCHITECTURE.md §5: bad input
 * from the network is a typed error and a closed connection, never a crash, a
 * hang, an unbounded buffer or a leaked fiber).
 *
 * - {@link watchedNode}: one of our TCP nodes (Noise + Yamux, identify, ping)
 *   built from explicit parts, whose TCP listener is watched (accepted sockets
 *   and handler fibers still alive), and whose logs are captured so that a
 *   defect hidden in a debug log is seen.
 * - {@link connect} / {@link listenOnce}: the attacker, a raw `node:net` socket
 *   that writes hand-made bytes and records how and when our node closed it.
 * - {@link negotiate}, {@link noiseInitiator}, {@link SecureSession},
 *   {@link YamuxReader}: valid prefixes of a session (multistream-select,
 *   the Noise XX handshake, yamux framing) built from our own codec modules,
 *   so that the garbage lands exactly where a test wants it.
 */
import type { Scope } from "effect"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Logger, References, Result, Schema, Stream } from "effect"
import * as Net from "node:net"
import * as Nodes from "../../layers/Node.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import type { HostEvent } from "../../src/host/Host.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import * as Noise from "../../src/security/Noise.ts"
import type * as CipherState from "../../src/security/noise/CipherState.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as Payload from "../../src/security/noise/Payload.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import { takeBytes } from "./bytes.ts"
import { chain } from "./errors.ts"
import { ma } from "./multiaddr.ts"
import { buildNode, tcpNode, type TestNode } from "./node.ts"
import type { RawFrame as YamuxFrame } from "./yamux.ts"

// ---------------------------------------------------------------------------
// The node under attack
// ---------------------------------------------------------------------------

export interface CapturedLog {
  readonly level: string
  readonly message: string
  readonly cause: Cause.Cause<unknown>
}

export interface WatchedNode extends TestNode {
  /** Accepted sockets not yet closed and connection-handler fibers still running, over all listeners. */
  readonly stats: Effect.Effect<{ readonly connections: number; readonly handlers: number }>
  /** Every log line the node wrote (debug included). */
  readonly logs: ReadonlyArray<CapturedLog>
  /** Log lines whose cause holds a defect (`Effect.die`): bugs, never expected from bad input. */
  readonly defects: () => ReadonlyArray<CapturedLog>
  /** The typed errors the node logged (e.g. an inbound upgrade that failed): tag, reason and message. */
  readonly failures: () => ReadonlyArray<LoggedFailure>
}

export interface LoggedFailure {
  readonly tag: string
  readonly reason: string | undefined
  readonly message: string
  /** The error's tags and reasons down its causes (`chain` of support/errors.ts). */
  readonly chain: ReadonlyArray<string>
}

const field = (u: unknown, key: string): string | undefined =>
  typeof u === "object" && u !== null && key in u && typeof (u as Record<string, unknown>)[key] === "string"
    ? (u as Record<string, string>)[key]
    : undefined

export interface WatchedOptions {
  /** Deadline for upgrading a raw connection (default: the Upgrader's 10 s). */
  readonly upgradeTimeout?: Duration.Input
  readonly yamux?: Yamux.YamuxOptions
  /** Resource limits (e.g. `fairness.allow` to exempt loopback from the per-source shares). */
  readonly resources?: Nodes.NodeOptions["resources"]
}

/**
 * A TCP + Noise + Yamux node on 127.0.0.1 (port 0) in the current scope, with
 * its listener watched and its logs (debug level and up) captured.
 */
export const watchedNode = (options: WatchedOptions = {}): Effect.Effect<WatchedNode, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const listeners: Array<Tcp.TcpListener> = []
    const tcp = Tcp.make()
    const transport: Transport.Transport = {
      ...tcp,
      listen: (addr, handler) => Effect.tap(tcp.listen(addr, handler), (l) => Effect.sync(() => void listeners.push(l)))
    }
    const logs: Array<CapturedLog> = []
    const capture = Logger.make<unknown, void>((o) => {
      logs.push({ level: o.logLevel, message: String(o.message), cause: o.cause })
    })
    const noise = yield* Noise.make()
    const layer = Nodes.layer({
      listen: [ma("/ip4/127.0.0.1/tcp/0")],
      transports: [transport],
      security: [noise],
      muxers: [options.yamux !== undefined ? Yamux.make(options.yamux) : Yamux.yamux],
      ...(options.upgradeTimeout !== undefined ? { upgradeTimeout: options.upgradeTimeout } : {}),
      ...(options.resources !== undefined ? { resources: options.resources } : {})
    })
    // the layer's fibers (listener handlers, sessions) inherit these references
    const node = yield* buildNode(layer).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([capture])),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
    return {
      ...node,
      stats: Effect.map(Effect.forEach(listeners, (l) => l.stats), (all) => ({
        connections: all.reduce((n, s) => n + s.connections, 0),
        handlers: all.reduce((n, s) => n + s.handlers, 0)
      })),
      logs,
      defects: () => logs.filter((l) => Cause.hasDies(l.cause)),
      failures: () =>
        logs.filter((l) => Cause.hasFails(l.cause)).map((l) => {
          const e = Cause.squash(l.cause)
          return {
            tag: field(e, "_tag") ?? "?",
            reason: field(e, "reason"),
            message: field(e, "message") ?? String(e),
            chain: chain(e)
          }
        })
    }
  })

/** Poll `check` every 10 ms until it holds or `within` passes; then evaluate it one last time. */
export const eventually = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  within: Duration.Input = "5 seconds"
): Effect.Effect<boolean, E, R> =>
  Effect.gen(function*() {
    const deadline = (yield* Clock.currentTimeMillis) + Duration.toMillis(Duration.fromInputUnsafe(within))
    while ((yield* Clock.currentTimeMillis) < deadline) {
      if (yield* check) return true
      yield* Effect.sleep("10 millis")
    }
    return yield* check
  })

/** Deterministic pseudo-random bytes (mulberry32), so that a failure can be replayed. */
export const randomBytes = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n)
  let a = seed >>> 0
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff
  }
  return out
}

/**
 * The node closed `attacker` within `within`: fails otherwise. Returns the
 * close and the milliseconds from the call to it.
 */
export const expectClosed = (
  attacker: Attacker,
  within: Duration.Input
): Effect.Effect<Closed & { readonly elapsed: number }, AttackerError> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const closed = yield* attacker.closed.pipe(
      Effect.timeoutOrElse({
        duration: within,
        orElse: () =>
          Effect.fail(
            new AttackerError({
              message: `the node did not close the connection within ${
                Duration.format(Duration.fromInputUnsafe(within))
              }`
            })
          )
      })
    )
    return { ...closed, elapsed: Math.max(0, closed.at - start) }
  })

/**
 * The node is fine after an attack: its connections are back to `baseline`
 * (no growth), a fresh well-behaved node can dial and ping it, its listener
 * holds exactly that one extra connection and no handler fiber (an upgraded
 * connection owns its scope, no fiber waits for it; nothing leaked), and
 * nothing it logged holds a defect. Returns the new baseline.
 */
export const expectHealthy = (node: WatchedNode, baseline: number): Effect.Effect<number, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const settled = yield* eventually(Effect.sync(() => node.host.connections().length === baseline))
    if (!settled) {
      return yield* new AttackerError({
        message: `host.connections() is ${node.host.connections().length}, expected ${baseline}`
      })
    }
    const client = yield* tcpNode()
    const rtts = yield* client.ping.ping(node.addr)
    if (rtts.length !== 1) return yield* new AttackerError({ message: "the well-behaved client could not ping" })
    const after = node.host.connections().length
    if (after !== baseline + 1) {
      return yield* new AttackerError({
        message: `host.connections() is ${after} after one good dial, expected ${baseline + 1}`
      })
    }
    const listenerSettled = yield* eventually(
      Effect.map(node.stats, (s) => s.connections === baseline + 1 && s.handlers === 0)
    )
    if (!listenerSettled) {
      const s = yield* node.stats
      return yield* new AttackerError({
        message: `the listener holds ${s.connections} sockets and ${s.handlers} handler fibers, expected ${
          baseline + 1
        } and 0`
      })
    }
    const defects = node.defects()
    if (defects.length > 0) {
      return yield* new AttackerError({
        message: `defects logged: ${defects.map((d) => `${d.message}: ${Cause.pretty(d.cause)}`).join("\n")}`
      })
    }
    return baseline + 1
  })

/** The process's active libuv resources by kind (sockets, servers, timers …): a leaked socket or timer shows here. */
export const activeResources = (): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1
  return out
}

/**
 * The process's active resources once they stopped changing (the same for
 * 200 ms, within 5 s): what earlier tests left closing (sockets shutting
 * down, their timers) has settled, so it is a fair baseline.
 */
export const settledResources = Effect.gen(function*() {
  let last = JSON.stringify(activeResources())
  let stable = 0
  for (let i = 0; i < 250 && stable < 10; i++) {
    yield* Effect.sleep("20 millis")
    const now = JSON.stringify(activeResources())
    stable = now === last ? stable + 1 : 0
    last = now
  }
  return activeResources()
})

/**
 * The process's active resources are back to at most `before`, kind by kind
 * (within 5 s): no socket, server or timer left behind. (At most: a timer
 * that was pending when `before` was taken may have fired since.)
 */
export const expectResourcesBack = (before: Record<string, number>) =>
  Effect.gen(function*() {
    const back = () => Object.entries(activeResources()).every(([kind, n]) => n <= (before[kind] ?? 0))
    const settled = yield* eventually(Effect.sync(back))
    if (!settled) {
      return yield* new AttackerError({
        message: `active resources ${JSON.stringify(activeResources())}, expected ${JSON.stringify(before)}`
      })
    }
  })

// ---------------------------------------------------------------------------
// The attacker: a raw node:net socket
// ---------------------------------------------------------------------------

export class AttackerError extends Schema.TaggedError<AttackerError>()("AttackerError", {
  message: Schema.String
}) {}

/** How our node ended the attacker's connection. */
export interface Closed {
  /** The socket saw ECONNRESET / EPIPE (our node reset it) rather than a clean FIN. */
  readonly reset: boolean
  /** Bytes the attacker received in all. */
  readonly received: number
  /** Clock time (ms) of the close. */
  readonly at: number
}

export interface Attacker {
  readonly socket: Net.Socket
  /** Write bytes (one write per call); errors are ignored: our node may have closed already. */
  readonly send: (...chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void>
  /** Exactly `n` bytes; fails once the connection ended before they arrived. */
  readonly read: (n: number) => Effect.Effect<Uint8Array, AttackerError>
  /** Half-close (FIN). */
  readonly end: Effect.Effect<void>
  /** Resolves when the socket is closed in both directions. */
  readonly closed: Effect.Effect<Closed>
  readonly isClosed: () => boolean
  /** Bytes received so far. */
  readonly received: () => number
}

/** Wrap a connected socket; destroyed when the current scope closes. */
export const fromSocket = (socket: Net.Socket): Effect.Effect<Attacker, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
    const buf: Array<Uint8Array> = []
    let buffered = 0
    let received = 0
    let ended = false
    let reset = false
    let waiters: Array<() => void> = []
    const closed = Deferred.makeUnsafe<Closed>()
    const wake = () => {
      const ws = waiters
      waiters = []
      for (const w of ws) w()
    }
    socket.on("data", (chunk: Buffer) => {
      buf.push(chunk)
      buffered += chunk.byteLength
      received += chunk.byteLength
      wake()
    })
    socket.on("end", () => {
      ended = true
      wake()
    })
    socket.on("error", (err: Error & { code?: string }) => {
      if (err.code === "ECONNRESET" || err.code === "EPIPE") reset = true
    })
    socket.on("close", () => {
      ended = true
      Deferred.doneUnsafe(closed, Exit.succeed({ reset, received, at: clock.currentTimeMillisUnsafe() }))
      wake()
    })
    const take = (n: number): Uint8Array => {
      buffered -= n
      return takeBytes(buf, n)
    }
    const read = (n: number): Effect.Effect<Uint8Array, AttackerError> =>
      Effect.suspend(() => {
        if (buffered >= n) return Effect.succeed(take(n))
        if (ended) {
          return Effect.fail(new AttackerError({ message: `connection ended with ${buffered} of ${n} bytes` }))
        }
        return Effect.flatMap(
          Effect.callback<void>((resume) => {
            const w = () => resume(Effect.void)
            waiters.push(w)
            return Effect.sync(() => {
              waiters = waiters.filter((x) => x !== w)
            })
          }),
          () => read(n)
        )
      })
    return {
      socket,
      send: (...chunks) =>
        Effect.sync(() => {
          if (socket.destroyed || socket.writableEnded) return
          if (chunks.length === 1) socket.write(chunks[0]!)
          else socket.write(Buffer.concat(chunks))
        }),
      read,
      end: Effect.sync(() => void socket.end()),
      closed: Deferred.await(closed),
      isClosed: () => socket.destroyed,
      received: () => received
    }
  })

/**
 * Connect to a TCP multiaddr (the /p2p part is ignored), from `localAddress`
 * when given (on Linux any of 127.0.0.0/8 on loopback: an attacker from
 * another source address or subnet than the honest peers).
 */
export const connect = (
  addr: Multiaddr.Multiaddr,
  options: { readonly localAddress?: string } = {}
): Effect.Effect<Attacker, AttackerError, Scope.Scope> =>
  Effect.gen(function*() {
    const na = Result.getOrThrow(Multiaddr.toNodeAddress(addr))
    const socket = yield* Effect.callback<Net.Socket, AttackerError>((resume) => {
      const s = Net.createConnection({
        host: na.host,
        port: na.port,
        noDelay: true,
        ...(options.localAddress !== undefined ? { localAddress: options.localAddress } : {})
      })
      s.once("connect", () => resume(Effect.succeed(s)))
      s.once("error", (err) => resume(Effect.fail(new AttackerError({ message: err.message }))))
    })
    return yield* fromSocket(socket)
  })

/**
 * A listener on 127.0.0.1 that plays `serve` (forked in the current scope)
 * with the first connection it accepts; later ones are destroyed.
 */
export const listenOnce = <E>(
  serve: (attacker: Attacker) => Effect.Effect<void, E, Scope.Scope>
): Effect.Effect<
  { readonly addr: Multiaddr.Multiaddr; readonly served: Effect.Effect<Attacker> },
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const accepted = Deferred.makeUnsafe<Net.Socket>()
    const attackerReady = Deferred.makeUnsafe<Attacker>()
    const server = Net.createServer()
    server.on("connection", (socket) => {
      if (!Deferred.doneUnsafe(accepted, Exit.succeed(socket))) socket.destroy()
    })
    yield* Effect.callback<void>((resume) => {
      server.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.void))
    })
    yield* Effect.addFinalizer(() => Effect.sync(() => void server.close()))
    yield* Effect.forkScoped(
      Effect.gen(function*() {
        const attacker = yield* fromSocket(yield* Deferred.await(accepted))
        Deferred.doneUnsafe(attackerReady, Exit.succeed(attacker))
        yield* Effect.ignore(serve(attacker))
      })
    )
    const address = server.address() as Net.AddressInfo
    return { addr: ma(`/ip4/127.0.0.1/tcp/${address.port}`), served: Deferred.await(attackerReady) }
  })

// ---------------------------------------------------------------------------
// Valid session prefixes, from our own codecs
// ---------------------------------------------------------------------------

/** One multistream-select message: `uvarint(len) ‖ text ‖ \n`. */
export const msMessage = (text: string): Uint8Array => Result.getOrThrow(Multistream.encodeMessage(text))

/**
 * As the initiator: send the header and `protocol`, expect the header and
 * the echo back (fails on anything else).
 */
export const negotiate = (attacker: Attacker, protocol: string): Effect.Effect<void, AttackerError> =>
  Effect.gen(function*() {
    yield* attacker.send(Multistream.HEADER_FRAME, msMessage(protocol))
    const expected = [Multistream.HEADER_FRAME, msMessage(protocol)]
    for (const e of expected) {
      const got = yield* attacker.read(e.byteLength)
      if (Buffer.compare(got, e) !== 0) {
        return yield* new AttackerError({ message: `negotiation: expected ${Buffer.from(e).toString("hex")}` })
      }
    }
  })

/**
 * As the responder: read the header and one proposal of `protocol`, answer
 * with the header and the echo.
 */
export const negotiateResponder = (attacker: Attacker, protocol: string): Effect.Effect<void, AttackerError> =>
  Effect.gen(function*() {
    const expected = [Multistream.HEADER_FRAME, msMessage(protocol)]
    for (const e of expected) {
      const got = yield* attacker.read(e.byteLength)
      if (Buffer.compare(got, e) !== 0) {
        return yield* new AttackerError({ message: `negotiation: expected ${Buffer.from(e).toString("hex")}` })
      }
    }
    yield* attacker.send(Multistream.HEADER_FRAME, msMessage(protocol))
  })

/** A Noise message with its 2-byte big-endian length. */
export const noiseFrame = (message: Uint8Array): Uint8Array => {
  const out = new Uint8Array(2 + message.byteLength)
  out[0] = message.byteLength >>> 8
  out[1] = message.byteLength & 0xff
  out.set(message, 2)
  return out
}

export const readNoiseMessage = (attacker: Attacker): Effect.Effect<Uint8Array, AttackerError> =>
  Effect.flatMap(attacker.read(2), (len) => attacker.read((len[0]! << 8) | len[1]!))

/** A handshake payload: `identity`'s key, a signature by `signer` over `signedStatic`, and `muxers`. */
export const handshakePayload = (options: {
  readonly identity: Keys.PrivateKey
  readonly signedStatic: Uint8Array
  readonly signer?: Keys.PrivateKey
  readonly muxers?: ReadonlyArray<string>
}): Uint8Array =>
  Payload.codec.encode({
    identity_key: Keys.publicKeyToProtobuf(options.identity.publicKey),
    identity_sig: Result.getOrThrow(Payload.sign(options.signer ?? options.identity, options.signedStatic)),
    ...(options.muxers !== undefined && options.muxers.length > 0
      ? { extensions: { webtransport_certhashes: [], stream_muxers: options.muxers } }
      : {})
  })

const unwrap = <A, E extends { readonly message: string }>(r: Result.Result<A, E>): Effect.Effect<A, AttackerError> =>
  Result.isSuccess(r) ? Effect.succeed(r.success) : Effect.fail(new AttackerError({ message: r.failure.message }))

/** The attacker's side of an established Noise session: encrypts and decrypts transport messages. */
export interface SecureSession {
  readonly attacker: Attacker
  readonly remotePeer: PeerId.PeerId
  /** One transport message (≤ 65519 plaintext bytes) with its length prefix. */
  readonly encrypt: (plaintext: Uint8Array) => Uint8Array
  /** Encrypt `plaintext` (split into transport messages) and send it in one write. */
  readonly send: (plaintext: Uint8Array) => Effect.Effect<void>
  /** The next transport message, decrypted. */
  readonly receive: Effect.Effect<Uint8Array, AttackerError>
}

const secureSession = (
  attacker: Attacker,
  ciphers: HandshakeState.TransportCiphers,
  remotePeer: PeerId.PeerId
): SecureSession => {
  const encrypt = (plaintext: Uint8Array) =>
    noiseFrame(Result.getOrThrow(ciphers.send.encryptWithAd(new Uint8Array(0), plaintext)))
  return {
    attacker,
    remotePeer,
    encrypt,
    send: (plaintext) =>
      Effect.suspend(() => {
        const frames: Array<Uint8Array> = []
        for (let at = 0; at < plaintext.byteLength || at === 0; at += 65519) {
          frames.push(encrypt(plaintext.subarray(at, at + 65519)))
          if (plaintext.byteLength === 0) break
        }
        return attacker.send(...frames)
      }),
    receive: Effect.flatMap(readNoiseMessage(attacker), (m) => unwrap(decryptWith(ciphers.receive, m)))
  }
}

const decryptWith = (c: CipherState.CipherState, m: Uint8Array) => c.decryptWithAd(new Uint8Array(0), m)

export interface InitiatorOptions {
  /** The attacker's identity key. */
  readonly identity: Keys.PrivateKey
  /** Sign another static key than the one sent (a signature that does not verify). */
  readonly signWrongStatic?: boolean
  /** Muxers offered in the handshake (early muxer negotiation); default ["/yamux/1.0.0"]. */
  readonly muxers?: ReadonlyArray<string>
  /** Send these bytes as the payload of message 3 instead of a proper one. */
  readonly payload3?: Uint8Array
}

/**
 * As the initiator, the whole upgrade prefix up to a Noise session:
 * multistream-select `/noise`, then the XX handshake (message 3 carries our
 * payload, optionally with a bad signature).
 */
export const noiseInitiator = (
  attacker: Attacker,
  options: InitiatorOptions
): Effect.Effect<SecureSession, AttackerError> =>
  Effect.gen(function*() {
    yield* negotiate(attacker, Noise.PROTOCOL)
    const staticKeyPair = X25519.generate()
    const hs = HandshakeState.make({ initiator: true, staticKeyPair })
    yield* attacker.send(noiseFrame(yield* unwrap(hs.writeMessage(new Uint8Array(0)))))
    const payload2 = yield* unwrap(hs.readMessage(yield* readNoiseMessage(attacker)))
    const verified = yield* unwrap(Payload.verify(payload2, hs.remoteStatic()!, undefined))
    const signedStatic = options.signWrongStatic === true ? X25519.generate().publicRaw : staticKeyPair.publicRaw
    const payload3 = options.payload3 ?? handshakePayload({
      identity: options.identity,
      signedStatic,
      muxers: options.muxers ?? [Yamux.PROTOCOL]
    })
    yield* attacker.send(noiseFrame(yield* unwrap(hs.writeMessage(payload3))))
    const ciphers = yield* unwrap(hs.split())
    return secureSession(attacker, ciphers, verified.peerId)
  })

// ---------------------------------------------------------------------------
// Yamux frames
// ---------------------------------------------------------------------------

export { frame as yamuxFrame, type RawFrame as YamuxFrame } from "./yamux.ts"

/** Reads plaintext out of the decrypted Noise transport messages, across message boundaries. */
export const plainReader = (session: SecureSession) => {
  let pending = new Uint8Array(0)
  const need = (n: number): Effect.Effect<void, AttackerError> =>
    Effect.suspend(() => {
      if (pending.byteLength >= n) return Effect.void
      return Effect.flatMap(session.receive, (m) => {
        const next = new Uint8Array(pending.byteLength + m.byteLength)
        next.set(pending, 0)
        next.set(m, pending.byteLength)
        pending = next
        return need(n)
      })
    })
  return {
    /** The next `n` plaintext bytes. */
    read: (n: number): Effect.Effect<Uint8Array, AttackerError> =>
      Effect.map(need(n), () => {
        const out = pending.slice(0, n)
        pending = pending.slice(n)
        return out
      }),
    /** At least `n` bytes buffered, without consuming them. */
    peek: (n: number): Effect.Effect<Uint8Array, AttackerError> => Effect.map(need(n), () => pending)
  }
}

/**
 * As the initiator inside the Noise session: multistream-select `protocol`
 * (expects the header and the echo back).
 */
export const negotiateSecure = (
  session: SecureSession,
  reader: ReturnType<typeof plainReader>,
  protocol: string
): Effect.Effect<void, AttackerError> =>
  Effect.gen(function*() {
    const header = Multistream.HEADER_FRAME
    const proposal = msMessage(protocol)
    const both = new Uint8Array(header.byteLength + proposal.byteLength)
    both.set(header, 0)
    both.set(proposal, header.byteLength)
    yield* session.send(both)
    const got = yield* reader.read(both.byteLength)
    if (Buffer.compare(got, both) !== 0) {
      return yield* new AttackerError({ message: `secure negotiation: got ${Buffer.from(got).toString("hex")}` })
    }
  })

/** Reads whole yamux frames out of the plaintext. */
export const yamuxReader = (reader: ReturnType<typeof plainReader>) => {
  const next: Effect.Effect<YamuxFrame, AttackerError> = Effect.gen(function*() {
    const head = yield* reader.peek(Frame.HEADER_LENGTH)
    const header = yield* unwrap(Frame.decode(head, 0))
    const n = header.type === Frame.TYPE_DATA ? header.length : 0
    const whole = yield* reader.read(Frame.HEADER_LENGTH + n)
    return { header, payload: whole.subarray(Frame.HEADER_LENGTH) }
  })
  /** Frames until a GoAway: its code, or `undefined` when the connection ended without one. */
  const untilGoAway: Effect.Effect<number | undefined> = Effect.gen(function*() {
    while (true) {
      const f = yield* Effect.result(next)
      if (Result.isFailure(f)) return undefined
      if (f.success.header.type === Frame.TYPE_GO_AWAY) return f.success.header.length
    }
  })
  return { next, untilGoAway }
}

// ---------------------------------------------------------------------------
// Host events
// ---------------------------------------------------------------------------

/** Record the node's Host events from now on (in the current scope). */
export const recordEvents = (node: TestNode): Effect.Effect<ReadonlyArray<HostEvent>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const events = yield* node.host.subscribe
    const seen: Array<HostEvent> = []
    yield* Effect.forkScoped(Stream.runForEach(events, (e) => Effect.sync(() => void seen.push(e))))
    return seen
  })

/** Events of `kind` about `peer`. */
export const eventsFor = (
  events: ReadonlyArray<HostEvent>,
  kind: HostEvent["_tag"],
  peer: PeerId.PeerId
): number =>
  events.filter((e) => {
    if (e._tag !== kind) return false
    if (e._tag === "ConnectionOpen" || e._tag === "ConnectionClose") return PeerId.equals(e.connection.remotePeer, peer)
    if (e._tag === "PeerConnect" || e._tag === "PeerDisconnect") return PeerId.equals(e.peerId, peer)
    return false
  }).length
