/**
 * What the DCUtR child programs (`dcutrPeer.ts`, `relayDcutrPeer.ts`) share:
 * printing the node's connections and DCUtR's outcomes, and the stdin
 * commands the NAT tests drive them with —
 * `dial <addr>` (prints `dialed <remote addr>`), `ping <peer id> <n>`
 * (prints `pinged <n> <remote addr of the connection used>`), `conns <peer
 * id>` (prints `conns <n> <remote addr>…`), `bytes <peer id>` (prints `bytes
 * <n>`: read + written so far on our connections to that peer that count
 * bytes, e.g. the TCP connection to a relay).
 */
import { Effect, Result, type Scope, Stream } from "effect"
import * as Readline from "node:readline"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import type { Host } from "../../../src/host/Host.ts"
import type * as Dcutr from "../../../src/protocols/dcutr/Dcutr.ts"
import type { Ping } from "../../../src/protocols/ping/Ping.ts"

export const say = (line: string) => Effect.sync(() => void process.stdout.write(`${line}\n`))

export const parse = (s: string) => Effect.orDie(Effect.fromResult(Multiaddr.fromString(s)))

/** Print every new connection (`conn <direction> <remote addr>`) and every DCUtR outcome. */
export const report = (
  host: Host["Service"],
  dcutr: Dcutr.Dcutr["Service"] | undefined
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    yield* host.onConnection((conn) => say(`conn ${conn.direction} ${conn.remoteAddr.toString()}`))
    if (dcutr === undefined) return
    const outcomes = yield* dcutr.subscribe
    yield* Effect.forkScoped(Stream.runForEach(outcomes, (e) =>
      e._tag === "Upgraded"
        ? say(`upgraded ${e.side} ${e.attempt} ${e.direct.direction} ${e.direct.remoteAddr.toString()}`)
        : say(`dcutr-failed ${e.side} ${e.error.reason} ${e.error.message}`)))
  })

const command = (host: Host["Service"], ping: Ping["Service"], line: string) =>
  Effect.gen(function*() {
    const [cmd, ...args] = line.trim().split(/\s+/)
    if (cmd === "dial") {
      const conn = yield* host.dial(yield* parse(args[0]!))
      return yield* say(`dialed ${conn.remoteAddr.toString()}`)
    }
    const peer = PeerId.fromString(args[0] ?? "")
    if (Result.isFailure(peer)) return
    const conns = host.connections(peer.success)
    if (cmd === "ping") {
      const n = Number(args[1] ?? 1)
      for (let i = 0; i < n; i++) yield* ping.ping(peer.success)
      return yield* say(`pinged ${n} ${host.connections(peer.success)[0]?.remoteAddr.toString()}`)
    }
    if (cmd === "conns") {
      return yield* say(`conns ${conns.length} ${conns.map((c) => c.remoteAddr.toString()).join(" ")}`)
    }
    if (cmd === "bytes") {
      const counted = conns.map((c) => c.bytes()).reduce((n, b) => n + (b === undefined ? 0 : b.read + b.written), 0)
      return yield* say(`bytes ${counted}`)
    }
  }).pipe(Effect.catch((e) => say(`error ${e._tag} ${e.message}`)))

/** Follow the commands on stdin until it ends, each in a fiber of its own. */
export const serveCommands = (host: Host["Service"], ping: Ping["Service"]) =>
  Stream.fromAsyncIterable(Readline.createInterface({ input: process.stdin }), (e) => e).pipe(
    Stream.runForEach((line) => Effect.forkChild(command(host, ping, line))),
    Effect.orDie
  )

/** Run a child program: exit 0 when it ends, 2 with the error on stderr when it fails. */
export const main = (name: string, program: Effect.Effect<void, unknown, Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(program)).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`${name}: ${String(e)}\n`)
      process.exit(2)
    }
  )
