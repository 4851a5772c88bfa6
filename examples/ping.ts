/**
 * Library use: start a TCP + Noise + Yamux node, listen, ping a peer given on
 * the command line, print the round-trip times.
 *
 *   node examples/ping.ts /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { Default } from "../layers/index.ts"
import * as Multiaddr from "../src/core/Multiaddr.ts"
import { Host } from "../src/host/Host.ts"
import { Ping } from "../src/protocols/ping/Ping.ts"

const program = Effect.gen(function*() {
  const host = yield* Host
  const ping = yield* Ping
  yield* host.listen([yield* Effect.fromResult(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))])
  yield* Effect.log(`listening on ${host.addrs().map(Multiaddr.toString).join(", ")}`)
  const target = yield* Effect.fromResult(Multiaddr.fromString(process.argv[2] ?? ""))
  const rtts = yield* ping.ping(target, { count: 3 })
  yield* Effect.log(`rtts (ms): ${rtts.map((r) => r.toFixed(3)).join(", ")}`)
})

NodeRuntime.runMain(program.pipe(Effect.provide(Default())))
