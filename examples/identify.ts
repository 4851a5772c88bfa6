/**
 * Identify (`/ipfs/id/1.0.0`): what a node learns about a peer it connects to.
 *
 * The client dials the server; identify runs on every new connection. The
 * client prints the server's agent version, protocols, listen addresses and the
 * address the server saw it dial from (its observed address).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Result } from "effect"
import { Host, Identify, Multiaddr } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]

const program = Effect.gen(function*() {
  const server = yield* Host.Host
  yield* Effect.gen(function*() {
    const client = yield* Host.Host
    const conn = yield* client.dial(server.addrs()[0]!)
    const info = yield* (yield* Identify.Identify).identify(conn)
    yield* Console.log(`agent version: ${info.agentVersion}`)
    yield* Console.log(`protocol version: ${info.protocolVersion}`)
    yield* Console.log(`protocols: ${info.protocols.join(" ")}`)
    yield* Console.log(`listen addresses: ${info.listenAddrs.map(Multiaddr.toString).join(" ")}`)
    if (info.observedAddr !== undefined) {
      yield* Console.log(`observed address (how the server sees us): ${Multiaddr.toString(info.observedAddr)}`)
    }
    yield* Console.log(`signed peer record: ${info.signedPeerRecord === undefined ? "none" : "verified"}`)
  }).pipe(Effect.provide(Default({ agentVersion: "identify-example-client/1.0" })))
}).pipe(Effect.provide(Default({ listen, agentVersion: "identify-example-server/1.0" })))

NodeRuntime.runMain(program)
