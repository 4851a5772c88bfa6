// A user's plain JavaScript (ESM) program, run on Node 24 from the installed tarball: two nodes, one pings the other.
import { Console, Context, Effect, Layer, Result } from "effect"
import { Host, Multiaddr, Ping } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const listen = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]

const program = Effect.gen(function*() {
  const a = yield* Layer.build(Default({ listen }))
  const b = yield* Layer.build(Default())
  const target = Context.get(a, Host.Host).addrs()[0]
  const rtts = yield* Context.get(b, Ping.Ping).ping(target, { count: 2 })
  yield* Console.log(`mjs: pinged ${Multiaddr.toString(target)}: ${rtts.length} round trips`)
}).pipe(Effect.scoped)

Effect.runPromise(program).then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  }
)
