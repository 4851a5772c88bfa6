/**
 * Protocol multiplexing: two protocols of your own on one node, a chat and an
 * echo, chosen per stream by multistream-select.
 *
 * A protocol is a handler registered with the Registrar under a protocol id
 * (here inside a Layer, so the registration lives as long as the node). The
 * other side opens a stream with `host.newStream(peer, [protocolId])` and both
 * speak length-prefixed messages on it (`LengthPrefixed.messages`). Failures
 * are typed: a protocol the peer does not speak is a `ConnectionError` with
 * reason "Negotiation"; a message over the reader's limit a `ReaderError`
 * "TooLarge" on the side that reads it, which resets the stream.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Result } from "effect"
import { Host, LengthPrefixed, Multiaddr, PeerId, Registrar } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const CHAT = "/example/chat/1.0.0"
const ECHO = "/example/echo/1.0.0"
const MAX_MESSAGE = 1024

const encode = (s: string) => new TextEncoder().encode(s)
const decode = (b: Uint8Array) => new TextDecoder().decode(b)

/** Chat: print every line the peer sends, answer each one; stop at the peer's EOF. */
const Chat = Layer.effectDiscard(Effect.gen(function*() {
  const registrar = yield* Registrar.Registrar
  yield* registrar.handle(CHAT, (stream, connection) =>
    Effect.gen(function*() {
      const from = PeerId.toString(connection.remotePeer).slice(-6)
      const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE })
      let line = yield* msgs.read
      while (line !== undefined) {
        yield* Console.log(`[chat] server got from …${from}: ${decode(line)}`)
        yield* msgs.write(encode(`nice to hear "${decode(line)}"`))
        line = yield* msgs.read
      }
      yield* msgs.closeWrite
    }))
}))

/** Echo: send every message back until the peer's EOF. */
const Echo = Layer.effectDiscard(Effect.gen(function*() {
  const registrar = yield* Registrar.Registrar
  yield* registrar.handle(ECHO, (stream) =>
    Effect.gen(function*() {
      const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE })
      let msg = yield* msgs.read
      while (msg !== undefined) {
        yield* msgs.write(msg)
        msg = yield* msgs.read
      }
      yield* msgs.closeWrite
    }))
}))

const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]
const server = Layer.mergeAll(Chat, Echo).pipe(Layer.provideMerge(Default({ listen })))

/** Open a stream for `protocol`, send `lines`, half-close, return what came back. */
const converse = (peer: Multiaddr.Multiaddr, protocol: string, lines: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const host = yield* Host.Host
    const stream = yield* host.newStream(peer, [protocol])
    const msgs = LengthPrefixed.messages(stream, { maxLength: MAX_MESSAGE })
    const replies: Array<string> = []
    for (const line of lines) {
      yield* msgs.write(encode(line))
      replies.push(decode(yield* msgs.readOne))
    }
    yield* msgs.closeWrite
    return replies
  }).pipe(Effect.scoped)

const client = (serverAddr: Multiaddr.Multiaddr) =>
  Effect.gen(function*() {
    for (const reply of yield* converse(serverAddr, CHAT, ["hello", "how are you?"])) {
      yield* Console.log(`[chat] client got: ${reply}`)
    }
    for (const reply of yield* converse(serverAddr, ECHO, ["ping", "pong"])) {
      yield* Console.log(`[echo] client got: ${reply}`)
    }
    const host = yield* Host.Host
    yield* Console.log(`protocols on one connection: ${host.connections().length} connection, ${CHAT} and ${ECHO}`)

    // Typed errors: a protocol the server does not speak (negotiated eagerly with lazy: false) …
    yield* host.newStream(serverAddr, ["/example/unknown/1.0.0"], { lazy: false }).pipe(
      Effect.scoped,
      Effect.andThen(Console.log("unexpected: negotiated an unknown protocol")),
      Effect.catchTag("ConnectionError", (e) => Console.log(`unknown protocol refused: ${e._tag} ${e.reason}`))
    )
    // … and a message over the echo server's limit: its reader fails (TooLarge) and resets the stream.
    yield* converse(serverAddr, ECHO, ["x".repeat(MAX_MESSAGE + 1)]).pipe(
      Effect.andThen(Console.log("unexpected: an oversized message was echoed")),
      Effect.catchTags({
        DuplexError: (e) => Console.log(`oversized message refused: ${e._tag} ${e.reason}`),
        ReaderError: (e) => Console.log(`oversized message refused: ${e._tag} ${e.reason}`)
      })
    )
  }).pipe(Effect.provide(Default()))

const program = Effect.gen(function*() {
  yield* client((yield* Host.Host).addrs()[0]!)
}).pipe(Effect.provide(server))

NodeRuntime.runMain(program)
