/**
 * Identify, `/ipfs/id/1.0.0`, and Identify Push, `/ipfs/id/push/1.0.0`, per
 * the libp2p identify spec (https://github.com/libp2p/specs/blob/master/identify/README.md).
 *
 * - §identify: the peer that opens the stream reads one `Identify` message
 *   (varint length-prefixed protobuf, at most 8 KiB here as in js-libp2p)
 *   written by the other side, which then closes the stream.
 * - §identify/push: the peer that opens the stream writes one `Identify`
 *   message with what changed (we send the whole message) and closes.
 * - The message carries our public key, listen addresses, the address we
 *   observed the remote at, our protocols, and a signed peer record
 *   (RFC 0002 envelope, RFC 0003 record; domain `libp2p-peer-record`,
 *   payload type 0x0301 as implementations use).
 *
 * Every new connection is identified once, from `host.onConnection` (js-libp2p
 * does the same and resets a second identify stream on one connection, so
 * results are cached per open connection, until it closes). Results go to the Peerstore and are published on `events`.
 * When our protocol list or the addresses we advertise change, every connected peer gets a push.
 *
 * @since 0.1.0
 */
import {
  Bytes,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Layer,
  Option,
  PubSub,
  Result,
  Schema,
  type Scope,
  Stream
} from "effect"
import type * as Connection from "../../connection/Connection.ts"
import { Registrar } from "../../connection/Registrar.ts"
import { Identity } from "../../core/Identity.ts"
import * as Keys from "../../core/Keys.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as PeerRecord from "../../core/PeerRecord.ts"
import * as Reader from "../../core/Reader.ts"
import { AddressManager } from "../../host/AddressManager.ts"
import { Host } from "../../host/Host.ts"
import { Peerstore } from "../../host/Peerstore.ts"
import * as Release from "../../internal/release.ts"
import * as Strings from "../../internal/strings.ts"
import { IdentifyMessage, MAX_MESSAGE_SIZE } from "./messages.ts"

export const PROTOCOL = "/ipfs/id/1.0.0"
export const PUSH_PROTOCOL = "/ipfs/id/push/1.0.0"
export const PROTOCOL_VERSION = "ipfs/0.1.0"
export const AGENT_VERSION = "effect-libp2p/0.1.0"

export { IdentifyMessage, MAX_MESSAGE_SIZE } from "./messages.ts"

export const IdentifyErrorReason = Schema.Literals([
  "Stream", // the stream failed or ended early
  "Decode", // the message is not a valid Identify protobuf
  "TooLarge", // over MAX_MESSAGE_SIZE
  "KeyMismatch", // the public key is not the connection's peer's
  "Timeout"
])

export class IdentifyError extends Schema.TaggedError<IdentifyError>()("IdentifyError", {
  reason: IdentifyErrorReason,
  message: Schema.String
}) {}

export interface IdentifyResult {
  readonly peerId: PeerId.PeerId
  readonly protocolVersion: string | undefined
  readonly agentVersion: string | undefined
  readonly publicKey: Keys.PublicKey | undefined
  readonly listenAddrs: ReadonlyArray<Multiaddr.Multiaddr>
  readonly observedAddr: Multiaddr.Multiaddr | undefined
  readonly protocols: ReadonlyArray<string>
  /** The signed peer record, when one came and verified (RFC 0003). */
  readonly signedPeerRecord: {
    readonly seq: bigint
    readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
    /** The signed envelope as received (kept by the Peerstore). */
    readonly envelope?: Uint8Array
  } | undefined
}

export class Identify extends Context.Service<Identify, {
  /**
   * The identify result of a connection: run once per open connection of the
   * host and cached while it is open (a failure too). A connection that has
   * closed (or is not the host's) is asked anew, which fails on a closed one
   * (`ConnectionError` "Closed").
   */
  readonly identify: (
    conn: Connection.Connection
  ) => Effect.Effect<IdentifyResult, IdentifyError | Connection.ConnectionError>
  /** Push our current identify message to every connected peer. */
  readonly push: Effect.Effect<void>
  /**
   * A result after each successful identify or push received, from the
   * moment the stream is run; buffered per subscriber up to
   * {@link EVENTS_BUFFER} (sliding: a subscriber further behind loses the
   * oldest).
   */
  readonly events: Stream.Stream<IdentifyResult>
  /** Subscribe now: the stream it returns misses nothing from then on, while the current scope lasts. */
  readonly subscribe: Effect.Effect<Stream.Stream<IdentifyResult>, never, Scope.Scope>
}>()("effect-libp2p/Identify") {}

/** Results buffered for a subscriber that lags (sliding: beyond it the oldest are dropped). */
export const EVENTS_BUFFER = 1024

export interface IdentifyOptions {
  readonly agentVersion?: string
  /** Deadline for reading an identify message (default 10 s). */
  readonly timeout?: Duration.Input
  /** Identify every new connection automatically (default true). */
  readonly runOnConnect?: boolean
}

const NO_ADDRS: ReadonlyArray<Multiaddr.Multiaddr> = Object.freeze([])

const decodeAddrs = (list: ReadonlyArray<Uint8Array>): ReadonlyArray<Multiaddr.Multiaddr> => {
  if (list.length === 0) return NO_ADDRS
  const out: Array<Multiaddr.Multiaddr> = []
  for (const bytes of list) {
    const r = Multiaddr.fromBytes(bytes)
    if (Result.isSuccess(r)) out.push(r.success)
  }
  return out
}

/**
 * The key of a message: the remote peer id's own key object when the bytes are
 * that key (the secure channel authenticated it, so the connection, its peer id
 * and the Peerstore then share one object), otherwise decoded and checked
 * against the peer id.
 */
const messageKey = (
  bytes: Uint8Array,
  remotePeer: PeerId.PeerId
): Result.Result<Keys.PublicKey, IdentifyError> => {
  const known = PeerId.publicKey(remotePeer)
  if (Option.isSome(known) && Bytes.Equivalence(Keys.marshalPublicKey(known.value), bytes)) {
    return Result.succeed(known.value)
  }
  const key = Keys.unmarshalPublicKey(bytes)
  if (Result.isFailure(key)) {
    return Result.fail(new IdentifyError({ reason: "Decode", message: `publicKey: ${key.failure.message}` }))
  }
  if (!PeerId.equals(PeerId.fromPublicKey(key.success), remotePeer)) {
    return Result.fail(new IdentifyError({ reason: "KeyMismatch", message: "publicKey is not the remote peer's" }))
  }
  return Result.succeed(key.success)
}

/**
 * Signed peer records that verified, by their envelope's bytes, the most
 * recently seen `capacity` of them: a peer sends the same record on every
 * connection and push until its addresses change (go-libp2p, js-libp2p and
 * ours sign a record once per address set), and opening one costs an Ed25519
 * check (~60 µs). Only records that verified are kept, so a hit is what the
 * check would give; the key is all of the bytes, signature included.
 */
export class VerifiedRecords {
  private readonly capacity: number
  private readonly entries = new Map<string, PeerRecord.PeerRecord>()
  constructor(capacity = 64) {
    this.capacity = capacity
  }
  /** The record of `envelope`, verified now or before. */
  open(envelope: Uint8Array): Result.Result<PeerRecord.PeerRecord, PeerRecord.PeerRecordError> {
    const key = Strings.binary(envelope)
    const known = this.entries.get(key)
    if (known !== undefined) {
      this.entries.delete(key) // most recently used last
      this.entries.set(key, known)
      return Result.succeed(known)
    }
    const opened = PeerRecord.openSigned(envelope)
    if (Result.isSuccess(opened)) {
      this.entries.set(key, opened.success)
      if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!)
    }
    return opened
  }
  get size(): number {
    return this.entries.size
  }
}

/**
 * Check a received message against the connection and turn it into a result.
 * `verified`: records opened before (the service passes its own).
 */
export const interpret = (
  msg: IdentifyMessage,
  remotePeer: PeerId.PeerId,
  verified?: VerifiedRecords
): Result.Result<IdentifyResult, IdentifyError> => {
  let publicKey: Keys.PublicKey | undefined
  if (msg.publicKey !== undefined) {
    const key = messageKey(msg.publicKey, remotePeer)
    if (Result.isFailure(key)) return Result.fail(key.failure)
    publicKey = key.success
  }
  let record: IdentifyResult["signedPeerRecord"]
  if (msg.signedPeerRecord !== undefined) {
    const opened = verified === undefined
      ? PeerRecord.openSigned(msg.signedPeerRecord)
      : verified.open(msg.signedPeerRecord)
    if (Result.isSuccess(opened) && PeerId.equals(opened.success.peerId, remotePeer)) {
      record = { seq: opened.success.seq, addrs: decodeAddrs(opened.success.addrs), envelope: msg.signedPeerRecord }
    }
  }
  const observed = msg.observedAddr !== undefined ? Multiaddr.fromBytes(msg.observedAddr) : undefined
  return Result.succeed({
    peerId: remotePeer,
    protocolVersion: msg.protocolVersion,
    agentVersion: msg.agentVersion,
    publicKey,
    listenAddrs: decodeAddrs(msg.listenAddrs),
    observedAddr: observed !== undefined && Result.isSuccess(observed) ? observed.success : undefined,
    // every peer of the same software reports the same list: one shared copy
    protocols: Strings.internList(msg.protocols),
    signedPeerRecord: record
  })
}

/**
 * A connection's identify state, from its start until it closes: the result
 * once there is one (kept for the connection's lifetime), the run's Deferred
 * while it runs or after a failure, undefined before the first run.
 */
class CacheEntry implements Release.Releasable {
  readonly cache: Map<Connection.Connection, CacheEntry>
  readonly conn: Connection.Connection
  value: IdentifyResult | Deferred.Deferred<IdentifyResult, IdentifyError | Connection.ConnectionError> | undefined =
    undefined
  constructor(cache: Map<Connection.Connection, CacheEntry>, conn: Connection.Connection) {
    this.cache = cache
    this.conn = conn
    cache.set(conn, this)
  }
  release(): void {
    if (this.cache.get(this.conn) === this) this.cache.delete(this.conn)
  }
}

export const make = (options: IdentifyOptions = {}) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const host = yield* Host
    const registrar = yield* Registrar
    const peerstore = yield* Peerstore
    /** Observed addresses go to the AddressManager when the node has one (the presets do). */
    const addressManager = yield* Effect.serviceOption(AddressManager)
    const events = yield* PubSub.sliding<IdentifyResult>(EVENTS_BUFFER)
    /** Per open connection: its entry, from `onConnection` until the connection closes. */
    const cache = new Map<Connection.Connection, CacheEntry>()
    const timeout = options.timeout ?? Duration.seconds(10)
    const agentVersion = options.agentVersion ?? AGENT_VERSION
    const publicKeyBytes = Keys.marshalPublicKey(identity.publicKey)

    /**
     * The addresses we advertise: the Host's listen addresses, with the AddressManager's
     * confirmed and observed ones (and its `announce`/`noAnnounce`) when the node has one.
     */
    const listenAddrs = Effect.suspend(() => {
      const base = host.addrs().map((a) => Multiaddr.decapsulateCode(a, Multiaddr.codes.p2p))
      return addressManager._tag === "Some" ? addressManager.value.advertise(base) : Effect.succeed(base)
    })

    /**
     * Our signed peer record of `addrs`, signed again only when the addresses
     * change (as go-libp2p and js-libp2p keep theirs): seq = Clock time in ms,
     * as js-libp2p does, and above the previous record's.
     */
    let ours: { readonly addrs: string; readonly seq: bigint; readonly bytes: Uint8Array } | undefined
    const signedRecord = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) =>
      Effect.gen(function*() {
        let key = ""
        for (const a of addrs) {
          const k = Multiaddr.key(a)
          key += String.fromCharCode(k.length) + k // length-prefixed: no two lists give one key
        }
        if (ours !== undefined && ours.addrs === key) return ours.bytes
        const now = BigInt(yield* Clock.currentTimeMillis)
        const seq = ours !== undefined && now <= ours.seq ? ours.seq + 1n : now
        const bytes = yield* Effect.fromResult(
          PeerRecord.seal(identity.privateKey, PeerRecord.make(identity.peerId, seq, addrs))
        )
        ours = { addrs: key, seq, bytes }
        return bytes
      })
    const verified = new VerifiedRecords()

    const ourMessage = (conn: Connection.Connection) =>
      Effect.gen(function*() {
        const addrs = yield* listenAddrs
        const record = yield* Effect.result(signedRecord(addrs))
        const msg: IdentifyMessage = {
          protocolVersion: PROTOCOL_VERSION,
          agentVersion,
          publicKey: publicKeyBytes,
          listenAddrs: addrs.map(Multiaddr.toBytes),
          // A Unix socket's dialer has no address of its own (its remoteAddr is our listen path):
          // nothing was observed, so none is sent (js-libp2p fails identify on a /unix observedAddr).
          ...(conn.remoteAddr.components[0]?.code === Multiaddr.codes.unix
            ? {}
            : { observedAddr: Multiaddr.toBytes(conn.remoteAddr) }),
          protocols: registrar.protocols(),
          ...(Result.isSuccess(record) ? { signedPeerRecord: record.success } : {})
        }
        return IdentifyMessage.encode(msg)
      })

    const store = (result: IdentifyResult) =>
      Effect.gen(function*() {
        yield* peerstore.merge(result.peerId, {
          protocols: result.protocols,
          // a wildcard (0.0.0.0, ::) names no host: dialing it would reach our own machine (issue 18 §5)
          addrs: result.listenAddrs.filter((a) => !Multiaddr.isUnspecified(a)),
          ...(result.publicKey !== undefined ? { publicKey: result.publicKey } : {}),
          ...(result.agentVersion !== undefined ? { agentVersion: result.agentVersion } : {}),
          ...(result.protocolVersion !== undefined ? { protocolVersion: result.protocolVersion } : {})
        })
        if (result.signedPeerRecord !== undefined) {
          const { addrs, envelope, seq } = result.signedPeerRecord
          yield* peerstore.certify(result.peerId, seq, addrs.filter((a) => !Multiaddr.isUnspecified(a)), envelope)
        }
        yield* PubSub.publish(events, result)
      })

    const readMessage = (stream: Connection.Stream, remotePeer: PeerId.PeerId) =>
      Effect.gen(function*() {
        const bytes = yield* LengthPrefixed.readOne(Reader.make(stream), MAX_MESSAGE_SIZE).pipe(
          Effect.mapError((e) =>
            new IdentifyError({
              reason: e._tag === "ReaderError" && e.reason === "TooLarge" ? "TooLarge" : "Stream",
              message: e.message
            })
          )
        )
        const msg = yield* Effect.mapError(
          Effect.fromResult(IdentifyMessage.decode(bytes)),
          (e) => new IdentifyError({ reason: "Decode", message: e.message })
        )
        return yield* Effect.fromResult(interpret(msg, remotePeer, verified))
      }).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () => Effect.fail(new IdentifyError({ reason: "Timeout", message: "identify timed out" }))
        })
      )

    const runIdentify = (conn: Connection.Connection) =>
      Effect.scoped(Effect.gen(function*() {
        const stream = yield* conn.newStream([PROTOCOL])
        const result = yield* readMessage(stream, conn.remotePeer).pipe(Effect.tapError(() => stream.reset))
        yield* stream.closeWrite
        yield* store(result)
        if (addressManager._tag === "Some" && result.observedAddr !== undefined) {
          yield* addressManager.value.observe({
            observed: result.observedAddr,
            local: conn.localAddr,
            remote: conn.remoteAddr
          })
        }
        return result
      }))

    /** The first identify of an open connection; later callers wait on its Deferred, then read the cached result. */
    const run = (conn: Connection.Connection, entry: CacheEntry) =>
      Effect.gen(function*() {
        const deferred = yield* Deferred.make<IdentifyResult, IdentifyError | Connection.ConnectionError>()
        entry.value = deferred
        yield* Effect.onExit(runIdentify(conn), (exit) => {
          if (Exit.isSuccess(exit)) entry.value = exit.value
          return Deferred.done(deferred, exit)
        }).pipe(Effect.ignore)
        return yield* Deferred.await(deferred)
      })

    const identify = (
      conn: Connection.Connection
    ): Effect.Effect<IdentifyResult, IdentifyError | Connection.ConnectionError> =>
      Effect.suspend(() => {
        const entry = cache.get(conn)
        // not an open connection of the host (closed, or not ours): run without caching
        if (entry === undefined) return runIdentify(conn)
        const value = entry.value
        if (value === undefined) return run(conn, entry)
        return Deferred.isDeferred<IdentifyResult, IdentifyError | Connection.ConnectionError>(value)
          ? Deferred.await(value)
          : Effect.succeed(value)
      })

    /** Bounded by `timeout`: a peer that never answers or never closes must not stall every later push. */
    const pushTo = (conn: Connection.Connection) =>
      Effect.scoped(Effect.gen(function*() {
        // full negotiation: js-libp2p 3 may drop the data of an optimistic stream whose proposal, data
        // and FIN arrive together (it marks the stream ended before handing the bytes over)
        const stream = yield* conn.newStream([PUSH_PROTOCOL], { lazy: false })
        yield* LengthPrefixed.write(stream, yield* ourMessage(conn))
        yield* stream.closeWrite
        // wait for the remote to close its side (it sends nothing)
        yield* stream.read
      })).pipe(Effect.timeoutOption(timeout), Effect.ignore)

    const push = Effect.suspend(() => Effect.forEach(host.connections(), pushTo, { concurrency: 16, discard: true }))

    // §identify: answer with our message, then close.
    yield* registrar.handle(PROTOCOL, (stream, conn) =>
      Effect.gen(function*() {
        yield* LengthPrefixed.write(stream, yield* ourMessage(conn))
        yield* stream.closeWrite
      }))

    // §identify/push: read the pushed message and update what we know.
    yield* registrar.handle(PUSH_PROTOCOL, (stream, conn) =>
      Effect.gen(function*() {
        const result = yield* readMessage(stream, conn.remotePeer)
        yield* store(result)
        yield* stream.closeWrite
      }))

    // Every connection gets its cache entry for its lifetime, from its start (so the
    // entry is there before the connection is handed out), and is identified when
    // runOnConnect. The entry is released with the connection's other bookkeeping.
    const runOnConnect = options.runOnConnect ?? true
    yield* host.onConnection((conn) => {
      const added = Release.acquire(() => new CacheEntry(cache, conn))
      return runOnConnect ? Effect.andThen(added, Effect.ignore(identify(conn))) : added
    })

    // Push when our protocols change.
    const changes = yield* registrar.subscribeChanges
    yield* Effect.forkScoped(Stream.runForEach(changes, () => push))
    // … and when the addresses we advertise change (an address confirmed by AutoNAT, say)
    if (addressManager._tag === "Some") {
      yield* Effect.forkScoped(Stream.runForEach(
        Stream.filter(addressManager.value.events, (e) => e._tag === "AddressesChanged"),
        () => push
      ))
    }

    return Identify.of({
      identify,
      push,
      events: Stream.fromPubSub(events),
      subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription)
    })
  })

export const layer = (options: IdentifyOptions = {}) => Layer.effect(Identify, make(options))
