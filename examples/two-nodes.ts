/**
 * Two nodes in one program.
 *
 * Each preset (`Default()`, `Memory()`) is a node of its own, also when one is
 * provided inside the other: here the outer node listens and the inner one,
 * with its own key and services, dials and pings it. Then the second way: build
 * each node's layer in the current scope with `Layer.build` and take its
 * services from the context.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Context, Effect, Layer, Result } from "effect"
import { Host, Multiaddr, PeerId, Ping } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]

// 1. Nested: the inner Effect.provide builds a second node.
const nested = Effect.gen(function*() {
  const server = yield* Host.Host
  yield* Console.log(`server ${PeerId.toString(server.peerId)} listening on ${Multiaddr.toString(server.addrs()[0]!)}`)
  yield* Effect.gen(function*() {
    const client = yield* Host.Host
    yield* Console.log(`client ${PeerId.toString(client.peerId)} (a different node)`)
    const rtts = yield* (yield* Ping.Ping).ping(server.addrs()[0]!, { count: 1 })
    yield* Console.log(`client pinged server: ${rtts[0]!.toFixed(2)} ms`)
  }).pipe(Effect.provide(Default()))
}).pipe(Effect.provide(Default({ listen })))

// 2. Side by side: both nodes built in one scope, their services taken from each context.
const sideBySide = Effect.gen(function*() {
  const a = yield* Layer.build(Default({ listen }))
  const b = yield* Layer.build(Default({ listen }))
  const hostA = Context.get(a, Host.Host)
  const hostB = Context.get(b, Host.Host)
  const rtts = yield* Context.get(b, Ping.Ping).ping(hostA.addrs()[0]!, { count: 1 })
  yield* Console.log(`b pinged a: ${rtts[0]!.toFixed(2)} ms`)
  yield* Console.log(`a has ${hostA.connections().length} connection, b has ${hostB.connections().length}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(Effect.andThen(nested, sideBySide))
