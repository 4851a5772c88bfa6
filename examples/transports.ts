/**
 * One node on several transports: TCP, WebSocket and a Unix domain socket.
 *
 * The server listens on all three; the client dials each address in turn,
 * pings over it, and hangs up, so each ping runs on a new connection over that
 * transport.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Result } from "effect"
import { Host, Multiaddr, Ping } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"
import * as os from "node:os"
import * as path from "node:path"

const socket = path.join(os.tmpdir(), `effect-libp2p-example-${process.pid}.sock`)
const listen = ["/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/tcp/0/ws", `/unix/${encodeURIComponent(socket)}`]
  .map((s) => Result.getOrThrow(Multiaddr.fromString(s)))

const program = Effect.gen(function*() {
  const server = yield* Host.Host
  for (const addr of server.addrs()) yield* Console.log(`server listening on ${Multiaddr.toString(addr)}`)
  yield* Effect.gen(function*() {
    const client = yield* Host.Host
    const ping = yield* Ping.Ping
    for (const addr of server.addrs()) {
      const conn = yield* client.dial(addr)
      const rtts = yield* ping.ping(addr, { count: 1 })
      yield* Console.log(`ping over ${Multiaddr.protoNames(conn.remoteAddr).join("/")}: ${rtts[0]!.toFixed(2)} ms`)
      yield* client.hangUp(server.peerId)
    }
  }).pipe(Effect.provide(Default()))
}).pipe(Effect.provide(Default({ listen })))

NodeRuntime.runMain(program)
