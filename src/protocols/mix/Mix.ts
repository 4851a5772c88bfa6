/**
 * Mix, `/mix/1.0.0`: anonymous packet-switched routing over libp2p, LIP-99
 * "LIBP2P-MIX" (vacp2p/rfc-index `docs/ift-ts/raw/mix.md`, 2026-01-29).
 *
 * - §8.5 / §7.2 initiation (`send`, `request`): a random path of L ≥ 3 distinct
 *   mix nodes from `MixDiscovery` (not the destination), the per-hop mean delay
 *   in the header, the message padded into one packet (nim's layout,
 *   `message.ts`), a randomized entry delay (§8.5.2 3.f), then a new stream to
 *   the first hop carrying one varint-length-prefixed packet (nim `writeLp`; the
 *   spec does not say how a packet is framed on the stream).
 * - §8.6 handling: every packet read from a `/mix/1.0.0` stream (several per
 *   stream are accepted, §5.5) is processed (`sphinx.ts`); an intermediary
 *   samples an exponential delay with the header's mean, truncated where its
 *   tail falls below 10^-6 (nim's default), and forwards after it on a
 *   supervised fiber (TestClock drives it); an exit hands codec, message and
 *   SURBs to the exit layer (§5.4 step 3), which opens a client stream to the
 *   destination with the origin codec, writes the message and, when SURBs came
 *   with it, reads the answer until EOF and sends it back through the SURB.
 * - SURBs (nim's format, the spec's "Section X.X"): `request` attaches SURBs
 *   whose paths end at this node and waits for the first reply.
 * - Replay protection: a bounded, expiring table of tags H(s) on `Clock`.
 * - Bounds: packets waiting for their delay or exit delivery at most
 *   `maxPending` (more are dropped, `Overloaded`); SURB waits at most
 *   `maxPendingReplies`; streams per connection `maxInboundStreams`.
 * - §9 spam protection (per-hop proofs, `spam.ts`) and §6.4 cover traffic (loop
 *   packets through L - 1 nodes back to us, codec `/mix/cover/1.0.0` as nim)
 *   are pluggable and off by default.
 *
 * - §10.3 "destination as final hop" (`exitIsDestination`): the destination, a
 *   mix node, is the last hop; Δ is zero (as nim's exit == destination mode) and
 *   the message goes to the handler registered with `mix.handle(codec, …)`.
 *
 * Not here: fragmentation (§8.3.3 gives it to the origin protocol: larger
 * messages fail `MessageTooLarge`), sender-generated spam proofs (§9.2.1),
 * Kad/rendezvous discovery.
 *
 * Errors are `MixError` (errors.ts); bad packets from the network are dropped
 * with a `Dropped` event carrying the reason (§8.6.3 step 6: no error goes back).
 * Anchors: nim-libp2p-mix 0.1.0 `mix_protocol.nim`, `exit_layer.nim`.
 *
 * @since 0.2.0
 */
import { Clock, Context, Deferred, Duration, Effect, FiberSet, Layer, PubSub, Result, Scope, Stream } from "effect"
import * as crypto from "node:crypto"
import type * as Connection from "../../connection/Connection.ts"
import { Registrar } from "../../connection/Registrar.ts"
import * as Duplex from "../../core/Duplex.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import type * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { type DialTarget, Host } from "../../host/Host.ts"
import { Peerstore } from "../../host/Peerstore.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as Address from "./address.ts"
import { MixError, mixError, type MixErrorReason } from "./errors.ts"
import * as Message from "./message.ts"
import * as MixMetrics from "./metrics.ts"
import { MixDiscovery, type MixNodeInfo } from "./MixDiscovery.ts"
import * as Replay from "./replay.ts"
import type { SpamProtection } from "./spam.ts"
import * as Sphinx from "./sphinx.ts"

export { MixError, MixErrorReason } from "./errors.ts"
export { MixDiscovery, type MixNodeInfo } from "./MixDiscovery.ts"
export { proofOfWork, type SpamProtection } from "./spam.ts"

/** §7.1. */
export const PROTOCOL = "/mix/1.0.0"
/** nim's reserved codec for loop cover packets. */
export const COVER_CODEC = "/mix/cover/1.0.0"
export const EVENTS_BUFFER = 1024

export interface MixOptions {
  /** This node's X25519 private key (32 bytes); a random one when absent. */
  readonly privateKey?: Uint8Array | undefined
  /** L, 3 ≤ L ≤ 5 (default 3, nim's fixed value). */
  readonly pathLength?: number | undefined
  /** The mean per-hop delay the sender writes into the header (default 100 ms, nim; at most 65535 ms). */
  readonly meanDelay?: Duration.Input | undefined
  /** The mean of the sender's own delay before the first hop (§8.5.2 3.f; default 100 ms). */
  readonly entryMeanDelay?: Duration.Input | undefined
  /** Packets waiting for their delay or their exit delivery (default 1024). */
  readonly maxPending?: number | undefined
  /** Inbound `/mix/1.0.0` streams per connection (default 8). */
  readonly maxInboundStreams?: number | undefined
  /** Replay tags kept (default 100,000) and for how long (default 1 hour, nim). */
  readonly replay?: { readonly maxEntries?: number; readonly ttl?: Duration.Input } | undefined
  /** Deadline to hand a packet to the next hop, and (exit) to deliver and read the destination's answer (default 10 s). */
  readonly exitTimeout?: Duration.Input | undefined
  /** Requests waiting for a SURB reply (default 256) and how long each waits (default 60 s). */
  readonly maxPendingReplies?: number | undefined
  readonly replyTimeout?: Duration.Input | undefined
  /** §9 per-hop spam proofs; off when absent. Every node of a deployment must agree. */
  readonly spamProtection?: SpamProtection | undefined
  /** §6.4 loop cover traffic: one loop packet per interval on average; off when absent. */
  readonly coverTraffic?: { readonly interval: Duration.Input } | undefined
}

export const defaults = {
  pathLength: 3,
  meanDelay: Duration.millis(100),
  entryMeanDelay: Duration.millis(100),
  maxPending: 1024,
  maxInboundStreams: 8,
  replayMaxEntries: 100_000,
  replayTtl: Duration.hours(1),
  exitTimeout: Duration.seconds(10),
  maxPendingReplies: 256,
  replyTimeout: Duration.seconds(60)
} as const

/** The final target of a message: a peer and, when known, an address to reach it. */
export interface MixDestination {
  readonly peerId: PeerId.PeerId
  readonly addr?: Multiaddr.Multiaddr | undefined
}

/** What a node did with a packet: the record of what it saw (the anonymity tests read it). */
export type MixEvent =
  | { readonly _tag: "Sent"; readonly to: PeerId.PeerId }
  | {
    readonly _tag: "Forwarded"
    readonly from: PeerId.PeerId
    readonly to: PeerId.PeerId
    readonly delayMillis: number
  }
  | {
    readonly _tag: "Delivered"
    readonly from: PeerId.PeerId
    readonly destination: PeerId.PeerId
    readonly codec: string
    readonly surbs: number
  }
  | { readonly _tag: "ReplySent"; readonly from: PeerId.PeerId; readonly to: PeerId.PeerId }
  | { readonly _tag: "ReplyReceived"; readonly from: PeerId.PeerId }
  | { readonly _tag: "CoverReceived"; readonly from: PeerId.PeerId }
  | { readonly _tag: "Dropped"; readonly from?: PeerId.PeerId | undefined; readonly reason: MixErrorReason }

export interface SendOptions {
  /** SURBs to attach (default 0 for `send`, 1 for `request`). */
  readonly surbs?: number | undefined
  /**
   * §10.3 "destination as final hop": the destination, a mix node, is the last hop and hands the
   * message to its own `mix.handle` handler (no exit node delivers it). Default false.
   */
  readonly exitIsDestination?: boolean | undefined
}

/** A local origin protocol's handler for messages that end here (§10.3): the answer, if any, goes back by SURB. */
export type LocalHandler = (message: Uint8Array) => Effect.Effect<Uint8Array | undefined>

export class Mix extends Context.Service<Mix, {
  /** This node as discovery should publish it (§6.1). */
  readonly info: () => MixNodeInfo
  /** §5.4 mixify: route `message` for `codec` to `destination` anonymously; done when the first hop has it. */
  readonly send: (
    destination: MixDestination,
    codec: string,
    message: Uint8Array,
    options?: SendOptions
  ) => Effect.Effect<void, MixError>
  /** `send` with SURBs, then the destination's answer, back through one of them. */
  readonly request: (
    destination: MixDestination,
    codec: string,
    message: Uint8Array,
    options?: SendOptions & { readonly timeout?: Duration.Input | undefined }
  ) => Effect.Effect<Uint8Array, MixError>
  /** Receive messages for `codec` sent with `exitIsDestination` (§10.3), while the scope lasts. */
  readonly handle: (codec: string, handler: LocalHandler) => Effect.Effect<void, never, Scope.Scope>
  /** The largest message `send` takes for `codec` with `surbs` SURBs. */
  readonly maxMessageSize: (codec: string, surbs?: number) => number
  readonly events: Stream.Stream<MixEvent>
  readonly subscribe: Effect.Effect<Stream.Stream<MixEvent>, never, Scope.Scope>
  readonly stats: () => { readonly pending: number; readonly replayTags: number; readonly pendingReplies: number }
}>()("effect-libp2p/Mix") {}

const randomBytes = (n: number): Uint8Array => new Uint8Array(crypto.randomBytes(n))

/** Exponential with mean `mean` ms, truncated where the tail is below 10^-6 (nim `ExponentialDelayStrategy`). */
export const sampleDelay = (mean: number, uniform: number = crypto.randomInt(1, 2 ** 47) / 2 ** 47): number =>
  mean <= 0 ? 0 : Math.min(-mean * Math.log(uniform), mean * Math.log(1e6))

/** `count` distinct elements of `from`, uniformly (a partial Fisher–Yates with crypto randomness). */
const sample = <A>(from: ReadonlyArray<A>, count: number): Array<A> => {
  const xs = [...from]
  for (let i = 0; i < count && i < xs.length; i++) {
    const j = i + crypto.randomInt(xs.length - i)
    ;[xs[i], xs[j]] = [xs[j]!, xs[i]!]
  }
  return xs.slice(0, count)
}

const fromResult = <A>(r: Result.Result<A, MixError>): Effect.Effect<A, MixError> =>
  Result.isSuccess(r) ? Effect.succeed(r.success) : Effect.fail(r.failure)

/** A dial or stream failure as a MixError that keeps it. */
const lowerError = (e: { readonly _tag: string; readonly message: string }): MixError =>
  e instanceof MixError ? e : mixError(e._tag === "DialError" ? "UnknownNextHop" : "Stream", e.message, e)

const millisOf = (d: Duration.Input) => Duration.toMillis(Duration.fromInputUnsafe(d))

interface PendingReply {
  readonly secrets: Sphinx.SurbSecrets
  readonly group: ReadonlyArray<string>
  readonly done: Deferred.Deferred<Uint8Array, MixError>
}

export const make = Effect.fnUntraced(function*(options: MixOptions = {}) {
  const registrar = yield* Registrar
  const host = yield* Host
  const peerstore = yield* Peerstore
  const discovery = yield* MixDiscovery
  const scope = yield* Effect.scope
  const privateKey = options.privateKey ?? randomBytes(32)
  const publicKey = yield* fromResult(Sphinx.publicKeyOf(privateKey))
  const L = options.pathLength ?? defaults.pathLength
  if (L < Sphinx.MIN_PATH || L > Sphinx.R) {
    return yield* mixError("PathLength", `mix: pathLength must be within 3..${Sphinx.R}, not ${L}`)
  }
  const meanDelay = Math.min(0xffff, millisOf(options.meanDelay ?? defaults.meanDelay))
  const entryMeanDelay = millisOf(options.entryMeanDelay ?? defaults.entryMeanDelay)
  const maxPending = options.maxPending ?? defaults.maxPending
  const exitTimeout = options.exitTimeout ?? defaults.exitTimeout
  const maxPendingReplies = options.maxPendingReplies ?? defaults.maxPendingReplies
  const replyTimeout = options.replyTimeout ?? defaults.replyTimeout
  const spam = options.spamProtection
  const proofSize = spam?.proofSize ?? 0
  const replay = Replay.make({
    maxEntries: options.replay?.maxEntries ?? defaults.replayMaxEntries,
    ttlMillis: millisOf(options.replay?.ttl ?? defaults.replayTtl)
  })
  const events = yield* PubSub.sliding<MixEvent>(EVENTS_BUFFER)
  const rec = yield* Metrics.recorder
  const outcomes: Record<Exclude<MixEvent["_tag"], "Dropped">, string> = {
    Sent: "sent",
    Forwarded: "forwarded",
    Delivered: "delivered",
    ReplySent: "reply_sent",
    ReplyReceived: "reply_received",
    CoverReceived: "cover_received"
  }
  const emit = (event: MixEvent) =>
    Effect.suspend(() => {
      if (event._tag === "Dropped") rec.update(MixMetrics.dropped.with(event.reason), 1)
      else rec.update(MixMetrics.packets.with(outcomes[event._tag]), 1)
      return PubSub.publish(events, event)
    })
  const fibers = yield* FiberSet.make<void, never>()
  const replies = new Map<string, PendingReply>()
  const localHandlers = new Map<string, LocalHandler>()
  let pending = 0
  let seqNo = crypto.randomInt(0, 2 ** 32)

  const info = (): MixNodeInfo => ({ peerId: host.peerId, publicKey, addrs: host.addrs() })
  const selfAddress = () => fromResult(Address.encode(host.peerId, host.addrs()[0]))

  /** A dial target for an address block: its own address, else discovery's, else the peerstore's. */
  const targetOf = (decoded: Address.Decoded): Effect.Effect<DialTarget, MixError> =>
    Effect.gen(function*() {
      if (decoded.addr !== undefined) return decoded.addr
      const known = (yield* discovery.nodes).find((n) => PeerId.equals(n.peerId, decoded.peerId))
      if (known !== undefined && known.addrs.length > 0) {
        yield* peerstore.merge(decoded.peerId, { addrs: known.addrs })
        return decoded.peerId
      }
      if ((peerstore.get(decoded.peerId)?.addrs.length ?? 0) > 0) return decoded.peerId
      return yield* mixError("UnknownNextHop", `mix: no address for ${decoded.peerId.toString()}`)
    })

  /** Open a `/mix/1.0.0` stream to `target` and write one packet (and its fresh spam proof). */
  const transmit = (target: DialTarget, packet: Uint8Array) =>
    Effect.scoped(Effect.gen(function*() {
      const proof = spam === undefined ? new Uint8Array(0) : yield* spam.generateProof(packet)
      const stream = yield* host.newStream(target, [PROTOCOL])
      yield* LengthPrefixed.write(stream, proof.byteLength === 0 ? packet : Buffer.concat([packet, proof]))
      yield* stream.closeWrite
      // Wait for the remote's EOF: a stream closed in one direction only is reset with its scope.
      yield* readAll(stream, 0)
    })).pipe(
      Effect.mapError(lowerError),
      Effect.timeoutOrElse({
        duration: exitTimeout,
        orElse: () => Effect.fail(mixError("Timeout", "mix: the next hop did not take the packet in time"))
      })
    )

  /** Run `work` on a supervised fiber, counted against `maxPending`; refuse when full. */
  const schedule = (work: Effect.Effect<void>): Effect.Effect<void, MixError> =>
    Effect.suspend(() => {
      if (pending >= maxPending) return Effect.fail(mixError("Overloaded", `mix: ${maxPending} packets pending`))
      pending++
      rec.update(MixMetrics.pending, pending)
      const done = Effect.sync(() => {
        pending--
        rec.update(MixMetrics.pending, pending)
      })
      return FiberSet.run(fibers, work.pipe(Effect.ensuring(done))).pipe(Effect.asVoid)
    })

  const dropped = (from: PeerId.PeerId | undefined) => (e: MixError) =>
    Effect.andThen(
      Effect.logDebug(`mix: dropped a packet: ${e.message}`),
      emit({ _tag: "Dropped", from, reason: e.reason })
    )

  /** §5.4 step 3, the exit layer: deliver to the destination; answer through the SURBs. */
  const deliver = (from: PeerId.PeerId, destination: Uint8Array, forward: Message.Forward) =>
    Effect.gen(function*() {
      const dest = yield* fromResult(Address.decode(destination))
      const target = yield* targetOf(dest)
      const answer = yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* host.newStream(target, [forward.codec])
        yield* stream.write([forward.message])
        yield* stream.closeWrite
        yield* emit({
          _tag: "Delivered",
          from,
          destination: dest.peerId,
          codec: forward.codec,
          surbs: forward.surbs.length
        })
        // Without SURBs the answer is not wanted, but read to EOF so the stream ends cleanly.
        const answer = yield* readAll(
          stream,
          forward.surbs.length === 0 ? Infinity : Message.maxMessageSize("", 0, true)
        )
        return forward.surbs.length === 0 ? new Uint8Array(0) : answer
      })).pipe(
        Effect.mapError(lowerError),
        Effect.timeoutOrElse({
          duration: exitTimeout,
          orElse: () => Effect.fail(mixError("Timeout", "mix: the destination did not answer in time"))
        })
      )
      yield* replyVia(from, forward.surbs, answer)
    })

  /** Send `answer` back through each SURB. */
  const replyVia = (from: PeerId.PeerId, surbs: ReadonlyArray<Sphinx.Surb>, answer: Uint8Array) =>
    Effect.forEach(surbs, (surb) =>
      Effect.gen(function*() {
        const m = yield* fromResult(Message.encodeReply(answer, seqNo++))
        const packet = yield* fromResult(Sphinx.useSurb(surb, m))
        const first = yield* fromResult(Address.decode(surb.firstHop))
        yield* transmit(yield* targetOf(first), packet)
        yield* emit({ _tag: "ReplySent", from, to: first.peerId })
      }), { discard: true })

  /** §10.3: we are the destination; the Mix exit layer hands the message to the local handler. */
  const deliverLocally = (from: PeerId.PeerId, forward: Message.Forward) =>
    Effect.gen(function*() {
      const handler = localHandlers.get(forward.codec)
      if (handler === undefined) return yield* mixError("NoHandler", `mix: no local handler for ${forward.codec}`)
      const answer = yield* handler(forward.message)
      yield* emit({
        _tag: "Delivered",
        from,
        destination: host.peerId,
        codec: forward.codec,
        surbs: forward.surbs.length
      })
      if (answer !== undefined) yield* replyVia(from, forward.surbs, answer)
    })

  /** §8.6: one packet from `from`. */
  const handlePacket = (from: PeerId.PeerId, wire: Uint8Array): Effect.Effect<void, MixError> =>
    Effect.gen(function*() {
      if (wire.byteLength !== Sphinx.PACKET_SIZE + proofSize) {
        return yield* mixError("WrongSize", `mix: ${wire.byteLength} bytes is not one packet`)
      }
      const packet = wire.subarray(0, Sphinx.PACKET_SIZE)
      if (spam !== undefined) {
        const ok = yield* spam.verifyProof(wire.subarray(Sphinx.PACKET_SIZE), packet)
        if (!ok) return yield* mixError("SpamProof", "mix: the spam proof does not verify")
      }
      const now = yield* Clock.currentTimeMillis
      const processed = yield* fromResult(
        Sphinx.processPacket(packet, privateKey, { seen: (tag) => replay.seen(tag, now) })
      )
      switch (processed._tag) {
        case "Forward": {
          const next = yield* fromResult(Address.decode(processed.next))
          const target = yield* targetOf(next)
          const delay = sampleDelay(processed.delay)
          yield* schedule(
            Effect.sleep(Duration.millis(delay)).pipe(
              Effect.andThen(transmit(target, processed.packet)),
              Effect.andThen(emit({ _tag: "Forwarded", from, to: next.peerId, delayMillis: delay })),
              Effect.catch(dropped(from))
            )
          )
          return
        }
        case "Exit": {
          const forward = yield* fromResult(Message.decodeForward(processed.message))
          if (forward.codec === COVER_CODEC) {
            yield* emit({ _tag: "CoverReceived", from })
            return
          }
          const local = processed.destination.every((b) => b === 0)
          yield* schedule(
            (local ? deliverLocally(from, forward) : deliver(from, processed.destination, forward)).pipe(
              Effect.catch(dropped(from))
            )
          )
          return
        }
        case "Reply": {
          const key = Buffer.from(processed.surbId).toString("hex")
          const waiting = replies.get(key)
          if (waiting === undefined) return yield* mixError("UnknownSurb", "mix: a reply nobody waits for")
          for (const id of waiting.group) replies.delete(id)
          const m = yield* fromResult(Sphinx.openReply(waiting.secrets, processed.delta))
          const answer = yield* fromResult(Message.decodeReply(m))
          yield* Deferred.succeed(waiting.done, answer)
          yield* emit({ _tag: "ReplyReceived", from })
        }
      }
    })

  /** Inbound: read packets until EOF; a packet of the wrong size ends the stream (§8.6.1). */
  const serve = (stream: Connection.Stream, connection: Connection.Connection) =>
    Effect.gen(function*() {
      const msgs = LengthPrefixed.messages(stream, { maxLength: Sphinx.PACKET_SIZE + proofSize })
      while (true) {
        const wire = yield* msgs.read.pipe(
          Effect.mapError((e) =>
            mixError(e._tag === "ReaderError" && e.reason === "TooLarge" ? "WrongSize" : "Stream", e.message, e)
          )
        )
        if (wire === undefined) return
        const handled = yield* Effect.result(handlePacket(connection.remotePeer, wire))
        if (Result.isFailure(handled)) {
          // A packet of the wrong size ends the stream (reported once, below); others are dropped alone.
          if (handled.failure.reason === "WrongSize") return yield* handled.failure
          yield* dropped(connection.remotePeer)(handled.failure)
        }
      }
    }).pipe(Effect.tapError((e) => Effect.andThen(dropped(connection.remotePeer)(e), stream.reset)))

  yield* registrar.handle(PROTOCOL, serve, {
    maxInboundStreams: options.maxInboundStreams ?? defaults.maxInboundStreams
  })

  /** Path candidates: discovery's nodes, without us and `exclude`. */
  const candidates = (exclude: ReadonlyArray<PeerId.PeerId>) =>
    Effect.map(
      discovery.nodes,
      (nodes) =>
        nodes.filter((n) =>
          !PeerId.equals(n.peerId, host.peerId) && !exclude.some((x) => PeerId.equals(x, n.peerId)) &&
          n.publicKey.byteLength === 32
        )
    )

  const hopOf = (n: MixNodeInfo) =>
    Effect.map(fromResult(Address.encode(n.peerId, n.addrs[0])), (address) => ({ publicKey: n.publicKey, address }))

  const delays = (hops: number) => Array.from({ length: hops }, (_, i) => (i === hops - 1 ? 0 : meanDelay))

  /** SURBs whose paths are L - 1 nodes (not the exit, not the destination) and then us. */
  const makeSurbs = (count: number, exclude: ReadonlyArray<PeerId.PeerId>) =>
    Effect.gen(function*() {
      if (count === 0) return { surbs: [], ids: [] as Array<string>, secrets: [] as Array<Sphinx.SurbSecrets> }
      const pool = yield* candidates(exclude)
      if (pool.length < L - 1) return yield* mixError("NotEnoughNodes", `mix: SURBs need ${L - 1} mix nodes`)
      const self = { publicKey, address: yield* selfAddress() }
      const surbs: Array<Sphinx.Surb> = []
      const ids: Array<string> = []
      const secrets: Array<Sphinx.SurbSecrets> = []
      for (let i = 0; i < count; i++) {
        const path = [...(yield* Effect.forEach(sample(pool, L - 1), hopOf)), self]
        const id = randomBytes(Sphinx.SURB_ID_SIZE)
        const made = yield* fromResult(
          Sphinx.createSurb({ path, delays: delays(L), ephemeral: randomBytes(32), id, key: randomBytes(Sphinx.K) })
        )
        surbs.push(made.surb)
        ids.push(Buffer.from(id).toString("hex"))
        secrets.push(made.secrets)
      }
      return { surbs, ids, secrets }
    })

  /** Build and transmit one packet; returns the SURB ids it carried. */
  const originate = (
    destination: Uint8Array,
    exclude: ReadonlyArray<PeerId.PeerId>,
    codec: string,
    message: Uint8Array,
    surbCount: number,
    /** §10.3: this node is the last hop (the destination itself). */
    exitNode?: MixNodeInfo | undefined
  ) =>
    Effect.gen(function*() {
      const pool = yield* candidates(exclude)
      const needed = exitNode === undefined ? L : L - 1
      if (pool.length < needed) {
        return yield* mixError("NotEnoughNodes", `mix: a path needs ${L} mix nodes, discovery knows ${pool.length}`)
      }
      const nodes = exitNode === undefined ? sample(pool, L) : [...sample(pool, L - 1), exitNode]
      const exit = nodes[L - 1]!
      const built = yield* makeSurbs(surbCount, [...exclude, exit.peerId])
      const m = yield* fromResult(Message.encodeForward(codec, built.surbs, message, seqNo++))
      const path = yield* Effect.forEach(nodes, hopOf)
      const { packet } = yield* fromResult(
        Sphinx.createPacket({ path, delays: delays(L), destination, ephemeral: randomBytes(32), message: m })
      )
      const first = nodes[0]!
      const target = yield* targetOf({ peerId: first.peerId, addr: undefined })
      return {
        built,
        transmit: Effect.andThen(Effect.sleep(Duration.millis(sampleDelay(entryMeanDelay))), transmit(target, packet))
          .pipe(Effect.andThen(emit({ _tag: "Sent", to: first.peerId })))
      }
    })

  const checkSize = (codec: string, message: Uint8Array, surbs: number) =>
    message.byteLength > Message.maxMessageSize(codec, surbs)
      ? Effect.fail(
        mixError(
          "MessageTooLarge",
          `mix: ${message.byteLength} bytes exceed ${
            Message.maxMessageSize(codec, surbs)
          } for one packet; fragment first (§8.3.3)`
        )
      )
      : Effect.void

  /** Δ and, in §10.3's mode, the destination as the exit (it must be a mix node discovery knows). */
  const destinationOf = (destination: MixDestination, exitIsDestination: boolean | undefined) =>
    Effect.gen(function*() {
      if (exitIsDestination !== true) {
        return { block: yield* fromResult(Address.encode(destination.peerId, destination.addr)), exit: undefined }
      }
      const exit = (yield* discovery.nodes).find((n) => PeerId.equals(n.peerId, destination.peerId))
      if (exit === undefined) {
        return yield* mixError("UnknownNextHop", "mix: the destination is not a known mix node (§10.3 needs one)")
      }
      return { block: new Uint8Array(Sphinx.ADDRESS_SIZE), exit }
    })

  const send: Mix["Service"]["send"] = (destination, codec, message, sendOptions) =>
    Effect.gen(function*() {
      const surbs = sendOptions?.surbs ?? 0
      yield* checkSize(codec, message, surbs)
      const dest = yield* destinationOf(destination, sendOptions?.exitIsDestination)
      const out = yield* originate(dest.block, [destination.peerId], codec, message, surbs, dest.exit)
      yield* out.transmit
    })

  const request: Mix["Service"]["request"] = (destination, codec, message, requestOptions) =>
    Effect.gen(function*() {
      const surbs = Math.max(1, requestOptions?.surbs ?? 1)
      yield* checkSize(codec, message, surbs)
      if (replies.size + surbs > maxPendingReplies) {
        return yield* mixError("Overloaded", `mix: ${maxPendingReplies} SURBs already wait for replies`)
      }
      const dest = yield* destinationOf(destination, requestOptions?.exitIsDestination)
      const out = yield* originate(dest.block, [destination.peerId], codec, message, surbs, dest.exit)
      const done = yield* Deferred.make<Uint8Array, MixError>()
      const group = out.built.ids
      group.forEach((id, i) => replies.set(id, { secrets: out.built.secrets[i]!, group, done }))
      const forget = Effect.sync(() => group.forEach((id) => replies.delete(id)))
      return yield* out.transmit.pipe(
        Effect.andThen(Deferred.await(done)),
        Effect.timeoutOrElse({
          duration: requestOptions?.timeout ?? replyTimeout,
          orElse: () => Effect.fail(mixError("Timeout", "mix: no reply in time"))
        }),
        Effect.ensuring(forget)
      )
    })

  if (options.coverTraffic !== undefined) {
    const interval = millisOf(options.coverTraffic.interval)
    const loop = Effect.gen(function*() {
      const self = yield* selfAddress()
      yield* Effect.sleep(Duration.millis(sampleDelay(interval)))
      const pool = yield* candidates([])
      if (pool.length < L - 1) return
      const nodes = sample(pool, L - 1)
      const path = [...(yield* Effect.forEach(nodes, hopOf)), { publicKey, address: self }]
      const m = yield* fromResult(
        Message.encodeForward(COVER_CODEC, [], randomBytes(Message.maxMessageSize(COVER_CODEC, 0)), seqNo++)
      )
      const { packet } = yield* fromResult(
        Sphinx.createPacket({
          path,
          delays: delays(L),
          destination: new Uint8Array(Sphinx.ADDRESS_SIZE),
          ephemeral: randomBytes(32),
          message: m
        })
      )
      yield* transmit(yield* targetOf({ peerId: nodes[0]!.peerId, addr: undefined }), packet)
    }).pipe(Effect.catch(dropped(undefined)), Effect.forever)
    yield* Effect.forkIn(loop, scope)
  }

  return Mix.of({
    info,
    send,
    request,
    handle: (codec, handler) =>
      Effect.acquireRelease(
        Effect.sync(() => void localHandlers.set(codec, handler)),
        () => Effect.sync(() => void localHandlers.delete(codec))
      ),
    maxMessageSize: (codec, surbs = 0) => Message.maxMessageSize(codec, surbs),
    events: Stream.fromPubSub(events),
    subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription),
    stats: () => ({ pending, replayTags: replay.size(), pendingReplies: replies.size })
  })
})

/** Read until EOF, at most `max` bytes (more fails `MessageTooLarge`). */
const readAll = (stream: Duplex.Duplex, max: number) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    let total = 0
    while (true) {
      const chunks = yield* stream.read
      if (Duplex.isEOF(chunks)) break
      for (const c of chunks) {
        total += c.byteLength
        if (total > max) return yield* mixError("MessageTooLarge", `mix: the destination's answer exceeds ${max} bytes`)
        parts.push(c)
      }
    }
    return new Uint8Array(Buffer.concat(parts))
  })

export const layer = (options?: MixOptions) => Layer.effect(Mix, make(options))
