/**
 * Child process of `DcutrNat.test.ts`, on a host behind a NAT: one of our
 * nodes with TCP (`reusePort`), a stand-in circuit transport (below) and
 * DCUtR. argv: `<tcp port> <our public ip> <circuit listen addr | ->`.
 *
 * The stand-in circuit transport reaches the other peer through
 * `relayProxy.ts` on the public host: a dial connects to the proxy and sends
 * `D`, a listen connects once and sends `L`; the connection's remote address
 * is the `/p2p-circuit` address, so DCUtR and the Host treat it as relayed.
 * It moves bytes as a relay would, without circuit v2's protocols. Its
 * addresses are `<proxy ip/tcp>/p2p-circuit`, without relay or target peer
 * id, which circuit relay v2's transport (`…/p2p-circuit/p2p/<id>`) does not
 * claim, so the two can sit side by side.
 *
 * Prints `ready <peer id>`, then what `peerProgram.ts` prints, and follows
 * its stdin commands.
 */
import { Context, Duration, Effect, Exit, Layer, Scope } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Yamux from "../../../src/muxer/Yamux.ts"
import * as Dcutr from "../../../src/protocols/dcutr/Dcutr.ts"
import * as Noise from "../../../src/security/Noise.ts"
import * as Tcp from "../../../src/transport/Tcp.ts"
import * as Transport from "../../../src/transport/Transport.ts"
import { servicesOf } from "../../support/node.ts"
import { main, parse, report, say, serveCommands } from "./peerProgram.ts"

const [port, publicIp, circuitListen] = process.argv.slice(2) as [string, string, string]

/** The relay's own address: what leads the `/p2p-circuit` address (its TCP thin waist). */
const relayOf = (addr: Multiaddr.Multiaddr) => MultiaddrNet.splitThinWaist(addr)?.thinWaist ?? addr

const ioError = (addr: Multiaddr.Multiaddr) => (e: { readonly message: string }) =>
  new Transport.TransportError({ reason: "Io", address: addr.toString(), message: e.message })

const greet = (raw: Transport.RawConnection, byte: number, addr: Multiaddr.Multiaddr) =>
  Effect.as(Effect.mapError(raw.duplex.write([new Uint8Array([byte])]), ioError(addr)), {
    ...raw,
    remoteAddr: addr
  })

const circuit: Transport.Transport = {
  name: "circuit-stand-in",
  canDial: MultiaddrNet.isRelayed,
  canListen: MultiaddrNet.isRelayed,
  dial: (addr) => Effect.flatMap(Tcp.transport.dial(relayOf(addr)), (raw) => greet(raw, 0x44, addr)),
  listen: (addr, handler) =>
    Effect.gen(function*() {
      const listenScope = yield* Effect.scope
      const scope = yield* Scope.fork(listenScope)
      const raw = yield* Tcp.transport.dial(relayOf(addr)).pipe(
        Effect.flatMap((r) => greet(r, 0x4c, addr)),
        Scope.provide(scope)
      )
      yield* Effect.forkIn(
        handler(raw, scope).pipe(
          Scope.provide(scope),
          Effect.flatMap((r) => (r === Transport.KeepOpen ? Effect.void : Scope.close(scope, Exit.void)))
        ),
        listenScope
      )
      return { addrs: [addr] }
    })
}

const program = Effect.gen(function*() {
  const noise = yield* Noise.make()
  const cidr = yield* Effect.orDie(Effect.fromResult(MultiaddrNet.parseCidr("203.0.113.0/24")))
  const ours = yield* parse(`/ip4/${publicIp}/tcp/${port}`)
  const listen = [yield* parse(`/ip4/0.0.0.0/tcp/${port}`)]
  if (circuitListen !== "-") listen.push(yield* parse(circuitListen))
  const node = Nodes.layer({
    transports: [Tcp.make({ reusePort: true }), circuit],
    security: [noise],
    muxers: [Yamux.yamux],
    listen,
    upgradeTimeout: Duration.seconds(60)
  })
  const full = Dcutr.layer({
    publicCidrs: [cidr],
    addresses: Effect.succeed([ours]),
    dialTimeout: Duration.seconds(5)
  }).pipe(Layer.provideMerge(node))
  const context = yield* Layer.build(full)
  const { host, identity, ping } = servicesOf(context)
  const dcutr = Context.get(context, Dcutr.Dcutr)
  yield* report(host, dcutr)
  yield* say(`ready ${PeerId.toString(identity.peerId)}`)
  yield* serveCommands(host, ping)
})

main("dcutrPeer", program)
