// A user's TypeScript program, type-checked (tsc --noEmit) against the shipped .d.ts and run on Node 24:
// two nodes in one program, one pings the other.
import { Console, Context, Effect, Layer, Result } from "effect"
import { Host, Multiaddr, Ping } from "effect-libp2p"
import { Default } from "effect-libp2p/layers"

const listen: ReadonlyArray<Multiaddr.Multiaddr> = [Result.getOrThrow(Multiaddr.fromString("/ip4/127.0.0.1/tcp/0"))]

const program = Effect.gen(function*() {
  const a = yield* Layer.build(Default({ listen }))
  const b = yield* Layer.build(Default())
  const host: Host.Host["Service"] = Context.get(a, Host.Host)
  const target = host.addrs()[0]!
  const rtts: ReadonlyArray<number> = yield* Context.get(b, Ping.Ping).ping(target, { count: 2 })
  yield* Console.log(`ts: pinged ${Multiaddr.toString(target)}: ${rtts.length} round trips`)
}).pipe(
  Effect.scoped,
  // typed errors come through the shipped types: DialError is in the error channel
  Effect.catchTag("DialError", (e: Host.DialError) => Effect.die(`dial failed: ${e.reason}: ${e.message}`))
)

// The shipped types are real (not `any`): a wrong option is a type error.
export const wrong = (ping: Ping.Ping["Service"], target: Multiaddr.Multiaddr) =>
  // @ts-expect-error count is a number
  ping.ping(target, { count: "2" })

Effect.runPromise(program).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e)
    process.exit(1)
  }
)
