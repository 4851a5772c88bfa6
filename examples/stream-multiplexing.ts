/**
 * Stream multiplexing: many concurrent streams on one connection.
 *
 * The server runs an echo protocol of its own. The client opens 100 streams at
 * once to it; Yamux carries them all over one TCP connection. Each stream
 * sends one length-prefixed message and reads the echo back.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Result } from "effect"
import { Host, LengthPrefixed, Multiaddr, Registrar } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const ECHO = "/example/echo/1.0.0"
const STREAMS = 100

/** Echo one message per stream; at most STREAMS inbound echo streams at once per connection. */
const Echo = Layer.effectDiscard(Effect.gen(function*() {
  const registrar = yield* Registrar.Registrar
  yield* registrar.handle(ECHO, (stream) =>
    Effect.gen(function*() {
      const msgs = LengthPrefixed.messages(stream, { maxLength: 1024 })
      yield* msgs.write(yield* msgs.readOne)
      yield* msgs.closeWrite
    }), { maxInboundStreams: STREAMS })
}))

const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]
const server = Echo.pipe(Layer.provideMerge(Default({ listen })))

const program = Effect.gen(function*() {
  const serverAddr = (yield* Host.Host).addrs()[0]!
  yield* Effect.gen(function*() {
    const client = yield* Host.Host
    const text = new TextDecoder()
    const replies = yield* Effect.forEach(
      Array.from({ length: STREAMS }, (_, i) => i),
      (i) =>
        Effect.gen(function*() {
          const stream = yield* client.newStream(serverAddr, [ECHO])
          const msgs = LengthPrefixed.messages(stream, { maxLength: 1024 })
          yield* msgs.write(new TextEncoder().encode(`message ${i}`))
          return text.decode(yield* msgs.readOne)
        }).pipe(Effect.scoped),
      { concurrency: "unbounded" }
    )
    const conns = client.connections()
    yield* Console.log(`${STREAMS} streams echoed, e.g. "${replies[0]}" … "${replies[STREAMS - 1]}"`)
    yield* Console.log(`connections to the server: ${conns.length} (${conns[0]!.muxer})`)
    yield* Console.log(`all replies in order: ${replies.every((r, i) => r === `message ${i}`)}`)
  }).pipe(Effect.provide(Default()))
}).pipe(Effect.provide(server))

NodeRuntime.runMain(program)
