/**
 * The router-agnostic pubsub core (libp2p specs `pubsub/README.md`): topics and
 * local subscriptions, publishing, message signing, the message id, the
 * seen-cache, the validation pipeline and the per-peer streams. A router
 * (`floodsub/Floodsub.ts`, `gossipsub/Gossipsub.ts`) decides where messages go;
 * each router module provides the {@link Pubsub} service through its `layer`.
 *
 * - §The RPC: every peer gets one long-lived outbound stream from us (opened by
 *   `host.onConnection` on the first connection to it, with the router's
 *   protocols in preference order; a second connection waits and takes over
 *   when the first ends); the RPCs a peer sends arrive on its own outbound
 *   stream, which we read here, whichever connection it runs on. Each RPC is varint length-prefixed,
 *   at most {@link PubsubOptions.maxRpcSize} (1 MiB); a longer one, or one that
 *   does not decode, ends that inbound stream (the connection stays).
 * - Outbound RPCs go through a bounded per-peer queue (`peerQueue`, dropping:
 *   a peer that does not read loses RPCs, it never grows our memory).
 * - §Message Signing: `StrictSign` (default) signs every message we publish
 *   (`from` = our peer id, an 8-byte `seqno`, `signature` over
 *   `libp2p-pubsub:` ++ the message without `signature`/`key`, `key` only when
 *   the public key is not inlined in the peer id) and rejects received messages
 *   without a valid signature by `from` (a `key` that is not `from`'s is
 *   rejected); `StrictNoSign` publishes without `from`/`seqno`/`signature`/`key`
 *   and rejects messages that carry any of them.
 * - Message id: `from ++ seqno` by default under StrictSign (go, js), SHA-256
 *   of `data` under StrictNoSign (js `msgIdFnStrictNoSign`); configurable.
 * - Seen-cache: ids for `seenTtl` (default 120 s, go's `TimeCacheDuration`),
 *   on the node's `Clock`; a message already seen is not validated, delivered
 *   or forwarded again (the router is told, for gossipsub's IDONTWANT/score).
 * - Validation: per-topic validators returning Accept / Reject / Ignore, run
 *   with a timeout (`validateTimeout`, default 5 s, then Ignore) by
 *   `validateConcurrency` workers from a bounded queue (`validateQueue`,
 *   dropping: a message that does not fit is ignored, as go's throttle does);
 *   only accepted messages are delivered locally and forwarded; Reject is
 *   reported to the router (score P4). Topics without validators skip the queue.
 * - Bounds on what a peer can make us hold: subscriptions per RPC
 *   (`maxSubscriptionsPerRpc`, extra ones ignored) and topics per peer
 *   (`maxTopicsPerPeer`, subscriptions beyond it ignored); messages per RPC
 *   are bounded by the RPC size.
 *
 * Local subscribers get a `Stream` of messages from a dropping queue of
 * `subscriberBuffer` messages (a subscriber that lags loses the newest);
 * closing the subscription's scope unsubscribes. Own messages are not delivered
 * to our own subscribers (js's `emitSelf: false`).
 *
 * Anchors: go-libp2p-pubsub `pubsub.go`, `comm.go`, `sign.go`, `validation.go`,
 * `timecache/`; js `@libp2p/gossipsub` `gossipsub.ts`.
 *
 * @since 0.2.0
 */
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Fiber,
  Layer,
  Option,
  Queue,
  Random,
  Result,
  Schema,
  type Scope,
  Stream
} from "effect"
import { createHash } from "node:crypto"
import type * as Connection from "../../connection/Connection.ts"
import { Registrar } from "../../connection/Registrar.ts"
import { Identity } from "../../core/Identity.ts"
import * as Keys from "../../core/Keys.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import type * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Reader from "../../core/Reader.ts"
import { Host } from "../../host/Host.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as Options from "../../internal/options.ts"
import * as Strings from "../../internal/strings.ts"
import * as Messages from "./messages.ts"
import * as PubsubMetrics from "./metrics.ts"
import type { PeerHandle, PubsubRouter, RoutedMessage, RouterContext, RouterFactory } from "./Router.ts"

export { MAX_RPC_SIZE } from "./messages.ts"
export type { PeerHandle, PubsubRouter, RoutedMessage, RouterContext, RouterFactory } from "./Router.ts"

export const PubsubErrorReason = Schema.Literals([
  "Decode", // an RPC or message that is not valid protobuf
  "TooLarge", // over maxRpcSize / maxMessageSize
  "Stream", // the stream failed
  "InvalidMessage", // a message breaking the signing policy (missing/extra fields, bad seqno, bad author)
  "InvalidSignature", // a signature that does not verify, or a key that is not the author's
  "Signing", // we could not sign
  "InvalidTopic", // an empty topic
  "Duplicate" // we publish a message whose id is in the seen-cache (js PublishError.Duplicate)
])
export type PubsubErrorReason = typeof PubsubErrorReason.Type

export class PubsubError extends Schema.TaggedError<PubsubError>()("PubsubError", {
  reason: PubsubErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** README §Message Signing, as go and js name the policies. */
export type SignaturePolicy = "StrictSign" | "StrictNoSign"

/** A validator's verdict (go `ValidationResult`, js `TopicValidatorResult`). */
export type ValidationResult = "Accept" | "Reject" | "Ignore"

/** A message as subscribers and validators see it. */
export interface PubsubMessage {
  readonly topic: string
  readonly data: Uint8Array
  /** The author (StrictSign), undefined under StrictNoSign. */
  readonly from: PeerId.PeerId | undefined
  /** The author's sequence number (StrictSign). */
  readonly seqno: bigint | undefined
  readonly id: Uint8Array
  /** The peer that sent it to us (ourselves for our own). */
  readonly receivedFrom: PeerId.PeerId
  /** The message as on the wire. */
  readonly raw: Messages.Message
}

export type Validator = (msg: PubsubMessage) => Effect.Effect<ValidationResult>

/** A message id from the wire message (go `MsgIdFunction`). */
export type MessageIdFn = (msg: Messages.Message) => Uint8Array

export interface PublishResult {
  readonly id: Uint8Array
  /** Peers the message was sent to. */
  readonly recipients: number
}

export class Pubsub extends Context.Service<Pubsub, {
  /**
   * Subscribe to `topic` while the current scope lasts: the stream yields every
   * accepted message of the topic from now on (buffered up to `subscriberBuffer`).
   */
  readonly subscribe: (topic: string) => Effect.Effect<Stream.Stream<PubsubMessage>, PubsubError, Scope.Scope>
  /**
   * Publish `data` to `topic` (signed per the policy); returns its id and how many peers it
   * went to (0 is not an error). Fails `Duplicate` when the id is in the seen-cache.
   */
  readonly publish: (topic: string, data: Uint8Array) => Effect.Effect<PublishResult, PubsubError>
  /**
   * Wait until every RPC queued so far was written to its peer's stream (or the peer is gone);
   * e.g. before a one-shot publisher closes. Unbounded in time: the caller bounds it.
   */
  readonly flush: Effect.Effect<void>
  /** The topics we subscribe to. */
  readonly topics: () => ReadonlyArray<string>
  /** The pubsub peers, or those subscribed to `topic`. */
  readonly peers: (topic?: string) => ReadonlyArray<PeerId.PeerId>
  /** Add a validator for `topic` while the current scope lasts. */
  readonly addValidator: (topic: string, validator: Validator) => Effect.Effect<void, never, Scope.Scope>
  /** The router's protocols, in preference order. */
  readonly protocols: ReadonlyArray<string>
}>()("effect-libp2p/Pubsub") {}

export interface PubsubOptions {
  /** Default `"StrictSign"`. */
  readonly signaturePolicy?: SignaturePolicy | undefined
  /** Default: `from ++ seqno` under StrictSign, SHA-256(data) under StrictNoSign. */
  readonly messageId?: MessageIdFn | undefined
  /** How long a seen message id is remembered (default 120 s). */
  readonly seenTtl?: Duration.Input | undefined
  /** Largest RPC read from a peer (default 1 MiB). */
  readonly maxRpcSize?: number | undefined
  /** Largest message we publish or accept, encoded (default 1 MiB). */
  readonly maxMessageSize?: number | undefined
  /** RPCs queued per peer before new ones are dropped (default 1024). */
  readonly peerQueue?: number | undefined
  /** Messages buffered per local subscriber (default 1024; dropping). */
  readonly subscriberBuffer?: number | undefined
  /** Deadline of one message's validation (default 5 s; then Ignore). */
  readonly validateTimeout?: Duration.Input | undefined
  /** Messages waiting for validation (default 1024; dropping). */
  readonly validateQueue?: number | undefined
  /** Validations run at once (default 16). */
  readonly validateConcurrency?: number | undefined
  /** Subscriptions read from one RPC (default 5,000; the rest is ignored). */
  readonly maxSubscriptionsPerRpc?: number | undefined
  /** Topics remembered per peer (default 10,000; further subscriptions are ignored). */
  readonly maxTopicsPerPeer?: number | undefined
}

/** The default message id (go `DefaultMsgIdFn`): `from ++ seqno`; SHA-256 of `data` without them. */
export const defaultMessageId = (msg: Messages.Message): Uint8Array => {
  if (msg.from !== undefined && msg.seqno !== undefined) {
    const out = new Uint8Array(msg.from.byteLength + msg.seqno.byteLength)
    out.set(msg.from, 0)
    out.set(msg.seqno, msg.from.byteLength)
    return out
  }
  return new Uint8Array(createHash("sha256").update(msg.data ?? new Uint8Array(0)).digest())
}

const seqnoBytes = (n: bigint): Uint8Array => {
  const out = new Uint8Array(Messages.SEQNO_LENGTH)
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, n))
  return out
}

const seqnoValue = (b: Uint8Array): bigint => {
  let v = 0n
  for (const x of b) v = (v << 8n) | BigInt(x)
  return v
}

const invalid = (message: string) => new PubsubError({ reason: "InvalidMessage", message })

/** Sign a message as `privateKey`'s peer (README §Message Signing). */
export const signMessage = (
  privateKey: Keys.PrivateKey,
  msg: Messages.Message
): Result.Result<Messages.Message, PubsubError> => {
  const sig = privateKey.sign(Messages.signedBytes(msg))
  if (Result.isFailure(sig)) {
    return Result.fail(new PubsubError({ reason: "Signing", message: sig.failure.message, cause: sig.failure }))
  }
  const marshalled = Keys.marshalPublicKey(privateKey.publicKey)
  const inlined = marshalled.byteLength <= PeerId.MAX_INLINE_KEY_LENGTH
  return Result.succeed({
    ...msg,
    signature: sig.success,
    ...(inlined ? {} : { key: marshalled })
  })
}

/**
 * Check a received message against the signing policy (README §Message
 * Signing; go `sign.go` `verifyMessageSignature`): the author and, under
 * StrictSign, a signature by the author's key.
 */
export const checkMessage = (
  policy: SignaturePolicy,
  msg: Messages.Message
): Result.Result<{ readonly from: PeerId.PeerId | undefined; readonly seqno: bigint | undefined }, PubsubError> => {
  if (msg.topic === undefined || msg.topic === "") return Result.fail(invalid("message without a topic"))
  if (policy === "StrictNoSign") {
    if (msg.from !== undefined || msg.seqno !== undefined || msg.signature !== undefined || msg.key !== undefined) {
      return Result.fail(invalid("StrictNoSign: the message carries from, seqno, signature or key"))
    }
    return Result.succeed({ from: undefined, seqno: undefined })
  }
  if (msg.from === undefined || msg.signature === undefined || msg.seqno === undefined) {
    return Result.fail(invalid("StrictSign: the message lacks from, seqno or signature"))
  }
  if (msg.seqno.byteLength !== Messages.SEQNO_LENGTH) {
    return Result.fail(invalid(`seqno of ${msg.seqno.byteLength} bytes, not ${Messages.SEQNO_LENGTH}`))
  }
  const from = PeerId.fromBytes(msg.from)
  if (Result.isFailure(from)) return Result.fail(invalid(`from: ${from.failure.message}`))
  let key: Keys.PublicKey
  if (msg.key !== undefined) {
    const k = Keys.unmarshalPublicKey(msg.key)
    if (Result.isFailure(k) || !PeerId.matchesPublicKey(from.success, k.success)) {
      return Result.fail(new PubsubError({ reason: "InvalidSignature", message: "key is not the author's" }))
    }
    key = k.success
  } else {
    const k = PeerId.publicKey(from.success)
    if (Option.isNone(k)) {
      return Result.fail(new PubsubError({ reason: "InvalidSignature", message: "no key for the author" }))
    }
    key = k.value
  }
  if (!key.verify(Messages.signedBytes(msg), msg.signature)) {
    return Result.fail(new PubsubError({ reason: "InvalidSignature", message: "signature does not verify" }))
  }
  return Result.succeed({ from: from.success, seqno: seqnoValue(msg.seqno) })
}

interface Peer extends PeerHandle {
  readonly topics: Set<string>
  protocol: string
  readonly queue: Queue.Queue<Uint8Array>
  /** RPCs queued or being written, not yet written to the stream (for `flush`). */
  pending: number
  /** Done when the peer is removed (its connection or stream ended). */
  readonly removed: Deferred.Deferred<void>
}

interface Job {
  readonly peer: Peer
  readonly routed: RoutedMessage
  readonly msg: PubsubMessage
}

/** A small deterministic generator (xorshift32) seeded from the `Random` service. */
const makeRandom = (seed: number): () => number => {
  let s = (seed | 0) || 0x9e3779b9
  return () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 0x1_0000_0000
  }
}

/**
 * Build the core over a router. Registers the router's protocols, runs
 * per-connection code through `host.onConnection`, and forks the validation
 * workers and the seen-cache sweep in the current scope.
 */
export const make = (routerFactory: RouterFactory, options: PubsubOptions = {}) =>
  Effect.gen(function*() {
    const identity = yield* Identity
    const host = yield* Host
    const registrar = yield* Registrar
    const clock = yield* Clock.Clock
    const rec = yield* Metrics.recorder
    const count = (outcome: PubsubMetrics.Outcome) => rec.update(PubsubMetrics.messages.with(outcome), 1)
    const random = makeRandom(yield* Random.nextIntBetween(1, 0x7fff_ffff))

    const policy = options.signaturePolicy ?? "StrictSign"
    const messageId = options.messageId ?? defaultMessageId
    const seenTtl = Duration.toMillis(Options.duration(options.seenTtl, Duration.seconds(120)))
    const maxRpcSize = Options.clampInt(options.maxRpcSize, Messages.MAX_RPC_SIZE, 64, 64 * 1024 * 1024)
    const maxMessageSize = Options.clampInt(options.maxMessageSize, Messages.MAX_RPC_SIZE, 1, 64 * 1024 * 1024)
    const peerQueue = Options.clampInt(options.peerQueue, 1024, 1, 1_000_000)
    const subscriberBuffer = Options.clampInt(options.subscriberBuffer, 1024, 1, 1_000_000)
    const validateTimeout = Options.duration(options.validateTimeout, Duration.seconds(5))
    const validateQueueSize = Options.clampInt(options.validateQueue, 1024, 1, 1_000_000)
    const validateConcurrency = Options.clampInt(options.validateConcurrency, 16, 1, 1024)
    const maxSubsPerRpc = Options.clampInt(options.maxSubscriptionsPerRpc, 5000, 1, 1_000_000)
    const maxTopicsPerPeer = Options.clampInt(options.maxTopicsPerPeer, 10_000, 1, 10_000_000)

    const peers = new Map<string, Peer>()
    const subscribers = new Map<string, Set<Queue.Queue<PubsubMessage>>>()
    const validators = new Map<string, Set<Validator>>()
    /** Seen ids → expiry (ms); insertion order is expiry order. */
    const seen = new Map<string, number>()
    let seqno = BigInt(clock.currentTimeMillisUnsafe()) * 1_000_000n

    const now = () => clock.currentTimeMillisUnsafe()

    const sweepSeen = () => {
      const t = now()
      for (const [k, exp] of seen) {
        if (exp > t) break
        seen.delete(k)
      }
    }
    const markSeen = (idKey: string) => {
      sweepSeen()
      seen.set(idKey, now() + seenTtl)
    }

    /**
     * The last RPC encoded and its bytes: a router forwarding a message sends one RPC object to
     * every target, so it is encoded once, not once per peer (the top cost of our subscribers
     * in `npm run bench -- --profile --only=gossipsub`). The bytes are only read after this.
     */
    let lastRpc: Messages.RPC | undefined
    let lastBytes: Uint8Array = new Uint8Array(0)
    const encodeOnce = (rpc: Messages.RPC): Uint8Array => {
      if (rpc !== lastRpc) {
        lastBytes = Messages.RPC.encode(rpc)
        lastRpc = rpc
      }
      return lastBytes
    }

    const send = (peer: PeerHandle, rpc: Messages.RPC): boolean => {
      const p = peers.get(peer.key)
      if (p === undefined) return false
      const queued = Queue.offerUnsafe(p.queue, encodeOnce(rpc))
      if (queued) p.pending += 1
      return queued
    }

    /** Connections the router asked for, dialed one at a time (dropping beyond 64 waiting). */
    const dials = yield* Queue.dropping<Multiaddr.Multiaddr | PeerId.PeerId>(64)
    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(Queue.take(dials), (addr) => Effect.ignore(host.dial(addr))))
    )

    const ctx: RouterContext = {
      localPeer: identity.peerId,
      peers,
      send,
      subscribed: (topic) => subscribers.has(topic),
      seen: (idKey) => seen.has(idKey),
      now,
      random,
      connect: (addr) => void Queue.offerUnsafe(dials, addr)
    }
    const router: PubsubRouter = yield* routerFactory(ctx)

    const subscriptionRpc = (topics: Iterable<string>, subscribe: boolean): Messages.RPC => ({
      subscriptions: Array.from(topics, (topicid) => ({ subscribe, topicid })),
      publish: []
    })

    const toPubsubMessage = (
      raw: Messages.Message,
      id: Uint8Array,
      author: { readonly from: PeerId.PeerId | undefined; readonly seqno: bigint | undefined },
      receivedFrom: PeerId.PeerId
    ): PubsubMessage => ({
      topic: raw.topic ?? "",
      data: raw.data ?? new Uint8Array(0),
      from: author.from,
      seqno: author.seqno,
      id,
      receivedFrom,
      raw
    })

    const deliver = (msg: PubsubMessage) => {
      const subs = subscribers.get(msg.topic)
      if (subs === undefined) return
      for (const q of subs) Queue.offerUnsafe(q, msg)
    }

    const accept = (job: Job) => {
      count("delivered")
      deliver(job.msg)
      router.forward(job.routed, job.peer)
    }

    const runValidators = (topic: string, msg: PubsubMessage): Effect.Effect<ValidationResult> => {
      const vs = validators.get(topic)
      if (vs === undefined || vs.size === 0) return Effect.succeed("Accept")
      return Effect.gen(function*() {
        let result: ValidationResult = "Accept"
        for (const v of Array.from(vs)) {
          const r = yield* v(msg)
          if (r === "Reject") return "Reject" as const
          if (r === "Ignore") result = "Ignore"
        }
        return result
      }).pipe(
        Effect.timeoutOrElse({ duration: validateTimeout, orElse: () => Effect.succeed("Ignore" as const) }),
        Effect.catchCause(() => Effect.succeed("Ignore" as const))
      )
    }

    const validateQueue = yield* Queue.dropping<Job>(validateQueueSize)
    const worker = Effect.forever(Effect.gen(function*() {
      const job = yield* Queue.take(validateQueue)
      const result = yield* runValidators(job.routed.topic, job.msg)
      if (result === "Accept") accept(job)
      else if (result === "Reject") {
        count("rejected")
        router.onReject(job.peer, job.routed.topic)
      } else count("ignored")
    }))
    for (let i = 0; i < validateConcurrency; i++) yield* Effect.forkScoped(worker)

    /**
     * One message from a peer: the seen-cache first (a duplicate costs no signature check),
     * then the signing policy, then marked seen (only once it verified: a forged copy cannot
     * shadow the real message), then validation (go `validation.go` in the same order).
     */
    const handleMessage = (peer: Peer, raw: Messages.Message) => {
      const size = Messages.encodedLength(raw)
      if (size > maxMessageSize) return
      const topic = raw.topic ?? ""
      const id = messageId(raw)
      const idKey = Strings.fromBytes(id)
      if (seen.has(idKey)) {
        count("duplicate")
        router.onDuplicate(peer, idKey, topic)
        return
      }
      const checked = checkMessage(policy, raw)
      if (Result.isFailure(checked)) {
        count("rejected")
        if (topic !== "") router.onReject(peer, topic)
        return
      }
      if (checked.success.from !== undefined && PeerId.equals(checked.success.from, identity.peerId)) return
      markSeen(idKey)
      const routed: RoutedMessage = { message: raw, topic, id, idKey, size }
      router.onFirstSeen(peer, routed)
      const job: Job = { peer, routed, msg: toPubsubMessage(raw, id, checked.success, peer.id) }
      const vs = validators.get(topic)
      if (vs === undefined || vs.size === 0) accept(job)
      else Queue.offerUnsafe(validateQueue, job)
    }

    const handleRpc = (peer: Peer, rpc: Messages.RPC) => {
      if (!router.acceptFrom(peer)) return
      let n = 0
      for (const sub of rpc.subscriptions) {
        if (++n > maxSubsPerRpc) break
        const topic = sub.topicid
        if (topic === undefined || topic === "") continue
        if (sub.subscribe === true) {
          if (peer.topics.has(topic) || peer.topics.size >= maxTopicsPerPeer) continue
          peer.topics.add(topic)
          router.onSubscription(peer, topic, true)
        } else if (peer.topics.delete(topic)) {
          router.onSubscription(peer, topic, false)
        }
      }
      for (const m of rpc.publish) handleMessage(peer, m)
      if (rpc.control !== undefined) router.handleControl(peer, rpc.control)
    }

    /** The RPCs a peer sends us on its outbound stream, until it ends or breaks a bound. */
    const readRpcs = (stream: Connection.Stream, conn: Connection.Connection) =>
      Effect.gen(function*() {
        const reader = Reader.make(stream)
        const key = conn.remotePeer.toString()
        while (true) {
          const bytes = yield* LengthPrefixed.read(reader, maxRpcSize)
          if (bytes === undefined) return
          const rpc = Messages.RPC.decode(bytes)
          if (Result.isFailure(rpc)) {
            return yield* new PubsubError({ reason: "Decode", message: rpc.failure.message, cause: rpc.failure })
          }
          const peer = peers.get(key)
          if (peer !== undefined) handleRpc(peer, rpc.success)
        }
      }).pipe(Effect.tapError(() => stream.reset))

    for (const protocol of router.protocols) {
      yield* registrar.handle(protocol, readRpcs, { maxInboundStreams: 4 })
    }

    const writer = (peer: Peer, stream: Connection.Stream) =>
      Effect.forever(Effect.gen(function*() {
        const batch = yield* Queue.takeAll(peer.queue)
        yield* stream.write(LengthPrefixed.frameAll(batch))
        peer.pending -= batch.length
      }))

    const removePeer = (peer: Peer) =>
      Effect.sync(() => {
        Deferred.doneUnsafe(peer.removed, Effect.void)
        if (peers.get(peer.key) !== peer) return
        peers.delete(peer.key)
        if (peer.protocol !== "") router.removePeer(peer)
      })

    /**
     * Our outbound stream to the connection's peer, unless another connection already
     * carries one: then this connection waits and takes over when that one ends.
     */
    const runPeer = (conn: Connection.Connection): Effect.Effect<void, never, Scope.Scope> =>
      Effect.gen(function*() {
        const key = conn.remotePeer.toString()
        const existing = peers.get(key)
        if (existing !== undefined) {
          yield* Deferred.await(existing.removed)
          if (conn.isClosed()) return
          return yield* runPeer(conn)
        }
        const queue = yield* Queue.dropping<Uint8Array>(peerQueue)
        const peer: Peer = {
          id: conn.remotePeer,
          key,
          protocol: "",
          outbound: conn.direction === "outbound",
          remoteAddr: conn.remoteAddr,
          topics: new Set(),
          queue,
          pending: 0,
          removed: Deferred.makeUnsafe<void>()
        }
        peers.set(key, peer)
        yield* Effect.addFinalizer(() => removePeer(peer))
        const stream = yield* Effect.option(conn.newStream(router.protocols, { lazy: false }))
        if (Option.isNone(stream) || peers.get(key) !== peer) return yield* removePeer(peer)
        peer.protocol = stream.value.protocol
        router.addPeer(peer)
        if (subscribers.size > 0) send(peer, subscriptionRpc(subscribers.keys(), true))
        const fiber = yield* Effect.forkScoped(writer(peer, stream.value).pipe(Effect.ignore))
        yield* Effect.forkScoped(Effect.andThen(Fiber.await(fiber), removePeer(peer)))
      })

    yield* host.onConnection(runPeer)

    const broadcastSubscription = (topic: string, subscribe: boolean) => {
      const rpc = subscriptionRpc([topic], subscribe)
      for (const peer of peers.values()) if (peer.protocol !== "") send(peer, rpc)
    }

    const subscribe = (topic: string): Effect.Effect<Stream.Stream<PubsubMessage>, PubsubError, Scope.Scope> =>
      topic === ""
        ? Effect.fail(new PubsubError({ reason: "InvalidTopic", message: "empty topic" }))
        : Effect.gen(function*() {
          const queue = yield* Effect.acquireRelease(
            Effect.gen(function*() {
              const q = yield* Queue.dropping<PubsubMessage>(subscriberBuffer)
              let subs = subscribers.get(topic)
              if (subs === undefined) {
                subs = new Set()
                subscribers.set(topic, subs)
                rec.update(PubsubMetrics.topics, subscribers.size)
                broadcastSubscription(topic, true)
                router.join(topic)
              }
              subs.add(q)
              return q
            }),
            (q) =>
              Effect.andThen(
                Effect.sync(() => {
                  const subs = subscribers.get(topic)
                  if (subs === undefined || !subs.delete(q) || subs.size > 0) return
                  subscribers.delete(topic)
                  rec.update(PubsubMetrics.topics, subscribers.size)
                  broadcastSubscription(topic, false)
                  router.leave(topic)
                }),
                Queue.shutdown(q)
              )
          )
          return Stream.fromQueue(queue)
        })

    const publish = (topic: string, data: Uint8Array): Effect.Effect<PublishResult, PubsubError> =>
      Effect.suspend(() => {
        if (topic === "") return Effect.fail(new PubsubError({ reason: "InvalidTopic", message: "empty topic" }))
        let msg: Messages.Message = { data, topic }
        if (policy === "StrictSign") {
          seqno += 1n
          const signed = signMessage(identity.privateKey, {
            from: PeerId.toBytes(identity.peerId),
            data,
            seqno: seqnoBytes(seqno),
            topic
          })
          if (Result.isFailure(signed)) return Effect.fail(signed.failure)
          msg = signed.success
        }
        const size = Messages.encodedLength(msg)
        if (size > maxMessageSize) {
          return Effect.fail(
            new PubsubError({ reason: "TooLarge", message: `message of ${size} bytes > ${maxMessageSize}` })
          )
        }
        const id = messageId(msg)
        const idKey = Strings.fromBytes(id)
        if (seen.has(idKey)) {
          return Effect.fail(new PubsubError({ reason: "Duplicate", message: "a message with this id was seen" }))
        }
        markSeen(idKey)
        const recipients = router.forward({ message: msg, topic, id, idKey, size }, undefined)
        count("published")
        return Effect.succeed({ id, recipients })
      })

    const addValidator = (topic: string, validator: Validator) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let vs = validators.get(topic)
          if (vs === undefined) validators.set(topic, vs = new Set())
          vs.add(validator)
        }),
        () =>
          Effect.sync(() => {
            const vs = validators.get(topic)
            vs?.delete(validator)
            if (vs?.size === 0) validators.delete(topic)
          })
      ).pipe(Effect.asVoid)

    const peerList = (topic?: string): ReadonlyArray<PeerId.PeerId> => {
      const out: Array<PeerId.PeerId> = []
      for (const p of peers.values()) {
        if (p.protocol !== "" && (topic === undefined || p.topics.has(topic))) out.push(p.id)
      }
      return out
    }

    const flush: Effect.Effect<void> = Effect.suspend(() => {
      for (const p of peers.values()) if (p.pending > 0) return Effect.andThen(Effect.sleep("5 millis"), flush)
      return Effect.void
    })

    return Pubsub.of({
      subscribe,
      publish,
      flush,
      topics: () => Array.from(subscribers.keys()),
      peers: peerList,
      addValidator,
      protocols: router.protocols
    })
  })

/** The {@link Pubsub} service over a router. Router modules wrap this in their own `layer`. */
export const layerWith = (routerFactory: RouterFactory, options: PubsubOptions = {}) =>
  Layer.effect(Pubsub, make(routerFactory, options))
