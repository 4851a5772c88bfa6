/**
 * Registrar: the table of protocol handlers for inbound streams
 * (libp2p connections spec §Protocol Negotiation: the listener answers the
 * protocols it has a handler for).
 *
 * A handler is registered inside a Scope and removed when that scope closes,
 * so a protocol's Layer owns its registration. Handlers run in supervised
 * fibers (one per stream); a handler that fails has its stream reset and never
 * takes the connection down.
 *
 * `changes` streams the protocol list whenever it changes (identify push
 * listens to it); only the latest lists matter, so a subscriber more than
 * {@link CHANGES_BUFFER} lists behind loses the oldest (sliding).
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, Schema, type Scope, Stream } from "effect"
import type * as Connection from "./Connection.ts"

export class RegistrarError extends Schema.TaggedError<RegistrarError>()("RegistrarError", {
  reason: Schema.Literals(["AlreadyRegistered"]),
  message: Schema.String
}) {}

/**
 * Handles one inbound stream. Failures are logged and reset the stream; they
 * are the handler's own business, hence `unknown`.
 */
export type StreamHandler = (
  stream: Connection.Stream,
  connection: Connection.Connection
) => Effect.Effect<void, unknown, Scope.Scope>

export interface HandlerOptions {
  /** Inbound streams of this protocol allowed at once per connection (default 32). */
  readonly maxInboundStreams?: number
  /** Outbound streams of this protocol allowed at once per connection (default 64). */
  readonly maxOutboundStreams?: number
}

/** Protocol lists buffered for a subscriber that lags (sliding: beyond it the oldest are dropped). */
export const CHANGES_BUFFER = 16

export interface Registration {
  readonly protocol: string
  readonly handler: StreamHandler
  readonly options: Required<HandlerOptions>
}

export class Registrar extends Context.Service<Registrar, {
  /** Register `handler` for `protocol` for the lifetime of the current scope. */
  readonly handle: (
    protocol: string,
    handler: StreamHandler,
    options?: HandlerOptions
  ) => Effect.Effect<void, RegistrarError, Scope.Scope>
  /** The protocols with a handler, in registration order. */
  readonly protocols: () => ReadonlyArray<string>
  readonly lookup: (protocol: string) => Registration | undefined
  /** The new protocol list after every change, from the moment the stream is run. */
  readonly changes: Stream.Stream<ReadonlyArray<string>>
  /** Subscribe now: the stream it returns misses no change from then on, while the current scope lasts. */
  readonly subscribeChanges: Effect.Effect<Stream.Stream<ReadonlyArray<string>>, never, Scope.Scope>
}>()("effect-libp2p/Registrar") {}

/** Builds the registrar: an empty protocol table whose handlers live as long as their registration scopes. */
export const make: Effect.Effect<Registrar["Service"]> = Effect.gen(function*() {
  const table = new Map<string, Registration>()
  const changes = yield* PubSub.sliding<ReadonlyArray<string>>(CHANGES_BUFFER)
  const protocols = () => Array.from(table.keys())
  const publish = Effect.suspend(() => PubSub.publish(changes, protocols()))
  return Registrar.of({
    handle: (protocol, handler, options) =>
      Effect.gen(function*() {
        if (table.has(protocol)) {
          return yield* new RegistrarError({
            reason: "AlreadyRegistered",
            message: `a handler for ${protocol} is already registered`
          })
        }
        const registration: Registration = {
          protocol,
          handler,
          options: {
            maxInboundStreams: options?.maxInboundStreams ?? 32,
            maxOutboundStreams: options?.maxOutboundStreams ?? 64
          }
        }
        table.set(protocol, registration)
        yield* publish
        yield* Effect.addFinalizer(() =>
          Effect.suspend(() => {
            if (table.get(protocol) === registration) table.delete(protocol)
            return publish
          })
        )
      }),
    protocols,
    lookup: (protocol) => table.get(protocol),
    changes: Stream.fromPubSub(changes),
    subscribeChanges: Effect.map(PubSub.subscribe(changes), Stream.fromSubscription)
  })
})

/** The registrar as a layer. */
export const layer: Layer.Layer<Registrar> = Layer.effect(Registrar, make)
