/**
 * Mix test nodes on the memory transport: the Memory preset with a Mix layer
 * on top, all sharing one `MixDiscovery` registry; helpers to drive TestClock
 * until something happened and to record what each node saw.
 */
import { Context, type Duration, Effect, Fiber, Layer, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Nodes from "../../../layers/Node.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as Mix from "../../../src/protocols/mix/Mix.ts"
import * as MixDiscovery from "../../../src/protocols/mix/MixDiscovery.ts"
import { record } from "../../support/events.ts"
import { ma } from "../../support/multiaddr.ts"
import { type NodeServices, servicesOf, type TestNode } from "../../support/node.ts"
import { memoryLayer } from "../kad/support.ts"

/** `node` with a Mix layer on top, registered in `registry` once it listens; its services, `mix` and `events`. */
const withMix = <E, R>(
  registry: MixDiscovery.Registry,
  options: Mix.MixOptions,
  node: Layer.Layer<NodeServices, E, R>
) =>
  Effect.gen(function*() {
    const layer = Mix.layer(options).pipe(
      Layer.provideMerge(node),
      Layer.provide(MixDiscovery.layerRegistry(registry))
    )
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    const mix = Context.get(ctx, Mix.Mix)
    yield* registry.add(mix.info())
    const recorder = yield* record(mix.subscribe)
    return {
      ...servicesOf(ctx as Context.Context<NodeServices>),
      mix,
      events: recorder.seen as ReadonlyArray<Mix.MixEvent>,
      context: ctx as Context.Context<unknown>
    }
  })

/** A memory node with Mix (on the MemoryNetwork in context), registered in `registry` once it listens. */
export const mixNode = (registry: MixDiscovery.Registry, options: Mix.MixOptions = {}, seed?: number) =>
  Effect.flatMap(memoryLayer(seed), (node) => withMix(registry, options, node))

/** A TCP node on 127.0.0.1 (Default preset) with Mix, registered in `registry`. */
export const tcpMixNode = (registry: MixDiscovery.Registry, options: Mix.MixOptions = {}) =>
  withMix(registry, options, Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] }))

export type MixNode = Effect.Success<ReturnType<typeof mixNode>>

/** Step TestClock by `step` up to `max` times until `done()` holds (virtual time only). */
export const advanceUntil = (done: () => boolean, step: Duration.Input = "50 millis", max = 2000) =>
  Effect.gen(function*() {
    for (let i = 0; i < max && !done(); i++) {
      yield* TestClock.adjust(step)
      for (let j = 0; j < 5; j++) yield* Effect.yieldNow
    }
    return done()
  })

/** Run `effect` on a fiber while TestClock advances; its result (or failure). */
export const withClock = <A, E>(effect: Effect.Effect<A, E>, step: Duration.Input = "50 millis", max = 2000) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkChild(Effect.result(effect))
    yield* advanceUntil(() => fiber.pollUnsafe() !== undefined, step, max)
    return yield* Fiber.join(fiber)
  })

export const isOk = <A, E>(r: Result.Result<A, E>): r is Result.Success<A, E> => Result.isSuccess(r)

/** Open a `/mix/1.0.0` stream from `from` to `to`, write `frames` length-prefixed, close, wait for the end. */
export const sendRaw = (from: TestNode, to: TestNode, frames: ReadonlyArray<Uint8Array>, raw = false) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* from.host.newStream(to.addr, [Mix.PROTOCOL])
    yield* raw ? stream.write([...frames]) : LengthPrefixed.write(stream, ...frames)
    yield* stream.closeWrite
    while (true) {
      const chunks = yield* stream.read
      if (chunks.length === 0) break
    }
  })).pipe(Effect.ignore)
