/**
 * Ping, `/ipfs/ping/1.0.0`, per the libp2p ping spec
 * (https://github.com/libp2p/specs/blob/master/ping/ping.md): the dialer sends
 * 32 random bytes, the listener echoes them back, on the same stream as long
 * as the dialer likes. The round-trip time is measured with Effect's `Clock`.
 *
 * The listener accepts at most 2 concurrent ping streams per connection (the
 * spec lets it refuse more; js-libp2p does the same). The dialer keeps at
 * most one outbound ping stream per peer (the spec's MUST NOT): concurrent
 * pings to one peer take turns on a per-peer lane.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Schema, Semaphore } from "effect"
import * as crypto from "node:crypto"
import type * as Connection from "../../connection/Connection.ts"
import { Registrar } from "../../connection/Registrar.ts"
import * as Duplex from "../../core/Duplex.ts"
import * as Reader from "../../core/Reader.ts"
import { type DialError, type DialTarget, Host } from "../../host/Host.ts"
import * as Metrics from "../../internal/metrics.ts"
import * as PingMetrics from "./metrics.ts"

export const PROTOCOL = "/ipfs/ping/1.0.0"
export const PAYLOAD_SIZE = 32

export class PingError extends Schema.TaggedError<PingError>()("PingError", {
  reason: Schema.Literals(["Mismatch", "Closed", "Timeout", "Stream"]),
  message: Schema.String
}) {}

export interface PingOptions {
  /** Round trips on one stream (default 1). */
  readonly count?: number
  /** Deadline per round trip (default 10 s). */
  readonly timeout?: Duration.Input
}

export class Ping extends Context.Service<Ping, {
  /** RTTs in milliseconds, one per round trip, all on one stream. */
  readonly ping: (
    target: DialTarget,
    options?: PingOptions
  ) => Effect.Effect<ReadonlyArray<number>, PingError | DialError | Connection.ConnectionError>
}>()("effect-libp2p/Ping") {}

const streamError = (e: { readonly message: string }) => new PingError({ reason: "Stream", message: e.message })

/** Echo every 32-byte payload until the dialer closes its side. */
export const serve = (stream: Connection.Stream) =>
  Effect.gen(function*() {
    const reader = Reader.make(stream)
    while (true) {
      if (reader.buffered() === 0) {
        const some = yield* reader.readSome
        if (Duplex.isEOF(some)) break
        yield* stream.write(some)
        continue
      }
      yield* stream.write(reader.rest())
    }
    yield* stream.closeWrite
  })

/** Run `count` round trips on an open ping stream. */
export const roundTrips = (stream: Connection.Stream, options?: PingOptions) =>
  Effect.gen(function*() {
    const reader = Reader.make(stream)
    const rtts: Array<number> = []
    const count = options?.count ?? 1
    for (let i = 0; i < count; i++) {
      const payload = new Uint8Array(crypto.randomBytes(PAYLOAD_SIZE))
      const start = yield* Clock.currentTimeNanos
      yield* stream.write([payload])
      const echo = yield* reader.readExactly(PAYLOAD_SIZE).pipe(
        Effect.mapError(streamError),
        Effect.timeoutOrElse({
          duration: options?.timeout ?? Duration.seconds(10),
          orElse: () => Effect.fail(new PingError({ reason: "Timeout", message: "no pong in time" }))
        })
      )
      const end = yield* Clock.currentTimeNanos
      if (Buffer.compare(echo, payload) !== 0) {
        return yield* new PingError({ reason: "Mismatch", message: "the pong differs from the ping" })
      }
      rtts.push(Number(end - start) / 1e6)
    }
    yield* stream.closeWrite
    return rtts
  })

export const layer = Layer.effect(
  Ping,
  Effect.gen(function*() {
    const registrar = yield* Registrar
    const host = yield* Host
    const metrics = yield* Metrics.recorder
    yield* registrar.handle(PROTOCOL, (stream) => serve(stream), { maxInboundStreams: 2 })
    // one outbound ping stream per peer at a time; a lane lives while someone uses it
    const lanes = new Map<string, { readonly semaphore: Semaphore.Semaphore; users: number }>()
    const lane = (peer: string) =>
      Effect.acquireRelease(
        Effect.sync(() => {
          let l = lanes.get(peer)
          if (l === undefined) {
            l = { semaphore: Semaphore.makeUnsafe(1), users: 0 }
            lanes.set(peer, l)
          }
          l.users++
          return l
        }),
        (l) =>
          Effect.sync(() => {
            if (--l.users === 0) lanes.delete(peer)
          })
      )
    return Ping.of({
      ping: (target, options) =>
        Effect.scoped(
          Effect.gen(function*() {
            const connection = yield* host.dial(target)
            const { semaphore } = yield* lane(connection.remotePeer.toString())
            return yield* semaphore.withPermit(Effect.scoped(Effect.gen(function*() {
              const stream = yield* connection.newStream([PROTOCOL])
              const rtts = yield* roundTrips(stream, options).pipe(
                Effect.mapError((e) => e._tag === "PingError" ? e : streamError(e)),
                Effect.tapError(() => stream.reset)
              )
              for (const ms of rtts) metrics.update(PingMetrics.rtt, ms / 1000)
              return rtts
            })))
          })
        ).pipe(Effect.tapError(() => Effect.sync(() => metrics.update(PingMetrics.failures, 1))))
    })
  })
)
