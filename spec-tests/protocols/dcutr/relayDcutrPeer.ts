/**
 * Child process of `DcutrRelayNat.test.ts`, in a network namespace: one of
 * our nodes (the Default preset: TCP with `reusePort`, noise, yamux, and the
 * circuit relay v2 client), TCP dials leaving from the listening port
 * (`dialFromListenPort`), so the relay observes our NAT's mapping of it.
 * argv: `relay <port>` serves as a circuit relay v2 hop (RelayServer);
 * `peer <port> <relay addr with /p2p>` reserves on that relay and runs DCUtR
 * with the addresses identify observed (the AddressManager's).
 *
 * Prints `ready <peer id>`, for a peer `reserved` once its reservation is
 * held, and what `peerProgram.ts` prints; follows its stdin commands.
 */
import { Context, Duration, Effect, Layer } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Dcutr from "../../../src/protocols/dcutr/Dcutr.ts"
import * as RelayClient from "../../../src/protocols/relay/RelayClient.ts"
import * as RelayServer from "../../../src/protocols/relay/RelayServer.ts"
import { servicesOf } from "../../support/node.ts"
import { main, parse, report, say, serveCommands } from "./peerProgram.ts"

const [mode, port, relayAddr] = process.argv.slice(2) as [string, string, string?]

const program = Effect.gen(function*() {
  const listen = [yield* parse(`/ip4/0.0.0.0/tcp/${port}`)]
  const relays = mode === "peer" ? [yield* parse(relayAddr!)] : []
  const node = Nodes.Default({ listen, tcp: { reusePort: true, dialFromListenPort: true }, relay: { relays } })
  const cidr = yield* Effect.orDie(Effect.fromResult(MultiaddrNet.parseCidr("203.0.113.0/24")))
  // the relay, or a peer with DCUtR: two layer graphs, one program (the context's type is each graph's)
  const context: Context.Context<never> = mode === "relay"
    ? (yield* Layer.build(Layer.provideMerge(RelayServer.layer({}), node))) as Context.Context<never>
    : (yield* Layer.build(
      Layer.provideMerge(Dcutr.layer({ publicCidrs: [cidr], dialTimeout: Duration.seconds(5) }), node)
    )) as Context.Context<never>
  const { host, identity, ping } = servicesOf(context as never)
  const peer = mode === "peer"
  yield* report(host, peer ? Context.get(context as Context.Context<Dcutr.Dcutr>, Dcutr.Dcutr) : undefined)
  yield* say(`ready ${PeerId.toString(identity.peerId)}`)
  if (peer) {
    const client = Context.get(context as Context.Context<RelayClient.RelayClient>, RelayClient.RelayClient)
    while (client.reservations().length === 0) yield* Effect.sleep(Duration.millis(100))
    yield* say("reserved")
  }
  yield* serveCommands(host, ping)
})

main("relayDcutrPeer", program)
