/**
 * What both ends of the relay room share: reading and writing hop and stop
 * messages on a stream (length-prefixed, at most `MAX_MESSAGE_SIZE`, every
 * failure a `RelayError`), the limits in both shapes (the wire's `Limit` and
 * the connection's `ConnectionLimits`), circuit addresses, and the relay's
 * splice of two streams with its data and duration limits
 * (circuit-v2.md §Reservation: "If more data than the limit specified in the
 * data field is transferred over the relayed connection, or the relayed
 * connection has been open for longer than duration, the relay should reset
 * the stream to the source and the stream to the destination").
 *
 * @internal
 */
import { Duration, Effect, Result, Schema } from "effect"
import * as Duplex from "../../core/Duplex.ts"
import * as LengthPrefixed from "../../core/LengthPrefixed.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as MultiaddrNet from "../../core/MultiaddrNet.ts"
import type * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"
import * as Reader from "../../core/Reader.ts"
import type * as Transport from "../../transport/Transport.ts"
import { type RelayError, relayError } from "./errors.ts"
import * as Messages from "./messages.ts"

/** Read one message with `codec`, within `timeout`. */
export const readMessage = <A>(
  reader: Reader.Reader,
  codec: Protobuf.Codec<A>,
  timeout: Duration.Input
): Effect.Effect<A, RelayError> =>
  LengthPrefixed.readOne(reader, Messages.MAX_MESSAGE_SIZE).pipe(
    Effect.mapError((e) =>
      e._tag === "ReaderError" && e.reason !== "UnexpectedEOF"
        ? relayError("Malformed", `relay: ${e.message}`, e)
        : relayError("Stream", `relay: ${e.message}`, e)
    ),
    Effect.flatMap((bytes) => {
      const decoded = codec.decode(bytes)
      return Result.isSuccess(decoded)
        ? Effect.succeed(decoded.success)
        : Effect.fail(relayError("Malformed", `relay: ${decoded.failure.message}`, decoded.failure))
    }),
    Effect.timeoutOrElse({
      duration: timeout,
      orElse: () => Effect.fail(relayError("Timeout", "relay: no message within the stream timeout"))
    })
  )

/** Write one message with `codec`. */
export const writeMessage = <A>(duplex: Duplex.Duplex, codec: Protobuf.Codec<A>, message: A) =>
  Effect.mapError(
    LengthPrefixed.write(duplex, codec.encode(message)),
    (e) => relayError("Stream", `relay: ${e.message}`, e)
  )

/**
 * End our side of a hop or stop exchange cleanly: half-close, then read the
 * remote's side to its end (at most `MAX_MESSAGE_SIZE` bytes, within
 * `timeout`), so the last answer is delivered before the stream's scope
 * closes (a stream not finished both ways is reset then, and a reset can
 * overtake the answer). Never fails.
 */
export const finish = (duplex: Duplex.Duplex, timeout: Duration.Input): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* duplex.closeWrite
    let read = 0
    while (read <= Messages.MAX_MESSAGE_SIZE) {
      const chunks = yield* duplex.read
      if (Duplex.isEOF(chunks)) return
      read += Duplex.byteLength(chunks)
    }
  }).pipe(Effect.timeoutOrElse({ duration: timeout, orElse: () => Effect.void }), Effect.ignore)

/** The limits of a circuit as the relay applies them (undefined: none). */
export interface CircuitLimits {
  readonly durationMs?: number | undefined
  readonly data?: bigint | undefined
}

/** The wire `Limit` for `limits`, or undefined when nothing is limited (the field is then omitted). */
export const toWire = (limits: CircuitLimits): Messages.Limit | undefined => {
  const duration = limits.durationMs !== undefined && limits.durationMs > 0
    ? Math.max(1, Math.ceil(limits.durationMs / 1000))
    : 0
  const data = limits.data !== undefined && limits.data > 0n ? limits.data : 0n
  if (duration === 0 && data === 0n) return undefined
  return { ...(duration > 0 ? { duration } : {}), ...(data > 0n ? { data } : {}) }
}

/** A received `Limit` as a connection's limits (0 or absent fields: unlimited); undefined without a Limit. */
export const fromWire = (limit: Messages.Limit | undefined): Transport.ConnectionLimits | undefined => {
  if (limit === undefined) return undefined
  return {
    ...(limit.duration !== undefined && limit.duration > 0 ? { durationMs: limit.duration * 1000 } : {}),
    ...(limit.data !== undefined && limit.data > 0n ? { data: limit.data } : {})
  }
}

const circuitComponent = Result.getOrThrow(Multiaddr.fromString("/p2p-circuit"))

/** `/p2p/<id>` as a multiaddr. */
export const p2p = (peer: PeerId.PeerId): Multiaddr.Multiaddr =>
  Result.getOrThrow(Multiaddr.fromString(`/p2p/${peer.toString()}`))

/** `addr` ending in `/p2p/<peer>` (appended when it names no peer). */
export const withPeer = (addr: Multiaddr.Multiaddr, peer: PeerId.PeerId): Multiaddr.Multiaddr =>
  Multiaddr.getPeerId(addr) === undefined ? Multiaddr.encapsulate(addr, p2p(peer)) : addr

/** `<relay addr>/p2p/<relay>/p2p-circuit`: a reservation's address to advertise (our `/p2p/<self>` follows). */
export const circuitAddr = (relayAddr: Multiaddr.Multiaddr, relay: PeerId.PeerId): Multiaddr.Multiaddr =>
  Multiaddr.encapsulate(withPeer(relayAddr, relay), circuitComponent)

/** `<relay addr>/p2p/<relay>/p2p-circuit/p2p/<peer>`: a relayed connection's address of `peer`. */
export const relayedAddr = (
  relayAddr: Multiaddr.Multiaddr,
  relay: PeerId.PeerId,
  peer: PeerId.PeerId
): Multiaddr.Multiaddr =>
  Multiaddr.encapsulate(circuitAddr(Multiaddr.decapsulateCode(relayAddr, Multiaddr.codes.p2p), relay), p2p(peer))

/** Goes through a relay. */
export const isRelayed = MultiaddrNet.isRelayed

/** How a splice ended. */
export type SpliceEnd = "closed" | "data-limit" | "duration-limit" | "reset"

class DataLimit extends Schema.TaggedError<DataLimit>()("DataLimit", {}) {}

/**
 * Copy `a` → `b` and `b` → `a` until both directions ended (each EOF passed
 * on as a half-close). At `limits.data` bytes in one direction the bytes up to
 * the limit are delivered and both streams are reset; at `limits.durationMs`
 * both are reset; a failure of either side resets both. Returns how it ended
 * and the bytes moved.
 */
export const splice = (
  a: Duplex.Duplex,
  b: Duplex.Duplex,
  limits: CircuitLimits
): Effect.Effect<{ readonly end: SpliceEnd; readonly bytes: number }> => {
  let bytes = 0
  const limit = limits.data !== undefined && limits.data > 0n ? Number(limits.data) : Infinity
  const pump = (from: Duplex.Duplex, to: Duplex.Duplex) =>
    Effect.gen(function*() {
      let moved = 0
      while (true) {
        const chunks = yield* from.read
        if (Duplex.isEOF(chunks)) return yield* to.closeWrite
        const n = Duplex.byteLength(chunks)
        if (moved + n > limit) {
          const rest = limit - moved
          if (rest > 0) yield* to.write([Duplex.concat(chunks).subarray(0, rest)])
          bytes += rest
          return yield* new DataLimit()
        }
        yield* to.write(chunks)
        moved += n
        bytes += n
      }
    })
  const both = Effect.all([pump(a, b), pump(b, a)], { concurrency: 2, discard: true }).pipe(
    Effect.as<SpliceEnd>("closed"),
    Effect.catchTag("DataLimit", () => Effect.succeed<SpliceEnd>("data-limit")),
    Effect.catch(() => Effect.succeed<SpliceEnd>("reset"))
  )
  const timed = limits.durationMs !== undefined && limits.durationMs > 0
    ? Effect.timeoutOrElse(both, {
      duration: Duration.millis(limits.durationMs),
      orElse: () => Effect.succeed<SpliceEnd>("duration-limit")
    })
    : both
  return Effect.flatMap(
    timed,
    (end): Effect.Effect<{ readonly end: SpliceEnd; readonly bytes: number }> =>
      end === "closed"
        ? Effect.sync(() => ({ end, bytes }))
        : Effect.andThen(Effect.andThen(a.reset, b.reset), Effect.sync(() => ({ end, bytes })))
  )
}
