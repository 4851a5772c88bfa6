/**
 * CLI `node`s on the network-namespace NAT network of `support/netns.ts`
 * (an "internet" on the documentation range 203.0.113.0/24, hence
 * `--public-cidr`): what `nat.test.ts` and `perfCircuit.test.ts` share.
 */
import { Effect } from "effect"
import type * as Netns from "../support/netns.ts"
import { type Line, spawnCli } from "./support.ts"

export const INTERNET = "203.0.113.0/24"
/** What every command on the network takes: JSON lines, the internet's range counted as public. */
export const NAT_FLAGS = ["--json", "--public-cidr", INTERNET]
export const COMMON = ["--ephemeral", ...NAT_FLAGS]
export const RELAY_PORT = 9000
/** B's listening port behind NAT b. */
export const B_PORT = 4002

export const listen = (port: number) => ["--listen", `/ip4/0.0.0.0/tcp/${port}`]
export const event = (name: string, more: (l: Line) => boolean = () => true) => (l: Line) =>
  l["event"] === name && more(l)

/** A node in namespace `ns` listening on `port`; its `listening` line's peer id. */
export const start = (ns: string, port: number, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const cli = yield* spawnCli(["node", ...listen(port), ...COMMON, ...args], { netns: ns })
    const up = yield* cli.awaitLine(event("listening"), "60 seconds")
    return { cli, peerId: up["peerId"] as string }
  })

/** A public `node --relay`, and B behind its NAT holding a reservation there. */
export const relayAndB = (net: Netns.NatTopology) =>
  Effect.gen(function*() {
    const relay = yield* start(net.pub.ns, RELAY_PORT, ["--relay"])
    const relayAddr = `/ip4/${net.pub.ip}/tcp/${RELAY_PORT}/p2p/${relay.peerId}`
    const b = yield* start(net.b.host.ns, B_PORT, ["--relay-reserve", relayAddr])
    yield* b.cli.awaitLine(event("reservation"), "60 seconds")
    return { relay, relayAddr, b }
  })
