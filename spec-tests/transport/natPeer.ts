/**
 * Child process of the NAT tests (`SimultaneousOpenNat.test.ts`), run in a
 * network namespace: one of our nodes (TCP with `reusePort`, noise, yamux)
 * listening on `0.0.0.0:<argv[2]>` (with argv[3] `dial-from-listen-port`:
 * every TCP dial leaves from it, `dialFromListenPort`). Prints `ready <peer
 * id>`, then follows commands on stdin, one a line:
 * - `dial <multiaddr> <peer id> <initiator|responder> <delay ms>`: after the
 *   delay, `Host.dialDirect` from the listening port with that role; prints
 *   `connected <remote addr> <local addr>` then `ping ok` once a ping went
 *   over it, or `failed <error tag> <reason>`;
 * - `conns <peer id>`: prints `conns <n> <remote addr>…` (the open ones);
 * - `connect <multiaddr with /p2p>`: an ordinary `Host.dial`; prints
 *   `dialed <remote addr> <local addr>`.
 * Every new connection is printed as `conn <direction> <remote addr>`.
 */
import { Duration, Effect, Result, Stream } from "effect"
import * as Readline from "node:readline"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { buildNode } from "../support/node.ts"

const port = Number(process.argv[2])
const dialFromListenPort = process.argv[3] === "dial-from-listen-port"
const say = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))

const program = Effect.gen(function*() {
  const listen = yield* Effect.fromResult(Multiaddr.fromString(`/ip4/0.0.0.0/tcp/${port}`))
  const node = yield* buildNode(Nodes.Default({ listen: [listen], tcp: { reusePort: true, dialFromListenPort } }))
  yield* node.host.onConnection((conn) => say(`conn ${conn.direction} ${conn.remoteAddr.toString()}`))
  yield* say(`ready ${PeerId.toString(node.identity.peerId)}`)

  const dial = (addr: string, peer: string, role: string, delay: number) =>
    Effect.gen(function*() {
      const target = yield* Effect.fromResult(Multiaddr.fromString(addr))
      const peerId = yield* Effect.fromResult(PeerId.fromString(peer))
      yield* Effect.sleep(Duration.millis(delay))
      const conn = yield* node.host.dialDirect(target, {
        peer: peerId,
        role: role === "responder" ? "responder" : "initiator",
        fromListenPort: true,
        timeout: Duration.seconds(8)
      })
      yield* say(`connected ${conn.remoteAddr.toString()} ${conn.localAddr.toString()}`)
      yield* node.ping.ping(peerId)
      yield* say("ping ok")
    }).pipe(Effect.catch((e) => say(`failed ${e._tag} ${e.message}`)))

  const lines = Readline.createInterface({ input: process.stdin })
  yield* Stream.fromAsyncIterable(lines, (e) => e).pipe(
    Stream.runForEach((line) => {
      const [cmd, ...args] = line.trim().split(/\s+/)
      if (cmd === "dial") return Effect.forkChild(dial(args[0]!, args[1]!, args[2]!, Number(args[3] ?? 0)))
      if (cmd === "connect") {
        return Effect.forkChild(
          Effect.fromResult(Multiaddr.fromString(args[0] ?? "")).pipe(
            Effect.flatMap((target) => node.host.dial(target)),
            Effect.flatMap((conn) => say(`dialed ${conn.remoteAddr.toString()} ${conn.localAddr.toString()}`)),
            Effect.catch((e) => say(`failed ${e._tag} ${e.message}`))
          )
        )
      }
      if (cmd === "conns") {
        const peer = PeerId.fromString(args[0] ?? "")
        const conns = Result.isSuccess(peer) ? node.host.connections(peer.success) : []
        return say(`conns ${conns.length} ${conns.map((c) => c.remoteAddr.toString()).join(" ")}`)
      }
      return Effect.void
    }),
    Effect.orDie
  )
})

Effect.runPromise(Effect.scoped(program)).then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`natPeer: ${String(e)}\n`)
    process.exit(2)
  }
)
