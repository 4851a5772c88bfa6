/**
 * DCUtR, `/libp2p/dcutr`: Direct Connection Upgrade through Relay
 * (https://github.com/libp2p/specs/blob/master/relay/DCUtR.md) — hole
 * punching over a relayed connection, for TCP.
 *
 * §The Protocol, with `B` the peer that received the relayed connection (it
 * is inbound to it) and `A` the peer that made it:
 * 1. `B` opens a `/libp2p/dcutr` stream on the relayed connection and sends
 *    `CONNECT` with its public addresses (observed/confirmed by identify and
 *    AutoNAT, from the AddressManager; or `addresses`), starting an RTT timer.
 * 2. `A` answers `CONNECT` with its own; `B` measures the RTT, sends `SYNC`
 *    and waits RTT/2.
 * 3. On `SYNC`, `A` dials `B`'s addresses at once; when its timer expires,
 *    `B` dials `A`'s. Each dial leaves from the node's listening port
 *    (`Tcp` with `reusePort`, `Transport.DialOptions.fromListenPort`), so the
 *    two SYNs cross in the NATs and make one connection (a TCP simultaneous
 *    open). Both sides then see an outbound connection: the upgrade is told
 *    its role, `A` the client (initiator), `B` the server (responder), as
 *    the spec says and go-libp2p ≥ 0.41 does, on every attempt. Go's `B`
 *    is the client on its last (3rd) attempt, for go peers before 0.41
 *    whose `A` was the server; against an `A` that is the client (ours, js,
 *    go ≥ 0.41) that attempt cannot succeed: both start noise as initiators
 *    (measured through NATs, `DcutrGoNat.test.ts`, where go as `B` and
 *    as `A` punches with us at the 1st attempt). We do not switch: it
 *    would cost our `B` its 3rd attempt with every current peer to help
 *    only go < 0.41. When
 *    `A`'s SYN reaches `B`'s listener first, `B` gets an ordinary inbound
 *    connection, whose roles agree; each side also takes a direct connection
 *    to the peer that appears while it dials.
 * 4. The direct connection is registered with the Host, which hands it out
 *    before relayed ones (`Host.connections`): new streams go direct. The
 *    relayed connection is closed after `closeRelayedAfter`, if given.
 * 5. On failure `B` starts over with a new stream, `attempts` times in all
 *    (3: the spec's "retry twice"); then the upgrade fails with a
 *    `DcutrError` and the relayed connection stays.
 *
 * Bounds: a message is at most 4 KiB and 64 addresses (`messages.ts`);
 * remote addresses are kept only when public (`publicCidrs` widens that),
 * not relayed, and `/ip4|ip6/…/tcp/…`, at most {@link MAX_DIALS} of them;
 * each read waits at most `streamTimeout`; two inbound streams per
 * connection. Before the protocol, `B` returns a direct connection it
 * already has, and tries a plain dial to the public TCP addresses the
 * Peerstore has for `A` (the spec's unilateral upgrade; the Peerstore learns
 * them from identify, which may not have finished on a new relayed
 * connection). Not done here: QUIC (the random-UDP-packet side of §5).
 *
 * @since 0.2.0
 */
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Fiber,
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
import type * as Duplex from "../../core/Duplex.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import * as PeerId from "../../core/PeerId.ts"
import { AddressManager } from "../../host/AddressManager.ts"
import { Host } from "../../host/Host.ts"
import { Peerstore } from "../../host/Peerstore.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as Messages from "./messages.ts"
import * as DcutrMetrics from "./metrics.ts"

export { CONNECT, MAX_ADDRS, MAX_MESSAGE_SIZE, SYNC } from "./messages.ts"
export type { HolePunch, MessageType } from "./messages.ts"

export const PROTOCOL = "/libp2p/dcutr"

/** Most of the remote's addresses dialed in one attempt. */
export const MAX_DIALS = 8

/** Events kept for a subscriber that lags (sliding). */
export const EVENTS_BUFFER = 64

export const DcutrErrorReason = Schema.Literals([
  /** Not a HolePunch message (bad varint, bad protobuf, unknown type). */
  "Malformed",
  /** A message over 4 KiB. */
  "TooLarge",
  /** A message with more than `MAX_ADDRS` addresses. */
  "TooManyAddresses",
  /** A message of the wrong type for the step (a SYNC for a CONNECT…). */
  "UnexpectedMessage",
  /** No address to punch with: ours (none public) or the remote's (none usable). */
  "NoAddresses",
  /** The connection is not relayed: nothing to upgrade. */
  "NotRelayed",
  /** The stream failed or ended early, or could not be opened. */
  "Stream",
  /** The remote did not answer within `streamTimeout`. */
  "Timeout",
  /** Every direct dial failed (after every attempt, for `upgrade`). */
  "DialFailed"
])
export type DcutrErrorReason = typeof DcutrErrorReason.Type

export class DcutrError extends Schema.TaggedError<DcutrError>()("DcutrError", {
  reason: DcutrErrorReason,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

const fail = (reason: DcutrErrorReason, message: string, cause?: unknown) =>
  new DcutrError({ reason, message, ...(cause !== undefined ? { cause } : {}) })

/** The role of this node in one hole punch: `B` opens the stream (`initiator`), `A` answers (`responder`). */
export type Side = "initiator" | "responder"

export type DcutrEvent =
  | {
    readonly _tag: "Upgraded"
    readonly peer: PeerId.PeerId
    readonly side: Side
    readonly relayed: Connection.Connection
    readonly direct: Connection.Connection
    /** The attempt that succeeded (1-based; 0: the unilateral dial before the protocol; always 1 on the responder side). */
    readonly attempt: number
  }
  | {
    readonly _tag: "Failed"
    readonly peer: PeerId.PeerId
    readonly side: Side
    readonly error: DcutrError
    /** Rounds tried before giving up (1 on the responder side: each round is its own stream there). */
    readonly attempts: number
  }

export interface DcutrOptions {
  /** Start the upgrade on every inbound relayed connection (default true). */
  readonly auto?: boolean
  /** Rounds of CONNECT/SYNC/dial before giving up (default 3, §The Protocol step 6). */
  readonly attempts?: number
  /** Pause between rounds (default 1 second). */
  readonly retryDelay?: Duration.Input
  /** How long each read waits for the remote (default 10 seconds). */
  readonly streamTimeout?: Duration.Input
  /** Deadline of each direct dial (default 5 seconds). */
  readonly dialTimeout?: Duration.Input
  /** Networks whose addresses count as public (test networks on documentation ranges). */
  readonly publicCidrs?: ReadonlyArray<MultiaddrNet.Cidr>
  /**
   * Our addresses for CONNECT (default: the AddressManager's confirmed and
   * observed addresses that are public TCP addresses).
   */
  readonly addresses?: Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>>
  /** Close the relayed connection this long after a direct one was made (default: keep it). */
  readonly closeRelayedAfter?: Duration.Input
}

// ---------------------------------------------------------------------------
// The protocol on one stream (pure in its effects: dial is given)
// ---------------------------------------------------------------------------

/** What one hole punch on one stream needs. */
export interface Round<A> {
  /** Our addresses, sent in CONNECT. */
  readonly ours: ReadonlyArray<Multiaddr.Multiaddr>
  /** The remote's addresses worth dialing (of those its CONNECT carried). */
  readonly usable: (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => ReadonlyArray<Multiaddr.Multiaddr>
  /** The simultaneous connect to the remote's usable addresses. */
  readonly dial: (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => Effect.Effect<A, DcutrError>
  /** How long each read waits. */
  readonly timeout: Duration.Input
}

const readMessage = (
  msgs: LengthPrefixed.Messages,
  timeout: Duration.Input,
  expected: Messages.MessageType
): Effect.Effect<Messages.HolePunch, DcutrError> =>
  msgs.readOne.pipe(
    Effect.mapError((e) =>
      e._tag === "ReaderError" && e.reason === "TooLarge"
        ? fail("TooLarge", `dcutr: ${e.message}`, e)
        : e._tag === "ReaderError" && e.reason === "InvalidVarint"
        ? fail("Malformed", `dcutr: ${e.message}`, e)
        : fail("Stream", `dcutr: ${e.message}`, e)
    ),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () =>
        Effect.fail(
          fail("Timeout", `dcutr: no message within ${Duration.format(Duration.fromInputUnsafe(timeout))}`)
        )
    }),
    Effect.flatMap((bytes) => {
      const msg = Messages.decode(bytes)
      if (Result.isFailure(msg)) {
        const f = msg.failure
        return Effect.fail(
          f._tag === "Malformed"
            ? fail("Malformed", `dcutr: ${f.message}`)
            : fail("TooManyAddresses", `dcutr: ${f.count} addresses (at most ${Messages.MAX_ADDRS})`)
        )
      }
      if (msg.success.type !== expected) {
        const name = (t: number) => (t === Messages.CONNECT ? "CONNECT" : "SYNC")
        return Effect.fail(
          fail("UnexpectedMessage", `dcutr: expected ${name(expected)}, got ${name(msg.success.type)}`)
        )
      }
      return Effect.succeed(msg.success)
    })
  )

const writeMessage = (msgs: LengthPrefixed.Messages, msg: Messages.HolePunch) =>
  msgs.write(Messages.encode(msg)).pipe(Effect.mapError((e) => fail("Stream", `dcutr: ${e.message}`, e)))

/**
 * §The Protocol steps 2, 4 and 5 on `B`'s side: CONNECT, the RTT until
 * `A`'s CONNECT, SYNC, RTT/2, then `dial`. The stream is reset on failure.
 */
export const initiate = <A>(stream: Duplex.Duplex, round: Round<A>): Effect.Effect<A, DcutrError> =>
  Effect.gen(function*() {
    if (round.ours.length === 0) return yield* fail("NoAddresses", "dcutr: we have no public address to offer")
    const msgs = LengthPrefixed.messages(stream, { maxLength: Messages.MAX_MESSAGE_SIZE })
    yield* writeMessage(msgs, { type: Messages.CONNECT, addrs: round.ours })
    const sent = yield* Clock.currentTimeMillis
    const connect = yield* readMessage(msgs, round.timeout, Messages.CONNECT)
    const rtt = (yield* Clock.currentTimeMillis) - sent
    const addrs = round.usable(connect.addrs)
    if (addrs.length === 0) {
      return yield* fail("NoAddresses", `dcutr: none of the remote's ${connect.addrs.length} addresses is usable`)
    }
    yield* writeMessage(msgs, { type: Messages.SYNC, addrs: [] })
    yield* msgs.closeWrite
    yield* Effect.sleep(Duration.millis(rtt / 2))
    return yield* round.dial(addrs)
  }).pipe(Effect.tapError(() => stream.reset))

/**
 * §The Protocol steps 3 and 5 on `A`'s side: CONNECT in, our CONNECT out,
 * then on SYNC `dial` at once. The stream is reset on failure.
 */
export const respond = <A>(stream: Duplex.Duplex, round: Round<A>): Effect.Effect<A, DcutrError> =>
  Effect.gen(function*() {
    const msgs = LengthPrefixed.messages(stream, { maxLength: Messages.MAX_MESSAGE_SIZE })
    const connect = yield* readMessage(msgs, round.timeout, Messages.CONNECT)
    const addrs = round.usable(connect.addrs)
    if (addrs.length === 0) {
      return yield* fail("NoAddresses", `dcutr: none of the remote's ${connect.addrs.length} addresses is usable`)
    }
    if (round.ours.length === 0) return yield* fail("NoAddresses", "dcutr: we have no public address to offer")
    yield* writeMessage(msgs, { type: Messages.CONNECT, addrs: round.ours })
    yield* readMessage(msgs, round.timeout, Messages.SYNC)
    yield* msgs.closeWrite
    return yield* round.dial(addrs)
  }).pipe(Effect.tapError(() => stream.reset))

/**
 * The addresses worth a hole punch: `/ip4|ip6/<ip>/tcp/<port>` (a trailing
 * `/p2p/…` is dropped), public, not relayed; distinct; at most `max`.
 */
export const usableAddrs = (
  addrs: ReadonlyArray<Multiaddr.Multiaddr>,
  options: { readonly publicCidrs?: ReadonlyArray<MultiaddrNet.Cidr> | undefined; readonly max: number }
): ReadonlyArray<Multiaddr.Multiaddr> => {
  const out = new Map<string, Multiaddr.Multiaddr>()
  for (const addr of addrs) {
    if (out.size >= options.max) break
    if (MultiaddrNet.isRelayed(addr)) continue
    const split = MultiaddrNet.splitThinWaist(addr)
    if (split === undefined || split.thinWaist.components[1]?.code !== Multiaddr.codes.tcp) continue
    const rest = split.rest.components
    if (rest.length > 1 || (rest.length === 1 && rest[0]!.code !== Multiaddr.codes.p2p)) continue
    if (!MultiaddrNet.isPublic(split.thinWaist, { publicCidrs: options.publicCidrs })) continue
    out.set(split.thinWaist.toString(), split.thinWaist)
  }
  return [...out.values()]
}

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

export class Dcutr extends Context.Service<Dcutr, {
  /**
   * Upgrade a relayed connection we received (`B`'s side) to a direct one:
   * up to `attempts` rounds. The direct connection is registered with the Host.
   */
  readonly upgrade: (relayed: Connection.Connection) => Effect.Effect<Connection.Connection, DcutrError>
  /** Every upgrade's outcome, both sides, from the moment the stream is run. */
  readonly events: Stream.Stream<DcutrEvent>
  /** Subscribe now: nothing is missed from then on, while the current scope lasts. */
  readonly subscribe: Effect.Effect<Stream.Stream<DcutrEvent>, never, Scope.Scope>
}>()("effect-libp2p/Dcutr") {}

const isDirect = (conn: Connection.Connection) => !MultiaddrNet.isRelayed(conn.remoteAddr) && !conn.isClosed()

export const make = (options: DcutrOptions = {}) =>
  Effect.gen(function*() {
    const host = yield* Host
    const registrar = yield* Registrar
    const addressManager = yield* AddressManager
    const peerstore = yield* Peerstore
    const scope = yield* Effect.scope
    const events = yield* PubSub.sliding<DcutrEvent>(EVENTS_BUFFER)
    const metrics = yield* Metrics.recorder
    const attempts = Math.max(1, options.attempts ?? 3)
    const retryDelay = options.retryDelay ?? Duration.seconds(1)
    const streamTimeout = options.streamTimeout ?? Duration.seconds(10)
    const dialTimeout = options.dialTimeout ?? Duration.seconds(5)
    const publicCidrs = options.publicCidrs
    const usable = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => usableAddrs(addrs, { publicCidrs, max: MAX_DIALS })

    const ours: Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>> = Effect.map(
      options.addresses ?? Effect.map(addressManager.observed, (observed) => [
        ...addressManager.confirmed(),
        ...observed.map((o) => o.observed)
      ]),
      (addrs) => usableAddrs(addrs, { publicCidrs, max: Messages.MAX_ADDRS })
    )

    /**
     * The simultaneous connect (§The Protocol step 5): every address at once,
     * from our listening port, with our upgrade role; the first direct
     * connection to `peer` wins, also an inbound one that arrives on our
     * listener meanwhile (the other side's SYN came first).
     */
    const punch =
      (peer: PeerId.PeerId, role: "initiator" | "responder") =>
      (
        addrs: ReadonlyArray<Multiaddr.Multiaddr>
      ): Effect.Effect<Connection.Connection, DcutrError> =>
        Effect.scoped(Effect.gen(function*() {
          const hostEvents = yield* host.subscribe
          const present = host.connections(peer).find(isDirect)
          if (present !== undefined) return present
          const arrives = hostEvents.pipe(
            Stream.filterMap((e) =>
              // inbound only: a connection our own dial makes is that dial's result (racing it would interrupt it)
              e._tag === "ConnectionOpen" && e.connection.direction === "inbound" &&
                PeerId.equals(e.connection.remotePeer, peer) && isDirect(e.connection)
                ? Result.succeed(e.connection)
                : Result.failVoid
            ),
            Stream.runHead,
            Effect.flatMap(Option.match({
              onNone: () => Effect.fail(fail("DialFailed", "dcutr: host closed")),
              onSome: Effect.succeed
            })),
            Effect.timeoutOrElse({
              duration: dialTimeout,
              orElse: () => Effect.fail(fail("DialFailed", "dcutr: no direct connection came"))
            })
          )
          const errors: Array<string> = []
          const dials = addrs.map((addr) =>
            host.dialDirect(addr, { peer, role, fromListenPort: true, timeout: dialTimeout }).pipe(
              Effect.mapError((e) => {
                errors.push(`${addr.toString()}: ${e.message}`)
                return fail("DialFailed", `dcutr: ${e.message}`, e)
              })
            )
          )
          return yield* Effect.raceAll([...dials, arrives]).pipe(
            Effect.mapError((e) =>
              e.reason === "DialFailed"
                ? fail("DialFailed", `dcutr: every direct dial failed: ${errors.join("; ")}`)
                : e
            )
          )
        }))

    const succeeded = (
      side: Side,
      relayed: Connection.Connection,
      direct: Connection.Connection,
      attempt: number
    ) =>
      Effect.gen(function*() {
        metrics.update(DcutrMetrics.holePunches.with(side, "success"), 1)
        metrics.update(DcutrMetrics.attempts, attempt)
        yield* PubSub.publish(events, { _tag: "Upgraded", peer: relayed.remotePeer, side, relayed, direct, attempt })
        if (options.closeRelayedAfter !== undefined) {
          yield* Effect.forkIn(Effect.andThen(Effect.sleep(options.closeRelayedAfter), relayed.close), scope)
        }
      })

    const failed = (side: Side, relayed: Connection.Connection, attempts = 1) => (error: DcutrError) =>
      Effect.andThen(
        Effect.sync(() => metrics.update(DcutrMetrics.holePunches.with(side, error.reason), 1)),
        PubSub.publish(events, { _tag: "Failed", peer: relayed.remotePeer, side, error, attempts })
      )

    /** One round on a new stream (`B`). */
    const round = (relayed: Connection.Connection) =>
      Effect.scoped(Effect.gen(function*() {
        const addrs = yield* ours
        if (addrs.length === 0) return yield* fail("NoAddresses", "dcutr: we have no public address to offer")
        const stream = yield* relayed.newStream([PROTOCOL]).pipe(
          Effect.mapError((e) => fail("Stream", `dcutr: ${e.message}`, e))
        )
        return yield* initiate(stream, {
          ours: addrs,
          usable,
          dial: punch(relayed.remotePeer, "responder"),
          timeout: streamTimeout
        })
      }))

    const upgrade = (relayed: Connection.Connection): Effect.Effect<Connection.Connection, DcutrError> =>
      Effect.gen(function*() {
        if (!MultiaddrNet.isRelayed(relayed.remoteAddr)) {
          return yield* fail("NotRelayed", `dcutr: ${relayed.remoteAddr.toString()} is not a relayed connection`)
        }
        const peer = relayed.remotePeer
        const present = host.connections(peer).find(isDirect)
        if (present !== undefined) return present
        // §The Protocol: when A advertises public addresses (known from an earlier identify), B first tries a
        // plain direct dial ("unilateral connection upgrade"); attempt 0 in the event
        const advertised = usable(peerstore.get(peer)?.addrs ?? [])
        if (advertised.length > 0) {
          const direct = yield* Effect.raceAll(
            advertised.map((addr) => host.dialDirect(addr, { peer, timeout: dialTimeout }))
          ).pipe(Effect.option)
          if (Option.isSome(direct)) {
            yield* succeeded("initiator", relayed, direct.value, 0)
            return direct.value
          }
        }
        let last: DcutrError | undefined
        let tried = 0
        for (let attempt = 1; attempt <= attempts; attempt++) {
          if (attempt > 1) yield* Effect.sleep(retryDelay)
          tried = attempt
          const result = yield* Effect.result(round(relayed))
          if (Result.isSuccess(result)) {
            yield* succeeded("initiator", relayed, result.success, attempt)
            return result.success
          }
          last = result.failure
          // a bad or absent answer is not worth retrying: the peer will not do better
          if (!["DialFailed", "Timeout", "Stream", "NoAddresses"].includes(last.reason)) break
        }
        const error = last ?? fail("DialFailed", "dcutr: no attempt made")
        yield* failed("initiator", relayed, tried)(error)
        return yield* error
      })

    // `A`'s side: answer a hole punch on a relayed connection. A new round from a peer ends the
    // one still going for it first: that round's dial from our listening port to the same address
    // would hold the 4-tuple, and the new dial would fail at once (EADDRNOTAVAIL), losing the round.
    const answering = new Map<string, Fiber.Fiber<Connection.Connection, DcutrError>>()
    yield* registrar.handle(
      PROTOCOL,
      (stream, conn) =>
        Effect.gen(function*() {
          if (!MultiaddrNet.isRelayed(conn.remoteAddr)) {
            yield* stream.reset
            return yield* fail("NotRelayed", `dcutr: ${conn.remoteAddr.toString()} is not a relayed connection`)
          }
          const key = PeerId.toString(conn.remotePeer)
          const previous = answering.get(key)
          if (previous !== undefined) yield* Fiber.interrupt(previous)
          const addrs = yield* ours
          let dialing: ReadonlyArray<Multiaddr.Multiaddr> = []
          const fiber = yield* Effect.forkChild(respond(stream, {
            ours: addrs,
            usable,
            dial: (remote) => {
              dialing = remote
              return punch(conn.remotePeer, "initiator")(remote)
            },
            timeout: streamTimeout
          }))
          answering.set(key, fiber)
          const exit = yield* Effect.ensuring(
            Fiber.await(fiber),
            Effect.sync(() => {
              if (answering.get(key) === fiber) answering.delete(key)
            })
          )
          const outcome: Effect.Effect<Connection.Connection, DcutrError> = Exit.isSuccess(exit)
            ? Effect.succeed(exit.value)
            : Cause.hasInterruptsOnly(exit.cause)
            ? Effect.fail(fail(
              "DialFailed",
              `dcutr: a new round from the peer replaced this one (dialing ${
                dialing.map(Multiaddr.toString).join(", ")
              })`
            ))
            : Effect.failCause(exit.cause)
          const direct = yield* outcome.pipe(Effect.tapError(failed("responder", conn)))
          yield* succeeded("responder", conn, direct, 1)
        }),
      { maxInboundStreams: 2 }
    )

    // `B`'s side: every relayed connection we receive
    if (options.auto ?? true) {
      yield* host.onConnection((conn) =>
        conn.direction === "inbound" && MultiaddrNet.isRelayed(conn.remoteAddr)
          ? Effect.ignore(upgrade(conn))
          : Effect.void
      )
    }

    return Dcutr.of({
      upgrade,
      events: Stream.fromPubSub(events),
      subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription)
    })
  })

export const layer = (options: DcutrOptions = {}) => Layer.effect(Dcutr, make(options))
