/**
 * Circuit relay v2, the relay's side: the hop protocol
 * `/libp2p/circuit/relay/0.2.0/hop` (libp2p specs relay/circuit-v2.md
 * §Hop Protocol) — reservations (§Reservation) with an expiry, signed
 * vouchers (§Reservation Vouchers) and limits, and connection initiation
 * (§Connection Initiation): the relay opens `/libp2p/circuit/relay/0.2.0/stop`
 * to the target (§Stop Protocol) and splices the two streams, cutting the
 * circuit at its data or duration limit.
 *
 * Limits (go-libp2p `circuitv2/relay/resources.go` defaults): one
 * reservation per peer (a second RESERVE refreshes it), `maxReservationsPerIp`
 * [8] per remote IP (peers without an IP, e.g. in-process, share one key),
 * `maxReservations` [128] in all — beyond them RESERVATION_REFUSED;
 * `maxCircuitsPerPeer` [16] circuits per source or destination peer and
 * `maxCircuits` [64] in all — beyond them RESOURCE_LIMIT_EXCEEDED; each
 * circuit carries `limit` [2 min, 128 KiB per direction]. Reservations and
 * connection initiations over a relayed connection are refused with
 * PERMISSION_DENIED (the spec's "should not"). A reservation is dropped when
 * it expires or its peer disconnects (§Reservation: "If the peer
 * disconnects, the reservation is no longer valid"); a fiber on the Clock
 * sweeps expired ones every `sweepInterval` [1 min], and CONNECT checks the
 * expiry itself. A reserved peer is protected in the ConnectionManager
 * (tag `relay-reservation`) while its reservation lasts. `/api/status` gets
 * a `relay` section (reservations, circuits, limits).
 *
 * Bad input: a message that is not a HopMessage (bad varint, over 4 KiB,
 * bad protobuf) is answered MALFORMED_MESSAGE and the handler ends with a
 * typed `RelayError` (`Malformed`, logged by the Registrar); a STATUS or
 * unknown type is answered UNEXPECTED_MESSAGE. Every refusal is answered
 * and the exchange finished (our side half-closed, the remote's read to its
 * end, bounded) before the stream's scope closes. The stop side of a
 * CONNECT that answers anything but STATUS OK ends the attempt with
 * CONNECTION_FAILED to the source.
 *
 * Anchors: go-libp2p `p2p/protocol/circuitv2/relay/relay.go`, rust-libp2p
 * `protocols/relay/src/behaviour.rs`.
 *
 * @since 0.3.0
 */
import { Clock, Context, Duration, Effect, Layer, Result, Schedule, Stream } from "effect"
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
import * as Metrics from "../../internal/metrics.ts"
import * as Options from "../../internal/options.ts"
import * as Status from "../../observability/Status.ts"
import * as Circuit from "./circuit.ts"
import { type RelayError, relayError } from "./errors.ts"
import * as Messages from "./messages.ts"
import * as RelayMetrics from "./metrics.ts"
import * as Voucher from "./Voucher.ts"

export { RelayError, RelayErrorReason } from "./errors.ts"
export { HOP_PROTOCOL, HOP_PROTOCOL as PROTOCOL, STOP_PROTOCOL } from "./messages.ts"

export interface RelayServerOptions {
  /** How long a reservation lasts (default 1 hour). */
  readonly reservationTtl?: Duration.Input | undefined
  /** Reservations held at once (default 128). */
  readonly maxReservations?: number | undefined
  /** Reservations held at once for peers connected from one IP address (default 8). */
  readonly maxReservationsPerIp?: number | undefined
  /** Circuits relayed at once (default 64). */
  readonly maxCircuits?: number | undefined
  /** Circuits at once from or to one peer (default 16). */
  readonly maxCircuitsPerPeer?: number | undefined
  /** Each circuit's limits; `durationMs`/`data` 0 is unlimited (default 2 min and 128 KiB per direction). */
  readonly limit?: Circuit.CircuitLimits | undefined
  /** Deadline for reading a hop message and for the stop handshake (default 30 s). */
  readonly streamTimeout?: Duration.Input | undefined
  /** How often expired reservations are swept (default 1 min). */
  readonly sweepInterval?: Duration.Input | undefined
}

export const defaults = {
  reservationTtl: Duration.hours(1),
  maxReservations: 128,
  maxReservationsPerIp: 8,
  maxCircuits: 64,
  maxCircuitsPerPeer: 16,
  limit: { durationMs: 2 * 60_000, data: 1n << 17n },
  streamTimeout: Duration.seconds(30),
  sweepInterval: Duration.minutes(1)
} as const

/** A reservation held by the relay. */
export interface ReservationInfo {
  readonly peer: PeerId.PeerId
  /** Clock time (ms) when it expires. */
  readonly expiresAt: number
  /** The remote IP it counts against ("" without one). */
  readonly ip: string
}

export class RelayServer extends Context.Service<RelayServer, {
  /** The reservations held now. */
  readonly reservations: () => ReadonlyArray<ReservationInfo>
  /** Circuits being relayed now. */
  readonly circuits: () => number
}>()("effect-libp2p/RelayServer") {}

const TAG = "relay-reservation"

const millis = (d: Duration.Input | undefined, fallback: Duration.Duration): number =>
  Duration.toMillis(Options.duration(d, fallback))

const count = (n: number | undefined, fallback: number): number =>
  Options.clampInt(n, fallback, 0, Number.MAX_SAFE_INTEGER)

const ipOf = (addr: Multiaddr.Multiaddr): string => Multiaddr.ipBytes(addr)?.join(".") ?? ""

interface Held {
  readonly peer: PeerId.PeerId
  readonly ip: string
  expiresAt: number
}

export const make = Effect.fnUntraced(function*(options: RelayServerOptions = {}) {
  const identity = yield* Identity
  const registrar = yield* Registrar
  const host = yield* Host
  const connectionManager = yield* ConnectionManager
  const addressManager = yield* Effect.serviceOption(AddressManager)
  const rec = yield* Metrics.recorder
  const ttl = millis(options.reservationTtl, defaults.reservationTtl)
  const maxReservations = count(options.maxReservations, defaults.maxReservations)
  const maxPerIp = count(options.maxReservationsPerIp, defaults.maxReservationsPerIp)
  const maxCircuits = count(options.maxCircuits, defaults.maxCircuits)
  const maxCircuitsPerPeer = count(options.maxCircuitsPerPeer, defaults.maxCircuitsPerPeer)
  const limits: Circuit.CircuitLimits = options.limit ?? defaults.limit
  const wireLimit = Circuit.toWire(limits)
  const streamTimeout = millis(options.streamTimeout, defaults.streamTimeout)
  const sweepEvery = millis(options.sweepInterval, defaults.sweepInterval)

  const held = new Map<string, Held>()
  const perIp = new Map<string, number>()
  const circuitsPerPeer = new Map<string, number>()
  let circuits = 0

  const gauge = () => rec.update(RelayMetrics.reservationsActive, held.size)

  const drop = (key: string) =>
    Effect.suspend(() => {
      const h = held.get(key)
      if (h === undefined) return Effect.void
      held.delete(key)
      const n = (perIp.get(h.ip) ?? 1) - 1
      if (n <= 0) perIp.delete(h.ip)
      else perIp.set(h.ip, n)
      gauge()
      return Effect.asVoid(connectionManager.unprotect(h.peer, TAG))
    })

  const sweep = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const [key, h] of Array.from(held)) {
      if (h.expiresAt <= now || !hasDirect(h.peer)) yield* drop(key)
    }
  })

  const hasDirect = (peer: PeerId.PeerId) => direct(peer) !== undefined
  const direct = (peer: PeerId.PeerId): Connection.Connection | undefined =>
    host.connections(peer).find((c) => !Circuit.isRelayed(c.remoteAddr))

  /**
   * Answer a status other than OK and end the exchange: the refusal is the
   * protocol's answer, not a failure of the handler (a failing handler has
   * its stream reset, which can overtake the answer). Logged at debug level.
   */
  const refuse = (
    stream: Duplex.Duplex,
    kind: "reservation" | "connect" | "hop",
    status: Messages.StatusName,
    why: string
  ) =>
    Effect.gen(function*() {
      rec.update(RelayMetrics.refused.with(kind, status), 1)
      yield* Effect.ignore(
        Circuit.writeMessage(stream, Messages.HopMessage, {
          type: Messages.HopType.STATUS,
          status: Messages.Status[status]
        })
      )
      yield* Circuit.finish(stream, streamTimeout)
      yield* Effect.logDebug(`relay: ${kind} refused (${status}): ${why}`)
    })

  /**
   * The addresses a reservation names: ours, with /p2p/<relay>, none relayed and none unspecified
   * (a relay listening on 0.0.0.0 names no address rather than /ip4/0.0.0.0; the client then
   * builds the circuit address from its connection to us).
   */
  const relayAddrs = Effect.gen(function*() {
    const advertised = addressManager._tag === "Some" ? yield* addressManager.value.addrs : []
    const addrs = advertised.length > 0 ? advertised.map((a) => Circuit.withPeer(a, identity.peerId)) : host.addrs()
    return addrs.filter((a) => !Circuit.isRelayed(a) && !Multiaddr.isUnspecified(a)).map(Multiaddr.toBytes)
  })

  const reserve = (stream: Duplex.Duplex, conn: Connection.Connection) =>
    Effect.gen(function*() {
      if (Circuit.isRelayed(conn.remoteAddr)) {
        return yield* refuse(stream, "reservation", "PERMISSION_DENIED", "over a relayed connection")
      }
      const key = PeerId.toString(conn.remotePeer)
      const ip = ipOf(conn.remoteAddr)
      const now = yield* Clock.currentTimeMillis
      const existing = held.get(key)
      if (existing === undefined) {
        if (held.size >= maxReservations) {
          return yield* refuse(stream, "reservation", "RESERVATION_REFUSED", `${held.size} reservations held`)
        }
        if ((perIp.get(ip) ?? 0) >= maxPerIp) {
          return yield* refuse(stream, "reservation", "RESERVATION_REFUSED", `too many reservations from ${ip}`)
        }
      }
      const expiresAt = now + ttl
      const expire = BigInt(Math.floor(expiresAt / 1000))
      const voucher = Voucher.seal(identity.privateKey, {
        relay: identity.peerId,
        peer: conn.remotePeer,
        expiration: expire
      })
      if (Result.isFailure(voucher)) {
        return yield* refuse(stream, "reservation", "RESERVATION_REFUSED", voucher.failure.message)
      }
      if (existing === undefined) {
        held.set(key, { peer: conn.remotePeer, ip, expiresAt })
        perIp.set(ip, (perIp.get(ip) ?? 0) + 1)
        yield* connectionManager.protect(conn.remotePeer, TAG)
        gauge()
      } else {
        existing.expiresAt = expiresAt
      }
      yield* Circuit.writeMessage(stream, Messages.HopMessage, {
        type: Messages.HopType.STATUS,
        status: Messages.Status.OK,
        reservation: { expire, addrs: yield* relayAddrs, voucher: voucher.success },
        ...(wireLimit !== undefined ? { limit: wireLimit } : {})
      })
      yield* Circuit.finish(stream, streamTimeout)
    })

  /** Hold a circuit slot for `src` → `dst` until the current scope closes. */
  const holdCircuit = (src: string, dst: string) =>
    Effect.acquireRelease(
      Effect.sync(() => {
        circuits++
        for (const k of [src, dst]) circuitsPerPeer.set(k, (circuitsPerPeer.get(k) ?? 0) + 1)
        rec.update(RelayMetrics.circuitsActive, circuits)
      }),
      () =>
        Effect.sync(() => {
          circuits--
          for (const k of [src, dst]) {
            const n = (circuitsPerPeer.get(k) ?? 1) - 1
            if (n <= 0) circuitsPerPeer.delete(k)
            else circuitsPerPeer.set(k, n)
          }
          rec.update(RelayMetrics.circuitsActive, circuits)
        })
    )

  const connect = (
    stream: Duplex.Duplex,
    reader: Reader.Reader,
    conn: Connection.Connection,
    msg: Messages.HopMessage
  ) =>
    Effect.gen(function*() {
      if (Circuit.isRelayed(conn.remoteAddr)) {
        return yield* refuse(stream, "connect", "PERMISSION_DENIED", "over a relayed connection")
      }
      const target = Messages.peerIdOf(msg.peer)
      if (target === undefined) return yield* refuse(stream, "connect", "MALFORMED_MESSAGE", "no valid peer id")
      const dst = PeerId.toString(target)
      const src = PeerId.toString(conn.remotePeer)
      const now = yield* Clock.currentTimeMillis
      const h = held.get(dst)
      const targetConn = direct(target)
      if (h === undefined || h.expiresAt <= now || targetConn === undefined) {
        return yield* refuse(stream, "connect", "NO_RESERVATION", `no reservation for ${dst}`)
      }
      if (
        circuits >= maxCircuits || (circuitsPerPeer.get(src) ?? 0) >= maxCircuitsPerPeer ||
        (circuitsPerPeer.get(dst) ?? 0) >= maxCircuitsPerPeer
      ) {
        return yield* refuse(stream, "connect", "RESOURCE_LIMIT_EXCEEDED", `${circuits} circuits`)
      }
      yield* holdCircuit(src, dst)
      // §Stop Protocol: CONNECT from the source to the target, which answers STATUS OK
      const stopped = yield* Effect.result(
        Effect.gen(function*() {
          const stop = yield* targetConn.newStream([Messages.STOP_PROTOCOL]).pipe(
            Effect.mapError((e) => relayError("Stream", `relay: stop stream to ${dst}: ${e.message}`, e))
          )
          const stopReader = Reader.make(stop)
          yield* Circuit.writeMessage(stop, Messages.StopMessage, {
            type: Messages.StopType.CONNECT,
            peer: Messages.peerOf(conn.remotePeer),
            ...(wireLimit !== undefined ? { limit: wireLimit } : {})
          })
          const answer = yield* Circuit.readMessage(stopReader, Messages.StopMessage, streamTimeout)
          if (answer.type !== Messages.StopType.STATUS || answer.status !== Messages.Status.OK) {
            yield* stop.reset
            return yield* relayError(
              "Refused",
              `relay: the target answered ${Messages.statusName(answer.status)}`,
              undefined,
              Messages.statusName(answer.status)
            )
          }
          return Duplex.prepend(stop, stopReader.rest())
        }).pipe(
          Effect.timeoutOrElse({
            duration: streamTimeout,
            orElse: () => Effect.fail(relayError("Timeout", `relay: the stop handshake with ${dst} timed out`))
          })
        )
      )
      if (Result.isFailure(stopped)) {
        return yield* refuse(stream, "connect", "CONNECTION_FAILED", stopped.failure.message)
      }
      yield* Circuit.writeMessage(stream, Messages.HopMessage, {
        type: Messages.HopType.STATUS,
        status: Messages.Status.OK,
        ...(wireLimit !== undefined ? { limit: wireLimit } : {})
      })
      const { bytes, end } = yield* Circuit.splice(Duplex.prepend(stream, reader.rest()), stopped.success, limits)
      rec.update(RelayMetrics.bytesRelayed, bytes)
      rec.update(RelayMetrics.circuitsEnded.with(end), 1)
    })

  const serveHop = (stream: Connection.Stream, conn: Connection.Connection): Effect.Effect<void, RelayError, never> =>
    Effect.scoped(Effect.gen(function*() {
      const reader = Reader.make(stream)
      const msg = yield* Circuit.readMessage(reader, Messages.HopMessage, streamTimeout).pipe(
        Effect.tapError((e) =>
          e.reason === "Malformed" ? refuse(stream, "hop", "MALFORMED_MESSAGE", e.message) : Effect.void
        )
      )
      switch (msg.type) {
        case Messages.HopType.RESERVE:
          return yield* reserve(stream, conn)
        case Messages.HopType.CONNECT:
          return yield* connect(stream, reader, conn, msg)
        case undefined:
          return yield* refuse(stream, "hop", "MALFORMED_MESSAGE", "no message type")
        default:
          return yield* refuse(stream, "hop", "UNEXPECTED_MESSAGE", `hop message type ${msg.type}`)
      }
    }))

  yield* registrar.handle(Messages.HOP_PROTOCOL, serveHop, { maxInboundStreams: maxCircuitsPerPeer + 4 })

  // §Reservation: a reservation ends with its peer's connection, or when it expires
  const events = yield* host.subscribe
  yield* Effect.forkScoped(
    Stream.runForEach(
      events,
      (event) => event._tag === "PeerDisconnect" ? drop(PeerId.toString(event.peerId)) : Effect.void
    )
  )
  yield* Effect.forkScoped(Effect.repeat(sweep, Schedule.spaced(Duration.millis(sweepEvery))))
  yield* Effect.addFinalizer(() => Effect.forEach(Array.from(held.keys()), drop, { discard: true }))

  // status (`/api/status`): counts and limits, no peer ids beyond the reservations' holders
  const sections = yield* Effect.serviceOption(Status.StatusSections)
  if (sections._tag === "Some") {
    yield* sections.value.register(
      "relay",
      Effect.sync(() => ({
        reservations: Array.from(held.values(), (h) => ({ peerId: PeerId.toString(h.peer), expiresAt: h.expiresAt })),
        circuits,
        limits: {
          maxReservations,
          maxReservationsPerIp: maxPerIp,
          maxCircuits,
          maxCircuitsPerPeer,
          circuitSeconds: wireLimit?.duration ?? 0,
          circuitBytes: Number(wireLimit?.data ?? 0n)
        }
      }))
    )
  }

  return RelayServer.of({
    reservations: () => Array.from(held.values(), (h) => ({ peer: h.peer, expiresAt: h.expiresAt, ip: h.ip })),
    circuits: () => circuits
  })
})

/** The relay's hop service as a layer: its handler lives as long as the layer. */
export const layer = (options?: RelayServerOptions) => Layer.effect(RelayServer, make(options))
