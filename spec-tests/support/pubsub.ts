/**
 * A memory-transport node with a pubsub router layer (floodsub or gossipsub)
 * on top, built in the current test scope.
 */
import { Context, Effect, Layer } from "effect"
import * as Nodes from "../../layers/Node.ts"
import type { Registrar } from "../../src/connection/Registrar.ts"
import type { Identity } from "../../src/core/Identity.ts"
import type { Host } from "../../src/host/Host.ts"
import { Pubsub } from "../../src/protocols/pubsub/Pubsub.ts"
import { MemoryNetwork } from "../../src/transport/Memory.ts"
import { ma } from "./multiaddr.ts"
import type { NodeServices } from "./node.ts"
import { servicesOf } from "./node.ts"

/** A memory node plus the `Pubsub` service that `routerLayer` provides (and whatever else it provides). */
export const pubsubNode = <ROut, E>(
  routerLayer: Layer.Layer<Pubsub | ROut, E, Host | Registrar | Identity>,
  options: Nodes.PresetOptions = {}
) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork
    const scope = yield* Effect.scope
    const nodeLayer = Nodes.Memory({ listen: [ma("/memory/0")], ...options }).pipe(
      Layer.provide(Layer.succeed(MemoryNetwork, network))
    )
    const ctx = yield* Layer.buildWithScope(routerLayer.pipe(Layer.provideMerge(nodeLayer)), scope)
    return { ...servicesOf(ctx), pubsub: Context.get(ctx, Pubsub), context: ctx }
  })

/** A TCP node (Default preset, 127.0.0.1) plus the `Pubsub` service that `routerLayer` provides. */
export const tcpPubsubNode = <ROut, E>(
  routerLayer: Layer.Layer<Pubsub | ROut, E, Host | Registrar | Identity>,
  options: Nodes.PresetOptions = {}
) =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const nodeLayer: Layer.Layer<NodeServices, unknown> = Nodes.Default({
      listen: [ma("/ip4/127.0.0.1/tcp/0")],
      ...options
    })
    const ctx = yield* Layer.buildWithScope(routerLayer.pipe(Layer.provideMerge(nodeLayer)), scope)
    return { ...servicesOf(ctx), pubsub: Context.get(ctx, Pubsub), context: ctx }
  })

/** Poll a condition every 10 ms until it holds (fails after 5 s). */
export const waitFor = (cond: () => boolean) =>
  Effect.gen(function*() {
    while (!cond()) yield* Effect.sleep("10 millis")
  }).pipe(Effect.timeout("5 seconds"))

export { dec as decode, enc as text } from "./bytes.ts"
