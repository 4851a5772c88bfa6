/**
 * Relay test nodes: the Memory or Default preset (its relay client is always
 * on) with a `RelayServer` on top for relays, and an echo protocol to carry
 * bytes over relayed connections.
 */
import { Context, Effect, Layer } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import type * as Connection from "../../../src/connection/Connection.ts"
import { Registrar } from "../../../src/connection/Registrar.ts"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as RelayClient from "../../../src/protocols/relay/RelayClient.ts"
import * as RelayServer from "../../../src/protocols/relay/RelayServer.ts"
import { MemoryNetwork } from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../../support/node.ts"

export const ECHO = "/echo/1.0.0"

/** Echo every byte back until the remote half-closes. */
export const echo = (stream: Duplex.Duplex) =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* stream.read
      if (Duplex.isEOF(chunks)) return yield* stream.closeWrite
      yield* stream.write(chunks)
    }
  })

export interface RelayTestOptions {
  /** Serve as a relay with these options. */
  readonly server?: RelayServer.RelayServerOptions
  readonly client?: RelayClient.RelayClientOptions
  /** Run on TCP (127.0.0.1) instead of the memory network. */
  readonly tcp?: boolean
  /** With `tcp`: listen here instead of /ip4/127.0.0.1/tcp/0. */
  readonly listen?: string
}

const buildIn = <A, E>(layer: Layer.Layer<A, E>) =>
  Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))

const build = <E>(node: Layer.Layer<NodeServices | RelayClient.RelayClient, E>, options: RelayTestOptions) =>
  Effect.gen(function*() {
    let ctx: Context.Context<NodeServices | RelayClient.RelayClient>
    let server: RelayServer.RelayServer["Service"] | undefined
    if (options.server !== undefined) {
      const full = yield* buildIn(Layer.provideMerge(RelayServer.layer(options.server), node))
      server = Context.get(full, RelayServer.RelayServer)
      ctx = full
    } else {
      ctx = yield* buildIn(node)
    }
    yield* Context.get(ctx, Registrar).handle(ECHO, (stream) => echo(stream))
    return { ...servicesOf(ctx), client: Context.get(ctx, RelayClient.RelayClient), server, context: ctx }
  })

/** A node with the relay client (and a relay server when `server` is given), on memory or TCP. */
export const relayNode = (options: RelayTestOptions = {}) =>
  options.tcp === true
    ? build(
      Nodes.Default({ listen: [ma(options.listen ?? "/ip4/127.0.0.1/tcp/0")], relay: options.client ?? {} }),
      options
    )
    : Effect.flatMap(MemoryNetwork, (network) =>
      build(
        Nodes.Memory({ listen: [ma("/memory/0")], relay: options.client ?? {} }).pipe(
          Layer.provide(Layer.succeed(MemoryNetwork, network))
        ),
        options
      ))

export type RelayNode = Effect.Success<ReturnType<typeof relayNode>>

/**
 * Write `data` on a new echo stream of `conn` and read it back. `lazy: false` waits for the
 * protocol's confirmation before writing (js-libp2p 3 fails a stream whose multistream header,
 * data and FIN all arrive before its negotiation ends: "Cannot push data onto a stream that is
 * closed", seen over relayed connections).
 */
export const echoOver = (conn: Connection.Connection, data: Uint8Array, options?: { readonly lazy?: boolean }) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* conn.newStream([ECHO], options?.lazy === false ? { lazy: false } : {})
    yield* stream.write([data])
    yield* stream.closeWrite
    return yield* Duplex.readAll(stream, data.byteLength + 1)
  }))
