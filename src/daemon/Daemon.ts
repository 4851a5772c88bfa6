/**
 * The libp2p daemon: our node driven over the go-libp2p-daemon control
 * protocol (go-libp2p-daemon `specs/CONTROL.md`, `DHT.md`, `PUBSUB.md`,
 * `CM.md`; messages in `messages.ts`). Built on the node's public services
 * only: Host, Registrar, Peerstore, ConnectionManager, the Transports (for the
 * control socket and for dialing clients' stream handlers), and, when the
 * node has them, PeerRouting + ContentRouting (Kad) and Pubsub.
 *
 * - The control socket is a `/unix/<path>` (created mode 0600; a stale socket
 *   file from a crashed daemon is replaced, a live one is never touched, as
 *   the Unix transport does) or a loopback `/ip4/127.0.0.1/tcp/N` (port 0
 *   allowed). Another address fails with `DaemonError { reason: "Control" }`.
 * - Each control connection carries varint-length-prefixed `Request`s, each
 *   answered by a `Response`, in a loop (go's `handleConn`): a client may send
 *   several requests on one connection, or one per connection (the js client).
 *   `STREAM_OPEN` (on success) and `PUBSUB SUBSCRIBE` hand the connection over:
 *   it then carries the stream's bytes / `PSMessage`s until either side ends.
 *   The streaming DHT requests (`FIND_PROVIDERS`, `GET_CLOSEST_PEERS`,
 *   `SEARCH_VALUE`) answer `OK` with `dht {type: BEGIN}`, then one
 *   `DHTResponse {type: VALUE}` per result, then `{type: END}`.
 * - Errors are answered as go's daemon answers them: `Response {type: ERROR,
 *   error {msg}}` with go's texts where the request is at fault ("Malformed
 *   request; missing parameters", "DHT not enabled", "PubSub not enabled",
 *   "not supported", "routing: not found", "context deadline exceeded"), and
 *   our error's message where the operation failed. A request that is not
 *   protobuf, or longer than {@link Messages.MAX_REQUEST_SIZE}, is answered
 *   with an error and the connection is closed (go closes it without an
 *   answer); the daemon keeps serving everyone else.
 * - `STREAM_HANDLER` registers the protocols with the Registrar; each inbound
 *   stream dials the client's address, writes the `StreamInfo` header
 *   (length-prefixed) and relays bytes both ways. A client address that
 *   refuses: `DaemonError { reason: "HandlerUnreachable" }`, logged, the
 *   libp2p stream reset. Registering a protocol again moves it to the new
 *   address (go); a protocol the node itself serves (ping, identify…) is
 *   refused with the Registrar's error. `REMOVE_STREAM_HANDLER` (type 10)
 *   unregisters.
 * - Requests carry `timeout` in seconds; absent or 0: 60 s (go's DefaultTimeout).
 * - `FIND_PEER` answers the addresses the peer itself advertised (identify,
 *   signed records) when we know them, never the address it happened to dial
 *   us from; `LIST_PEERS` answers one entry per open connection (go).
 *
 * - `CONNECT` with a relay's address for the peer (`<relay>/p2p/<relay>/p2p-circuit`,
 *   the form clients pass) dials `…/p2p-circuit/p2p/<peer>` through the node's
 *   circuit transport; a relay's refusal keeps its status name in the error
 *   text (`relay: connect refused: NO_RESERVATION`), which clients parse.
 *   The protocol has no relay request; `daemon --relay` serves the hop.
 *
 * @since 0.2.0
 */
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Result, Schema, Scope, Semaphore, Stream } from "effect"
import * as fs from "node:fs"
import type * as Connection from "../connection/Connection.ts"
import { ConnectionManager } from "../connection/ConnectionManager.ts"
import { Registrar } from "../connection/Registrar.ts"
import * as Duplex from "../core/Duplex.ts"
import * as Keys from "../core/Keys.ts"
import * as LengthPrefixed from "../core/LengthPrefixed.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import * as Reader from "../core/Reader.ts"
import { Host } from "../host/Host.ts"
import { Peerstore } from "../host/Peerstore.ts"
import { Pubsub } from "../protocols/pubsub/Pubsub.ts"
import { ContentRouting } from "../routing/ContentRouting.ts"
import { type PeerInfo, PeerRouting, type RoutingError } from "../routing/PeerRouting.ts"
import type * as Transport from "../transport/Transport.ts"
import { Transports } from "../transport/Transport.ts"
import * as Messages from "./messages.ts"

export { MAX_REQUEST_SIZE } from "./messages.ts"

export const DaemonErrorReason = Schema.Literals([
  "Control", // the control address cannot be used (not /unix or loopback TCP, or the listen failed)
  "Malformed", // a request that is not a daemon Request
  "TooLarge", // a request over the size limit
  "HandlerUnreachable" // a client's stream-handler address did not accept the daemon's dial
])
export type DaemonErrorReason = typeof DaemonErrorReason.Type

export class DaemonError extends Schema.TaggedError<DaemonError>()("DaemonError", {
  reason: DaemonErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export interface DaemonOptions {
  /** `/unix/<path>` or `/ip4/127.0.0.1/tcp/<port>` (port 0: a free port the system picks). */
  readonly control: Multiaddr.Multiaddr
  /** Deadline of a request that gives none (default 60 s, go's). */
  readonly requestTimeout?: Duration.Input
  /** Largest request (default {@link Messages.MAX_REQUEST_SIZE}). */
  readonly maxRequestSize?: number
}

export interface DaemonStats {
  /** Control connections open now (those relaying a stream or a subscription included). */
  readonly controlConnections: number
  /** Protocols registered through STREAM_HANDLER. */
  readonly handlers: number
}

export class Daemon extends Context.Service<Daemon, {
  /** The control address actually bound (the real port for `tcp/0`). */
  readonly controlAddr: Multiaddr.Multiaddr
  readonly stats: () => DaemonStats
}>()("effect-libp2p/Daemon") {}

const { p2p, tcp } = Multiaddr.codes

/** go's text for a request past its deadline (context.DeadlineExceeded). */
const DEADLINE = "context deadline exceeded"

/**
 * A relay's address given for `peer` (`<relay>/p2p/<relay>/p2p-circuit`, as clients pass it,
 * go's peerstore form) names its target: `…/p2p-circuit/p2p/<peer>`; other addresses unchanged.
 *
 * @internal exported for the fuzz target of control requests
 */
export const circuitTo = (addr: Multiaddr.Multiaddr, peer: PeerId.PeerId) =>
  addr.components.at(-1)?.code === Multiaddr.codes["p2p-circuit"]
    ? Multiaddr.encapsulate(addr, `/p2p/${PeerId.toString(peer)}`)
    : Result.succeed(addr)

const routingMessage = (e: RoutingError) => (e.reason === "NotFound" ? "routing: not found" : e.message)

const messageOf = (e: unknown): string =>
  typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" ? e.message : String(e)

/**
 * A CID's bytes, checked as go-cid's `Cast` does (v0: a sha2-256 multihash; v1: version, codec, multihash).
 *
 * @internal exported for the fuzz target of control requests
 */
export const checkCid = (bytes: Uint8Array): Result.Result<Uint8Array, string> => {
  if (bytes.length === 34 && bytes[0] === 0x12 && bytes[1] === 0x20) return Result.succeed(bytes)
  let i = 0
  const varint = () => {
    let n = 0
    let shift = 0
    while (i < bytes.length) {
      const b = bytes[i++]!
      n += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return n
      shift += 7
      if (shift > 56) return -1
    }
    return -1
  }
  if (varint() !== 1 || varint() < 0) return Result.fail("invalid cid: not a CIDv0 or CIDv1")
  const start = i
  if (varint() < 0) return Result.fail("invalid cid: bad multihash code")
  const length = varint()
  if (length < 0 || i + length !== bytes.length) return Result.fail("invalid cid: bad multihash length")
  return Result.succeed(bytes.subarray(start))
}

/** Relay bytes both ways until both directions end; a failure on either side resets both. */
const relay = (a: Duplex.Duplex, b: Duplex.Duplex) => {
  const copy = (from: Duplex.Duplex, to: Duplex.Duplex) =>
    Effect.gen(function*() {
      while (true) {
        const chunks = yield* from.read
        if (Duplex.isEOF(chunks)) return yield* to.closeWrite
        yield* to.write(chunks)
      }
    })
  return Effect.all([copy(a, b), copy(b, a)], { concurrency: 2, discard: true }).pipe(
    Effect.onError(() => Effect.andThen(a.reset, b.reset))
  )
}

const transportFor = (transports: ReadonlyArray<Transport.Transport>, addr: Multiaddr.Multiaddr, listen: boolean) =>
  transports.find((t) => (listen ? t.canListen(addr) : t.canDial(addr)))

/** The control address is a Unix socket path or loopback TCP (§7: nobody else may drive the node). */
const checkControl = (addr: Multiaddr.Multiaddr) => {
  const first = addr.components[0]
  if (first?.code === Multiaddr.codes.unix) return Effect.succeed("unix" as const)
  if (Multiaddr.isLoopback(addr) && addr.components[1]?.code === tcp && addr.components.length === 2) {
    return Effect.succeed("tcp" as const)
  }
  return Effect.fail(
    new DaemonError({
      reason: "Control",
      message: `the control address must be /unix/<path> or loopback TCP, not ${Multiaddr.toString(addr)}`
    })
  )
}

export const make = (options: DaemonOptions) =>
  Effect.gen(function*() {
    const host = yield* Host
    const registrar = yield* Registrar
    const peerstore = yield* Peerstore
    const connectionManager = yield* ConnectionManager
    const transports = yield* Transports
    const peerRouting = Option.getOrUndefined(yield* Effect.serviceOption(PeerRouting))
    const contentRouting = Option.getOrUndefined(yield* Effect.serviceOption(ContentRouting))
    const pubsub = Option.getOrUndefined(yield* Effect.serviceOption(Pubsub))
    const daemonScope = yield* Effect.scope
    const maxRequestSize = options.maxRequestSize ?? Messages.MAX_REQUEST_SIZE
    const defaultTimeout = Duration.fromInputUnsafe(options.requestTimeout ?? Duration.seconds(60))

    // --- stream handlers registered by clients
    const handlers = new Map<string, { addr: Multiaddr.Multiaddr; scope: Scope.Closeable }>()
    const handlerLock = yield* Semaphore.make(1)
    let controlConnections = 0

    const serveInbound = (protocol: string) => (stream: Connection.Stream, connection: Connection.Connection) =>
      Effect.gen(function*() {
        const entry = handlers.get(protocol)
        if (entry === undefined) return yield* stream.reset
        const transport = transportFor(transports, entry.addr, false)
        const unreachable = (why: string, cause?: unknown) =>
          new DaemonError({
            reason: "HandlerUnreachable",
            message: `the stream handler of ${protocol} at ${Multiaddr.toString(entry.addr)} is unreachable: ${why}`,
            ...(cause !== undefined ? { cause } : {})
          })
        if (transport === undefined) return yield* unreachable("no transport dials it")
        const raw = yield* Effect.mapError(transport.dial(entry.addr), (cause) => unreachable(cause.message, cause))
        yield* LengthPrefixed.write(
          raw.duplex,
          Messages.StreamInfoCodec.encode({
            peer: PeerId.toBytes(connection.remotePeer),
            addr: Multiaddr.toBytes(connection.remoteAddr),
            proto: stream.protocol
          })
        )
        yield* relay(raw.duplex, stream)
      })

    const addHandler = (addr: Multiaddr.Multiaddr, protocols: ReadonlyArray<string>) =>
      handlerLock.withPermits(1)(Effect.gen(function*() {
        for (const protocol of protocols) {
          const existing = handlers.get(protocol)
          if (existing !== undefined) {
            existing.addr = addr
            continue
          }
          const scope = yield* Scope.fork(daemonScope, "sequential")
          const registered = yield* Effect.result(
            registrar.handle(protocol, serveInbound(protocol)).pipe(Scope.provide(scope))
          )
          if (Result.isFailure(registered)) {
            yield* Scope.close(scope, Exit.void)
            return Messages.error(registered.failure.message)
          }
          handlers.set(protocol, { addr, scope })
        }
        return Messages.ok()
      }))

    const removeHandler = (protocols: ReadonlyArray<string>) =>
      handlerLock.withPermits(1)(Effect.gen(function*() {
        for (const protocol of protocols) {
          const existing = handlers.get(protocol)
          if (existing === undefined) continue
          handlers.delete(protocol)
          yield* Scope.close(existing.scope, Exit.void)
        }
        return Messages.ok()
      }))

    // --- request helpers

    const deadline = (timeout: bigint | undefined) =>
      timeout !== undefined && timeout > 0n ? Duration.seconds(Number(timeout)) : defaultTimeout

    /** Run `effect` within the request's deadline; a failure becomes the error response with its message. */
    const answer = <E>(
      timeout: bigint | undefined,
      effect: Effect.Effect<Messages.Response, E>,
      describe: (e: E) => string = messageOf
    ): Effect.Effect<Messages.Response> =>
      effect.pipe(
        Effect.timeoutOrElse({ duration: deadline(timeout), orElse: () => Effect.succeed(Messages.error(DEADLINE)) }),
        Effect.catch((e: E) => Effect.succeed(Messages.error(describe(e))))
      )

    const peerOf = (bytes: Uint8Array | undefined) => Effect.fromResult(PeerId.fromBytes(bytes ?? new Uint8Array(0)))

    const peerInfo = (info: PeerInfo): Messages.PeerInfo => ({
      id: PeerId.toBytes(info.peerId),
      addrs: info.addrs.map((a) => Multiaddr.toBytes(Multiaddr.decapsulateCode(a, p2p)))
    })

    /** The addresses a peer advertised itself (identify, signed records); else what routing found. */
    const advertised = (info: PeerInfo): PeerInfo => {
      const own = (peerstore.get(info.peerId)?.addrEntries ?? []).filter((e) =>
        e.source === "identify" || e.source === "certified"
      )
      return own.length > 0 ? { peerId: info.peerId, addrs: own.map((e) => e.addr) } : info
    }

    // --- the requests

    const identify = (): Messages.Response => {
      const addrs = host.addrs().map((a) => Multiaddr.decapsulateCode(a, p2p))
      // a dialable TCP address first (§7)
      const sorted = [
        ...addrs.filter((a) => a.components.some((c) => c.code === tcp)),
        ...addrs.filter((a) => !a.components.some((c) => c.code === tcp))
      ]
      return Messages.ok({
        identify: { id: PeerId.toBytes(host.peerId), addrs: sorted.map(Multiaddr.toBytes) }
      })
    }

    const connect = (req: NonNullable<Messages.Request["connect"]>) =>
      answer(
        req.timeout,
        Effect.gen(function*() {
          const peer = yield* peerOf(req.peer)
          const addrs = yield* Effect.forEach(
            req.addrs,
            (b) => Effect.fromResult(Result.flatMap(Multiaddr.fromBytes(b), (a) => circuitTo(a, peer)))
          )
          if (addrs.length > 0) yield* peerstore.merge(peer, { addrs, addrSource: "manual" })
          yield* host.dial(peer)
          return Messages.ok()
        })
      )

    const disconnect = (req: NonNullable<Messages.Request["disconnect"]>) =>
      answer(
        undefined,
        Effect.gen(function*() {
          const peer = yield* peerOf(req.peer)
          yield* host.hangUp(peer)
          return Messages.ok()
        })
      )

    const listPeers = (): Messages.Response =>
      Messages.ok({
        peers: host.connections().map((c) => ({
          id: PeerId.toBytes(c.remotePeer),
          addrs: [Multiaddr.toBytes(Multiaddr.decapsulateCode(c.remoteAddr, p2p))]
        }))
      })

    const connManager = (req: NonNullable<Messages.Request["connManager"]>) =>
      answer(
        undefined,
        Effect.gen(function*() {
          switch (req.type) {
            case Messages.ConnManagerType.TAG_PEER:
            case Messages.ConnManagerType.UNTAG_PEER: {
              const peer = yield* peerOf(req.peer)
              const tag = req.tag ?? ""
              if (tag === "") return Messages.error("Malformed request; missing tag parameter")
              if (req.type === Messages.ConnManagerType.TAG_PEER) {
                yield* connectionManager.tagPeer(peer, tag, Number(req.weight ?? 0n))
              } else {
                yield* connectionManager.untagPeer(peer, tag)
              }
              return Messages.ok()
            }
            case Messages.ConnManagerType.TRIM:
              yield* connectionManager.trim
              return Messages.ok()
            default:
              return Messages.error("Unexpected request")
          }
        })
      )

    const peerStore = (req: NonNullable<Messages.Request["peerStore"]>) =>
      answer(
        undefined,
        Effect.gen(function*() {
          if (req.id === undefined) return Messages.error(Messages.MALFORMED)
          const peer = yield* peerOf(req.id)
          const known = peerstore.get(peer)
          switch (req.type) {
            case Messages.PeerstoreType.GET_PROTOCOLS:
              return Messages.ok({ peerStore: { protos: known?.protocols ?? [] } })
            case Messages.PeerstoreType.GET_PEER_INFO:
              return Messages.ok({
                peerStore: { peer: peerInfo({ peerId: peer, addrs: known?.addrs ?? [] }) }
              })
            default:
              return Messages.error("Unexpected request")
          }
        })
      )

    type Writer = (bytes: Uint8Array) => Effect.Effect<void, Duplex.DuplexError>

    const dhtStream = (write: Writer, values: ReadonlyArray<Messages.DhtResponse>) =>
      Effect.gen(function*() {
        yield* write(Messages.ResponseCodec.encode(Messages.ok({ dht: { type: Messages.DhtResponseType.BEGIN } })))
        for (const v of values) yield* write(Messages.DhtResponseCodec.encode(v))
        yield* write(Messages.DhtResponseCodec.encode({ type: Messages.DhtResponseType.END }))
      })

    /** A DHT request: its single response, or (streaming requests) the values to stream. */
    const dht = (req: Messages.DhtRequest) =>
      Effect.gen(function*() {
        if (peerRouting === undefined || contentRouting === undefined) {
          return { response: Messages.error("DHT not enabled") }
        }
        const single = (effect: Effect.Effect<Messages.Response, unknown>) =>
          Effect.map(answer(req.timeout, effect, (e) => isRoutingError(e) ? routingMessage(e) : messageOf(e)), (
            response
          ) => ({ response }))
        const streamed = (effect: Effect.Effect<ReadonlyArray<Messages.DhtResponse>, unknown>) =>
          Effect.map(
            answer(
              req.timeout,
              Effect.map(effect, (values) => ({ type: 0 as const, values })),
              (e) => isRoutingError(e) ? routingMessage(e) : messageOf(e)
            ),
            (r) => ("values" in r ? { values: r.values as ReadonlyArray<Messages.DhtResponse> } : { response: r })
          )
        const value = (v: Uint8Array): Messages.DhtResponse => ({ type: Messages.DhtResponseType.VALUE, value: v })
        switch (req.type) {
          case Messages.DhtType.FIND_PEER:
            if (req.peer === undefined) return { response: Messages.error("Malformed request; missing peer parameter") }
            return yield* single(Effect.gen(function*() {
              const peer = yield* peerOf(req.peer)
              const info = advertised(yield* peerRouting.findPeer(peer))
              return Messages.ok({ dht: { type: Messages.DhtResponseType.VALUE, peer: peerInfo(info) } })
            }))
          case Messages.DhtType.FIND_PEERS_CONNECTED_TO_PEER:
            return { response: Messages.error("not supported") }
          case Messages.DhtType.FIND_PROVIDERS: {
            if (req.cid === undefined) return { response: Messages.error("Malformed request; missing cid parameter") }
            const cid = checkCid(req.cid)
            if (Result.isFailure(cid)) return { response: Messages.error(cid.failure) }
            const limit = req.count !== undefined && req.count > 0 ? req.count : 20
            return yield* streamed(Effect.map(
              contentRouting.findProviders(cid.success, { limit }),
              (found) => found.slice(0, limit).map((p) => ({ type: Messages.DhtResponseType.VALUE, peer: peerInfo(p) }))
            ))
          }
          case Messages.DhtType.GET_CLOSEST_PEERS:
            if (req.key === undefined) return { response: Messages.error("Malformed request; missing key parameter") }
            return yield* streamed(Effect.map(
              peerRouting.getClosestPeers(req.key),
              (peers) => peers.map((p) => value(PeerId.toBytes(p.peerId)))
            ))
          case Messages.DhtType.GET_PUBLIC_KEY: {
            if (req.peer === undefined) return { response: Messages.error("Malformed request; missing peer parameter") }
            return yield* single(Effect.gen(function*() {
              const peer = yield* peerOf(req.peer)
              const known = Option.getOrUndefined(PeerId.publicKey(peer)) ?? peerstore.get(peer)?.publicKey
              if (known !== undefined) {
                return Messages.ok({ dht: value(Keys.publicKeyToProtobuf(known)) })
              }
              const pkKey = new Uint8Array([...new TextEncoder().encode("/pk/"), ...PeerId.toBytes(peer)])
              const bytes = yield* contentRouting.get(pkKey)
              const key = yield* Effect.fromResult(Keys.publicKeyFromProtobuf(bytes))
              if (!PeerId.matchesPublicKey(peer, key)) return Messages.error("public key does not match peer ID")
              return Messages.ok({ dht: value(bytes) })
            }))
          }
          case Messages.DhtType.GET_VALUE:
            if (req.key === undefined) return { response: Messages.error("Malformed request; missing key parameter") }
            return yield* single(Effect.map(contentRouting.get(req.key), (v) => Messages.ok({ dht: value(v) })))
          case Messages.DhtType.SEARCH_VALUE: {
            if (req.key === undefined) return { response: Messages.error("Malformed request; missing key parameter") }
            const key = req.key
            // go streams each better value found; nothing found is an empty stream, not an error
            return yield* streamed(
              contentRouting.get(key).pipe(
                Effect.map((v) => [value(v)]),
                Effect.catchIf((e) => e.reason === "NotFound", () => Effect.succeed([]))
              )
            )
          }
          case Messages.DhtType.PUT_VALUE:
            if (req.key === undefined) return { response: Messages.error("Malformed request; missing key parameter") }
            if (req.value === undefined) {
              return { response: Messages.error("Malformed request; missing value parameter") }
            }
            return yield* single(Effect.as(contentRouting.put(req.key, req.value), Messages.ok()))
          case Messages.DhtType.PROVIDE: {
            if (req.cid === undefined) return { response: Messages.error("Malformed request; missing cid parameter") }
            const cid = checkCid(req.cid)
            if (Result.isFailure(cid)) return { response: Messages.error(cid.failure) }
            return yield* single(Effect.as(contentRouting.provide(cid.success), Messages.ok()))
          }
          default:
            return { response: Messages.error("Unexpected request") }
        }
      })

    /** A pubsub request other than SUBSCRIBE. */
    const pubsubRequest = (req: Messages.PubsubRequest) =>
      answer(
        undefined,
        Effect.gen(function*() {
          if (pubsub === undefined) return Messages.error("PubSub not enabled")
          switch (req.type) {
            case Messages.PubsubType.GET_TOPICS:
              return Messages.ok({ pubsub: { topics: pubsub.topics(), peerIDs: [] } })
            case Messages.PubsubType.LIST_PEERS:
              if (req.topic === undefined) return Messages.error("Malformed request; missing topic parameter")
              return Messages.ok({ pubsub: { topics: [], peerIDs: pubsub.peers(req.topic).map(PeerId.toBytes) } })
            case Messages.PubsubType.PUBLISH:
              if (req.topic === undefined) return Messages.error("Malformed request; missing topic parameter")
              yield* pubsub.publish(req.topic, req.data ?? new Uint8Array(0))
              return Messages.ok()
            default:
              return Messages.error("Unexpected request")
          }
        })
      )

    /** SUBSCRIBE: OK, then every message as a PSMessage until the client closes the connection. */
    const subscribe = (topic: string, write: Writer, reader: Reader.Reader) =>
      Effect.scoped(Effect.gen(function*() {
        const messages = yield* pubsub!.subscribe(topic)
        yield* write(Messages.ResponseCodec.encode(Messages.ok()))
        const forward = messages.pipe(
          Stream.runForEach((m) =>
            write(Messages.PSMessageCodec.encode({
              ...(m.raw.from !== undefined ? { from: m.raw.from } : {}),
              ...(m.raw.data !== undefined ? { data: m.raw.data } : {}),
              ...(m.raw.seqno !== undefined ? { seqno: m.raw.seqno } : {}),
              topicIDs: [m.topic],
              ...(m.raw.signature !== undefined ? { signature: m.raw.signature } : {}),
              ...(m.raw.key !== undefined ? { key: m.raw.key } : {})
            }))
          )
        )
        // go reads (and ignores) until the client closes; then the subscription ends
        const untilClosed = Effect.gen(function*() {
          while (true) {
            const chunk = yield* reader.readSome
            if (Duplex.isEOF(chunk)) return
          }
        })
        yield* Effect.raceFirst(Effect.ignore(forward), Effect.ignore(untilClosed))
      }))

    /** STREAM_OPEN: OK with the StreamInfo, then relay the control connection and the stream. */
    const streamOpen = (
      req: NonNullable<Messages.Request["streamOpen"]>,
      write: Writer,
      control: Duplex.Duplex
    ) =>
      Effect.scoped(Effect.gen(function*() {
        const peer = PeerId.fromBytes(req.peer)
        if (Result.isFailure(peer)) {
          yield* write(Messages.ResponseCodec.encode(Messages.error(peer.failure.message)))
          return false
        }
        const opened = yield* Effect.exit(
          host.newStream(peer.success, req.proto, { lazy: false }).pipe(
            Effect.timeoutOrElse({
              duration: deadline(req.timeout),
              orElse: () => Effect.fail(new Error(DEADLINE))
            })
          )
        )
        if (Exit.isFailure(opened)) {
          const failure = Cause.findErrorOption(opened.cause)
          yield* write(Messages.ResponseCodec.encode(Messages.error(
            Option.isSome(failure) ? messageOf(failure.value) : Cause.pretty(opened.cause)
          )))
          return false
        }
        const stream = opened.value
        // the connection the stream runs on (the newest to the peer when it cannot be told apart)
        const conns = host.connections(peer.success)
        const conn = conns.find((c) => c.streams().some((s) => s.id === stream.id)) ?? conns.at(-1)
        yield* write(Messages.ResponseCodec.encode(Messages.ok({
          streamInfo: {
            peer: PeerId.toBytes(peer.success),
            addr: Multiaddr.toBytes(conn?.remoteAddr ?? Multiaddr.empty),
            proto: stream.protocol
          }
        })))
        yield* Effect.ignore(relay(control, stream))
        return true
      }))

    /** One control connection: requests in a loop until EOF, a handover, or bad input. */
    const serve = (conn: Transport.RawConnection) =>
      Effect.gen(function*() {
        controlConnections++
        yield* Effect.addFinalizer(() => Effect.sync(() => controlConnections--))
        const reader = Reader.make(conn.duplex)
        const write: Writer = (bytes) => LengthPrefixed.write(conn.duplex, bytes)
        const respond = (r: Messages.Response) => write(Messages.ResponseCodec.encode(r))
        while (true) {
          const bytes = yield* LengthPrefixed.read(reader, maxRequestSize).pipe(
            Effect.mapError((e) =>
              e._tag === "ReaderError" && e.reason === "TooLarge"
                ? new DaemonError({ reason: "TooLarge", message: `request over ${maxRequestSize} bytes`, cause: e })
                : new DaemonError({ reason: "Malformed", message: `bad request framing: ${e.message}`, cause: e })
            )
          )
          if (bytes === undefined) return
          const decoded = Messages.RequestCodec.decode(bytes)
          if (Result.isFailure(decoded)) {
            return yield* new DaemonError({
              reason: "Malformed",
              message: `not a daemon request: ${decoded.failure.message}`,
              cause: decoded.failure
            })
          }
          const req = decoded.success
          switch (req.type) {
            case Messages.RequestType.IDENTIFY:
              yield* respond(identify())
              break
            case Messages.RequestType.CONNECT:
              yield* respond(
                req.connect === undefined ? Messages.error(Messages.MALFORMED) : yield* connect(req.connect)
              )
              break
            case Messages.RequestType.STREAM_OPEN: {
              if (req.streamOpen === undefined) {
                yield* respond(Messages.error(Messages.MALFORMED))
                break
              }
              const handedOver = yield* streamOpen(req.streamOpen, write, Duplex.prepend(conn.duplex, reader.rest()))
              if (handedOver) return
              break
            }
            case Messages.RequestType.STREAM_HANDLER:
            case Messages.RequestType.REMOVE_STREAM_HANDLER: {
              const body = req.type === Messages.RequestType.STREAM_HANDLER
                ? req.streamHandler
                : req.removeStreamHandler
              if (body === undefined) {
                yield* respond(Messages.error(Messages.MALFORMED))
                break
              }
              if (req.type === Messages.RequestType.REMOVE_STREAM_HANDLER) {
                yield* respond(yield* removeHandler(body.proto))
                break
              }
              const addr = Multiaddr.fromBytes(body.addr)
              yield* respond(
                Result.isFailure(addr)
                  ? Messages.error(addr.failure.message)
                  : yield* addHandler(addr.success, body.proto)
              )
              break
            }
            case Messages.RequestType.DHT: {
              if (req.dht === undefined) {
                yield* respond(
                  peerRouting === undefined ? Messages.error("DHT not enabled") : Messages.error(Messages.MALFORMED)
                )
                break
              }
              const result = yield* dht(req.dht)
              if ("values" in result) yield* dhtStream(write, result.values)
              else yield* respond(result.response)
              break
            }
            case Messages.RequestType.LIST_PEERS:
              yield* respond(listPeers())
              break
            case Messages.RequestType.CONNMANAGER:
              yield* respond(
                req.connManager === undefined ? Messages.error(Messages.MALFORMED) : yield* connManager(req.connManager)
              )
              break
            case Messages.RequestType.DISCONNECT:
              yield* respond(
                req.disconnect === undefined ? Messages.error(Messages.MALFORMED) : yield* disconnect(req.disconnect)
              )
              break
            case Messages.RequestType.PUBSUB: {
              if (pubsub === undefined) {
                yield* respond(Messages.error("PubSub not enabled"))
                break
              }
              if (req.pubsub === undefined) {
                yield* respond(Messages.error(Messages.MALFORMED))
                break
              }
              if (req.pubsub.type === Messages.PubsubType.SUBSCRIBE) {
                if (req.pubsub.topic === undefined) {
                  yield* respond(Messages.error("Malformed request; missing topic parameter"))
                  break
                }
                return yield* subscribe(req.pubsub.topic, write, reader)
              }
              yield* respond(yield* pubsubRequest(req.pubsub))
              break
            }
            case Messages.RequestType.PEERSTORE:
              yield* respond(
                req.peerStore === undefined ? Messages.error(Messages.MALFORMED) : yield* peerStore(req.peerStore)
              )
              break
            default:
              // go closes the connection on a type it does not know; we say why first
              yield* respond(Messages.error(`unexpected request type ${req.type}`))
              return
          }
        }
      }).pipe(
        Effect.catch((e) =>
          Effect.gen(function*() {
            yield* Effect.logDebug(`daemon: control connection: ${e.message}`)
            if (e._tag === "DaemonError") {
              yield* Effect.ignore(
                LengthPrefixed.write(conn.duplex, Messages.ResponseCodec.encode(Messages.error(e.message)))
              )
            }
          })
        )
      )

    // --- the control socket
    const kind = yield* checkControl(options.control)
    const transport = transportFor(transports, options.control, true)
    if (transport === undefined) {
      return yield* new DaemonError({
        reason: "Control",
        message: `no transport listens on ${Multiaddr.toString(options.control)}`
      })
    }
    const listener = yield* transport.listen(options.control, (conn) => serve(conn)).pipe(
      Effect.mapError((cause) =>
        new DaemonError({
          reason: "Control",
          message: `cannot listen on ${Multiaddr.toString(options.control)}: ${cause.message}`,
          cause
        })
      )
    )
    const controlAddr = listener.addrs[0] ?? options.control
    if (kind === "unix") {
      const path = controlAddr.components[0]!.value!
      // only this user may drive the node
      yield* Effect.try({
        try: () => fs.chmodSync(path, 0o600),
        catch: (cause) =>
          new DaemonError({ reason: "Control", message: `cannot chmod 0600 ${path}: ${messageOf(cause)}`, cause })
      })
    }
    return Daemon.of({
      controlAddr,
      stats: () => ({ controlConnections, handlers: handlers.size })
    })
  })

const isRoutingError = (e: unknown): e is RoutingError =>
  typeof e === "object" && e !== null && "_tag" in e && e._tag === "RoutingError"

/** The daemon on the node in context; it listens on the control address while the layer lives. */
export const layer = (options: DaemonOptions) => Layer.effect(Daemon, make(options))
