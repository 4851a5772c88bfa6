/**
 * Circuit relay v2, the client's side (libp2p specs relay/circuit-v2.md):
 * reserving a slot on a relay (§Reservation: `RESERVE`, the voucher checked,
 * refreshed before it expires), dialing through a relay (§Connection
 * Initiation: `CONNECT`, then the hop stream is the raw connection), and
 * accepting relayed connections (§Stop Protocol: a relay's `CONNECT` on
 * `/libp2p/circuit/relay/0.2.0/stop`, answered `STATUS OK`, then the stop
 * stream is the raw connection). Both kinds of raw connection go through the
 * Host and its Upgrader (security + muxer) by way of the `/p2p-circuit`
 * transport (`RelayTransport.ts`, which says how it is bound late).
 *
 * Reservations: `reserve(relayAddr)` reserves once; each relay in
 * `options.relays` is kept reserved by a fiber in the layer's scope that
 * reserves, advertises `<relay addr>/p2p/<relay>/p2p-circuit` through the
 * AddressManager (as listen addresses: `host`'s identify and the CLI then
 * show them), sleeps on the Clock until 3/4 of the reservation's remaining
 * time has passed (or 1 s after the connection to the relay closes:
 * §Reservation, the reservation dies with it) and reserves again; a failure withdraws the
 * relay's addresses and retries on an exponential schedule (1 s doubling,
 * at most `retryMax` [1 min] apart). The relay is protected in the
 * ConnectionManager (tag `relay-reservation`) while reserved.
 *
 * Voucher checks (§Reservation Vouchers): when the relay sends one it must
 * open (signature, domain, payload type), name this relay and this peer and
 * the reservation's expiration; otherwise the reservation fails with
 * `InvalidVoucher`. A reservation without a voucher is accepted (the spec
 * calls vouchers advisory).
 *
 * Bad input: a reply that is not a HopMessage, or of the wrong type, or a
 * stop message that is not CONNECT (answered MALFORMED_MESSAGE /
 * UNEXPECTED_MESSAGE), ends with a typed `RelayError` and the stream closed.
 *
 * Anchors: go-libp2p `p2p/protocol/circuitv2/client/{reservation.go,
 * dial.go, handlers.go}`, rust-libp2p `protocols/relay/src/priv_client.rs`.
 *
 * @since 0.3.0
 */
import { Clock, Context, Duration, Effect, Layer, PubSub, Result, Schedule, Scope, Stream } from "effect"
import type * as Connection from "../../connection/Connection.ts"
import { ConnectionManager } from "../../connection/ConnectionManager.ts"
import { Registrar } from "../../connection/Registrar.ts"
import * as Duplex from "../../core/Duplex.ts"
import { Identity } from "../../core/Identity.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Reader from "../../core/Reader.ts"
import { AddressManager } from "../../host/AddressManager.ts"
import { Host } from "../../host/Host.ts"
import * as Options from "../../internal/options.ts"
import type * as Transport from "../../transport/Transport.ts"
import * as Circuit from "./circuit.ts"
import { type RelayError, relayError } from "./errors.ts"
import * as Messages from "./messages.ts"
import { CircuitTransport, LISTEN_ADDR, transportError } from "./RelayTransport.ts"
import * as Voucher from "./Voucher.ts"

export { RelayError, RelayErrorReason } from "./errors.ts"
export { HOP_PROTOCOL, STOP_PROTOCOL, STOP_PROTOCOL as PROTOCOL } from "./messages.ts"

export interface RelayClientOptions {
  /** Relays to reserve on and keep reserved (each with `/p2p/<relay>`). */
  readonly relays?: ReadonlyArray<Multiaddr.Multiaddr> | undefined
  /** Deadline for a relay's or a target's answer (default 30 s). */
  readonly streamTimeout?: Duration.Input | undefined
  /** Longest wait between reservation retries (default 1 min). */
  readonly retryMax?: Duration.Input | undefined
}

/** A reservation held on a relay. */
export interface Reservation {
  readonly relay: PeerId.PeerId
  /** UNIX UTC seconds (§Reservation `expire`). */
  readonly expire: bigint
  /** Our circuit addresses through it, each `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<self>`. */
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  /** The limits the relay applies to relayed connections (undefined: none announced). */
  readonly limits: Transport.ConnectionLimits | undefined
  /** The voucher's envelope, when the relay sent one (it verified). */
  readonly voucher: Uint8Array | undefined
}

export type RelayClientEvent =
  | { readonly _tag: "Reserved"; readonly reservation: Reservation }
  | { readonly _tag: "ReservationFailed"; readonly relay: Multiaddr.Multiaddr; readonly error: RelayError }

/** Events buffered per subscriber (sliding). */
export const EVENTS_BUFFER = 64

export class RelayClient extends Context.Service<RelayClient, {
  /** Reserve on the relay at `relayAddr` (with `/p2p/<relay>`) once, and advertise its circuit addresses. */
  readonly reserve: (relayAddr: Multiaddr.Multiaddr) => Effect.Effect<Reservation, RelayError>
  /** The reservations held now, one per relay. */
  readonly reservations: () => ReadonlyArray<Reservation>
  /** Our circuit addresses (with `/p2p/<self>`) through every reservation held. */
  readonly addrs: () => ReadonlyArray<Multiaddr.Multiaddr>
  readonly events: Stream.Stream<RelayClientEvent>
  readonly subscribe: Effect.Effect<Stream.Stream<RelayClientEvent>, never, Scope.Scope>
}>()("effect-libp2p/RelayClient") {}

const TAG = "relay-reservation"

const millis = (d: Duration.Input | undefined, fallback: Duration.Duration): number =>
  Duration.toMillis(Options.duration(d, fallback))

/** A `/p2p-circuit` address split: the relay's part (maybe just `/p2p/<relay>`), the relay, the target. */
export const parseCircuitAddr = (
  addr: Multiaddr.Multiaddr
): Result.Result<
  { readonly relayAddr: Multiaddr.Multiaddr; readonly relay: PeerId.PeerId; readonly target: PeerId.PeerId },
  RelayError
> => {
  const bad = (why: string) => Result.fail(relayError("BadAddress", `${Multiaddr.toString(addr)}: ${why}`))
  const cs = Multiaddr.components(addr)
  const at = cs.findIndex((c) => c.code === Multiaddr.codes["p2p-circuit"])
  if (at < 1 || cs.length !== at + 2 || cs[at + 1]!.code !== Multiaddr.codes.p2p) {
    return bad("not <relay>/p2p-circuit/p2p/<target>")
  }
  const relayAddr = Multiaddr.decapsulateCode(addr, Multiaddr.codes["p2p-circuit"])
  const relayId = Multiaddr.getPeerId(relayAddr)
  const targetId = Multiaddr.getPeerId(addr)
  const relay = relayId === undefined ? undefined : PeerId.fromString(relayId)
  const target = targetId === undefined ? undefined : PeerId.fromString(targetId)
  if (relay === undefined || Result.isFailure(relay)) return bad("the relay part names no peer")
  if (target === undefined || Result.isFailure(target)) return bad("no target peer id")
  return Result.succeed({ relayAddr, relay: relay.success, target: target.success })
}

export const make = Effect.fnUntraced(function*(options: RelayClientOptions = {}) {
  const identity = yield* Identity
  const registrar = yield* Registrar
  const host = yield* Host
  const circuit = yield* CircuitTransport
  const connectionManager = yield* ConnectionManager
  const addressManager = yield* Effect.serviceOption(AddressManager)
  const streamTimeout = millis(options.streamTimeout, Duration.seconds(30))
  const retryMax = millis(options.retryMax, Duration.minutes(1))
  const events = yield* PubSub.sliding<RelayClientEvent>(EVENTS_BUFFER)
  const self = identity.peerId
  const selfP2p = Circuit.p2p(self)
  /** Reservations by relay peer id, with the addresses advertised for them. */
  const held = new Map<string, { readonly reservation: Reservation; readonly listen: Array<Multiaddr.Multiaddr> }>()

  const advertise = (key: string, reservation: Reservation | undefined) =>
    Effect.gen(function*() {
      const before = held.get(key)
      if (reservation === undefined) held.delete(key)
      const listen = reservation === undefined ? [] : reservation.addrs.map((a) => Multiaddr.decapsulate(a, selfP2p))
      if (reservation !== undefined) held.set(key, { reservation, listen })
      if (addressManager._tag === "None") return
      const gone = (before?.listen ?? []).filter((a) => !listen.some((b) => Multiaddr.equals(a, b)))
      if (gone.length > 0) yield* addressManager.value.removeListenAddrs(gone)
      if (listen.length > 0) yield* addressManager.value.addListenAddrs(listen)
    })

  const checkVoucher = (bytes: Uint8Array, relay: PeerId.PeerId, expire: bigint) => {
    const opened = Voucher.open(bytes)
    if (Result.isFailure(opened)) {
      return Effect.fail(relayError("InvalidVoucher", `relay: ${opened.failure.message}`, opened.failure))
    }
    const v = opened.success
    if (!PeerId.equals(v.relay, relay)) {
      return Effect.fail(relayError("InvalidVoucher", "relay: voucher of another relay"))
    }
    if (!PeerId.equals(v.peer, self)) {
      return Effect.fail(relayError("InvalidVoucher", "relay: voucher for another peer"))
    }
    if (v.expiration !== expire) {
      return Effect.fail(relayError("InvalidVoucher", "relay: voucher expiration differs from the reservation's"))
    }
    return Effect.void
  }

  /** One RESERVE on `relayAddr`: the reservation and the connection it lives on. */
  const reserveOnce = (relayAddr: Multiaddr.Multiaddr) =>
    Effect.scoped(Effect.gen(function*() {
      const relayId = Multiaddr.getPeerId(relayAddr)
      const parsed = relayId === undefined ? undefined : PeerId.fromString(relayId)
      if (parsed === undefined || Result.isFailure(parsed)) {
        return yield* relayError("BadAddress", `${Multiaddr.toString(relayAddr)}: a relay address needs /p2p/<relay>`)
      }
      const relay = parsed.success
      const conn = yield* host.dial(relayAddr).pipe(
        Effect.mapError((e) => relayError("Stream", `relay: dial ${Multiaddr.toString(relayAddr)}: ${e.message}`, e))
      )
      const stream = yield* conn.newStream([Messages.HOP_PROTOCOL]).pipe(
        Effect.mapError((e) => relayError("Stream", `relay: hop stream: ${e.message}`, e))
      )
      const reader = Reader.make(stream)
      yield* Circuit.writeMessage(stream, Messages.HopMessage, { type: Messages.HopType.RESERVE })
      const answer = yield* Circuit.readMessage(reader, Messages.HopMessage, streamTimeout).pipe(
        Effect.tapError(() => stream.reset)
      )
      yield* stream.closeWrite
      if (answer.type !== Messages.HopType.STATUS) {
        return yield* relayError("UnexpectedMessage", `relay: expected STATUS, got hop type ${answer.type}`)
      }
      if (answer.status !== Messages.Status.OK) {
        const status = Messages.statusName(answer.status)
        return yield* relayError("Refused", `relay: reservation refused: ${status}`, undefined, status)
      }
      const r = answer.reservation
      if (r === undefined || r.expire === undefined) {
        return yield* relayError("Malformed", "relay: STATUS OK without a reservation or its expiry")
      }
      if (r.voucher !== undefined && r.voucher.length > 0) yield* checkVoucher(r.voucher, relay, r.expire)
      const relayKey = PeerId.toString(relay)
      const named = Messages.addrsOf(r.addrs).filter((a) => {
        const id = Multiaddr.getPeerId(a)
        return !Circuit.isRelayed(a) && (id === undefined || id === relayKey)
      })
      const bases = named.length > 0 ? named : [conn.remoteAddr]
      const reservation: Reservation = {
        relay,
        expire: r.expire,
        addrs: bases.map((a) => Multiaddr.encapsulate(Circuit.circuitAddr(a, relay), selfP2p)),
        limits: Circuit.fromWire(answer.limit),
        voucher: r.voucher !== undefined && r.voucher.length > 0 ? r.voucher : undefined
      }
      return { reservation, conn }
    }))

  const reserveAndAdvertise = (relayAddr: Multiaddr.Multiaddr) =>
    Effect.gen(function*() {
      const { conn, reservation } = yield* reserveOnce(relayAddr)
      yield* connectionManager.protect(reservation.relay, TAG)
      yield* advertise(PeerId.toString(reservation.relay), reservation)
      yield* PubSub.publish(events, { _tag: "Reserved", reservation })
      return { conn, reservation }
    }).pipe(
      Effect.tapError((error) =>
        Effect.andThen(
          withdraw(relayAddr),
          PubSub.publish(events, { _tag: "ReservationFailed", relay: relayAddr, error })
        )
      )
    )

  const withdraw = (relayAddr: Multiaddr.Multiaddr) =>
    Effect.suspend(() => {
      const id = Multiaddr.getPeerId(relayAddr)
      if (id === undefined || !held.has(id)) return Effect.void
      const relay = held.get(id)!.reservation.relay
      return Effect.andThen(advertise(id, undefined), connectionManager.unprotect(relay, TAG))
    })

  /** Keep a reservation on `relayAddr`: reserve, sleep until 3/4 of its time passed or the relay is gone, again. */
  const keep = (relayAddr: Multiaddr.Multiaddr) => {
    const retry = Schedule.min([Schedule.exponential(Duration.seconds(1)), Schedule.spaced(Duration.millis(retryMax))])
    const once = Effect.gen(function*() {
      const { conn, reservation } = yield* Effect.retry(reserveAndAdvertise(relayAddr), retry)
      const now = yield* Clock.currentTimeMillis
      const remaining = Number(reservation.expire) * 1000 - now
      const wait = Math.max(1000, Math.floor(remaining * 3 / 4))
      // a relay that drops the connection right after each reservation is not redialed in a tight loop
      yield* Effect.raceFirst(
        Effect.sleep(Duration.millis(wait)),
        Effect.andThen(conn.closed, Effect.sleep("1 second"))
      )
    })
    return Effect.forever(once)
  }

  /** §Connection Initiation: CONNECT through the relay; the hop stream becomes the raw connection. */
  const dial: (addr: Multiaddr.Multiaddr) => Effect.Effect<Transport.RawConnection, RelayError, Scope.Scope> = (
    addr
  ) =>
    Effect.gen(function*() {
      const parsed = parseCircuitAddr(addr)
      if (Result.isFailure(parsed)) return yield* parsed.failure
      const { relay, relayAddr, target } = parsed.success
      if (PeerId.equals(target, self)) return yield* relayError("BadAddress", "relay: a circuit to ourselves")
      const hasTransport = Multiaddr.components(relayAddr).some((c) => c.code !== Multiaddr.codes.p2p)
      const conn = yield* host.dial(hasTransport ? relayAddr : relay).pipe(
        Effect.mapError((e) => relayError("Stream", `relay: dial the relay: ${e.message}`, e))
      )
      if (Circuit.isRelayed(conn.remoteAddr)) {
        return yield* relayError("BadAddress", "relay: the relay is only reachable through another relay")
      }
      const stream = yield* conn.newStream([Messages.HOP_PROTOCOL]).pipe(
        Effect.mapError((e) => relayError("Stream", `relay: hop stream: ${e.message}`, e))
      )
      const reader = Reader.make(stream)
      yield* Circuit.writeMessage(stream, Messages.HopMessage, {
        type: Messages.HopType.CONNECT,
        peer: Messages.peerOf(target)
      })
      const answer = yield* Circuit.readMessage(reader, Messages.HopMessage, streamTimeout).pipe(
        Effect.tapError(() => stream.reset)
      )
      if (answer.type !== Messages.HopType.STATUS) {
        yield* stream.reset
        return yield* relayError("UnexpectedMessage", `relay: expected STATUS, got hop type ${answer.type}`)
      }
      if (answer.status !== Messages.Status.OK) {
        yield* stream.reset
        const status = Messages.statusName(answer.status)
        return yield* relayError("Refused", `relay: connect refused: ${status}`, undefined, status)
      }
      const limits = Circuit.fromWire(answer.limit)
      return {
        duplex: Duplex.prepend(stream, reader.rest()),
        remoteAddr: Circuit.relayedAddr(conn.remoteAddr, relay, target),
        localAddr: LISTEN_ADDR,
        ...(limits !== undefined ? { limits } : {})
      }
    })

  /** §Stop Protocol: a relay's CONNECT, answered STATUS OK; the stop stream becomes the raw connection. */
  const serveStop = (stream: Connection.Stream, conn: Connection.Connection) =>
    Effect.gen(function*() {
      const reader = Reader.make(stream)
      const answer = (status: Messages.StatusName) =>
        Effect.andThen(
          Effect.ignore(
            Circuit.writeMessage(stream, Messages.StopMessage, {
              type: Messages.StopType.STATUS,
              status: Messages.Status[status]
            })
          ),
          Circuit.finish(stream, streamTimeout)
        )
      const msg = yield* Circuit.readMessage(reader, Messages.StopMessage, streamTimeout).pipe(
        Effect.tapError((e) => e.reason === "Malformed" ? answer("MALFORMED_MESSAGE") : Effect.void)
      )
      if (msg.type !== Messages.StopType.CONNECT) {
        yield* answer("UNEXPECTED_MESSAGE")
        return yield* relayError("UnexpectedMessage", `relay: expected a stop CONNECT, got type ${msg.type}`)
      }
      const initiator = Messages.peerIdOf(msg.peer)
      if (initiator === undefined) {
        yield* answer("MALFORMED_MESSAGE")
        return yield* relayError("Malformed", "relay: stop CONNECT without a valid peer id")
      }
      if (Circuit.isRelayed(conn.remoteAddr) || !circuit.listening()) {
        yield* answer("CONNECTION_FAILED")
        return yield* relayError(
          "Refused",
          "relay: not accepting relayed connections here",
          undefined,
          "CONNECTION_FAILED"
        )
      }
      yield* Circuit.writeMessage(stream, Messages.StopMessage, {
        type: Messages.StopType.STATUS,
        status: Messages.Status.OK
      })
      const limits = Circuit.fromWire(msg.limit)
      yield* circuit.accept({
        duplex: Duplex.prepend(stream, reader.rest()),
        remoteAddr: Circuit.relayedAddr(conn.remoteAddr, conn.remotePeer, initiator),
        localAddr: LISTEN_ADDR,
        ...(limits !== undefined ? { limits } : {})
      })
    })

  yield* registrar.handle(Messages.STOP_PROTOCOL, serveStop, { maxInboundStreams: 64 })
  yield* circuit.bind((addr) => Effect.mapError(dial(addr), (e) => transportError(addr, e)))
  yield* host.listen([LISTEN_ADDR]).pipe(Effect.orDie)
  for (const relay of options.relays ?? []) yield* Effect.forkScoped(keep(relay))
  yield* Effect.addFinalizer(() =>
    Effect.forEach(Array.from(held.values()), (h) => connectionManager.unprotect(h.reservation.relay, TAG), {
      discard: true
    })
  )

  return RelayClient.of({
    reserve: (relayAddr) => Effect.map(reserveAndAdvertise(relayAddr), (r) => r.reservation),
    reservations: () => Array.from(held.values(), (h) => h.reservation),
    addrs: () => Array.from(held.values()).flatMap((h) => h.reservation.addrs),
    events: Stream.fromPubSub(events),
    subscribe: Effect.map(PubSub.subscribe(events), Stream.fromSubscription)
  })
})

/** The relay client as a layer: the stop handler, the transport's binding and the kept reservations live as long as it. */
export const layer = (options?: RelayClientOptions) => Layer.effect(RelayClient, make(options))
