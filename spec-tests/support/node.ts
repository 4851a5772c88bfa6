/**
 * Start one of our nodes inside the current test scope and hand back its
 * services. `tcpNode` uses the Default preset (TCP + Noise + Yamux); `memoryNode`
 * the Memory preset on the MemoryNetwork in context.
 */
import { Context, Effect, Layer } from "effect"
import * as Nodes from "../../layers/Node.ts"
import { ConnectionManager } from "../../src/connection/ConnectionManager.ts"
import { Registrar } from "../../src/connection/Registrar.ts"
import { ResourceManager } from "../../src/connection/ResourceManager.ts"
import { Identity } from "../../src/core/Identity.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import { AddressManager } from "../../src/host/AddressManager.ts"
import { Host } from "../../src/host/Host.ts"
import { Peerstore } from "../../src/host/Peerstore.ts"
import { Identify } from "../../src/protocols/identify/Identify.ts"
import { Perf } from "../../src/protocols/perf/Perf.ts"
import { Ping } from "../../src/protocols/ping/Ping.ts"
import { MemoryNetwork } from "../../src/transport/Memory.ts"
import { ma } from "./multiaddr.ts"

/** The services every node built from `layers/Node.ts` provides. */
export type NodeServices =
  | Host
  | Ping
  | Identify
  | Perf
  | Registrar
  | Peerstore
  | Identity
  | ConnectionManager
  | ResourceManager
  | AddressManager

/** A node's services, taken from its built context with `Context.get`. */
export const servicesOf = (ctx: Context.Context<NodeServices>) => {
  const host = Context.get(ctx, Host)
  return {
    host,
    ping: Context.get(ctx, Ping),
    identify: Context.get(ctx, Identify),
    perf: Context.get(ctx, Perf),
    registrar: Context.get(ctx, Registrar),
    peerstore: Context.get(ctx, Peerstore),
    identity: Context.get(ctx, Identity),
    connectionManager: Context.get(ctx, ConnectionManager),
    resourceManager: Context.get(ctx, ResourceManager),
    addressManager: Context.get(ctx, AddressManager),
    /** The first listen address, with /p2p. */
    addr: host.addrs()[0] ?? Multiaddr.empty
  }
}

export type TestNode = ReturnType<typeof servicesOf>

/** Build a node's layer in the current scope and hand back its services. */
export const buildNode = <E, R>(layer: Layer.Layer<NodeServices, E, R>) =>
  Effect.map(Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope)), servicesOf)

/** A TCP node listening on 127.0.0.1 (port 0 unless `listen` says otherwise). */
export const tcpNode = (options: Nodes.PresetOptions = {}) =>
  buildNode(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")], ...options }))

/** A node on the MemoryNetwork in context. */
export const memoryNode = (options: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork
    return yield* buildNode(
      Nodes.Memory({ listen: [ma("/memory/0")], ...options }).pipe(Layer.provide(Layer.succeed(MemoryNetwork, network)))
    )
  })
