/**
 * Dialing a peer: ping.
 *
 * Without an argument, start a node on TCP and wait (Ctrl-C stops it). With a
 * multiaddr, start a node, dial that peer (TCP, Noise, Yamux), ping it three
 * times and print the round-trip times.
 *
 *   npm run example examples/ping.ts
 *   npm run example examples/ping.ts /ip4/127.0.0.1/tcp/40123/p2p/12D3Koo…
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Result } from "effect"
import { Host, Multiaddr, PeerId, Ping } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]

const program = Effect.gen(function*() {
  const host = yield* Host.Host
  yield* Console.log(`peer id ${PeerId.toString(host.peerId)}`)
  yield* Console.log(`listening on ${host.addrs().map(Multiaddr.toString).join(" ")}`)
  const target = process.argv[2]
  if (target === undefined) return yield* Effect.never
  const addr = yield* Effect.fromResult(Multiaddr.fromString(target))
  const rtts = yield* (yield* Ping.Ping).ping(addr, { count: 3 })
  yield* Console.log(`pinged ${target}: ${rtts.map((rtt) => `${rtt.toFixed(2)} ms`).join(", ")}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(Default({ listen }))))
