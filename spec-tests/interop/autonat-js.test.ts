/**
 * AutoNAT v2 interop with js-libp2p's `@libp2p/autonat-v2` (autonat-v2.md), both
 * directions. js's server refuses private and loopback addresses and its client
 * never asks about them, so the peers meet on public-looking addresses: the js
 * peer runs in a network namespace of its own (`ela-an<pid>`, a veth pair:
 * 11.11.11.1 and 11.11.11.4 on our side, 11.11.11.2 on its side; made and removed
 * by this file, stale ones from a killed run removed first). Needs root and
 * `ip` (iproute2): skipped, saying so, without them.
 *
 * - js asks us: our server dials js back on its public address and delivers the
 *   nonce; js marks the address verified.
 * - we ask js: js dials us back (our address on the IP it observes: no dial
 *   data; our second address 11.11.11.4: js asks for dial data, we pay, then it
 *   dials), a closed port comes back E_DIAL_ERROR; the round confirms our
 *   addresses and sets the reachability.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import * as ChildProcess from "node:child_process"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as AutoNat from "../../src/protocols/autonat/AutoNat.ts"
import { closedPortOn } from "../protocols/autonat/support.ts"
import { ma } from "../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const NS = `ela-an${process.pid % 100_000}`
const HOST_IF = `ela-h${process.pid % 100_000}`
const PEER_IF = `ela-p${process.pid % 100_000}`
const OURS = "11.11.11.1"
const OURS2 = "11.11.11.4"
const THEIRS = "11.11.11.2"

const sh = (cmd: string) => ChildProcess.execSync(cmd, { stdio: ["ignore", "pipe", "pipe"] }).toString()
const quiet = (cmd: string) => {
  try {
    sh(cmd)
  } catch {
    // already gone
  }
}

/** Why the netns tests cannot run here (undefined when they can). */
const skipReason = (() => {
  if (process.platform !== "linux") return "network namespaces need Linux"
  if (process.getuid?.() !== 0) return "network namespaces need root"
  try {
    sh("ip -V")
  } catch {
    return "iproute2 (`ip`) is not installed"
  }
  return undefined
})()

const removeStale = () => {
  for (const line of sh("ip netns list").split("\n")) {
    const name = line.split(" ")[0]
    if (name !== undefined && name.startsWith("ela-an")) quiet(`ip netns del ${name}`)
  }
  for (const line of sh("ip -o link show").split("\n")) {
    const m = /^\d+: (ela-h\d+)[@:]/.exec(line)
    if (m !== null) quiet(`ip link del ${m[1]}`)
  }
}

if (skipReason === undefined) {
  beforeAll(() => {
    removeStale()
    sh(`ip netns add ${NS}`)
    sh(`ip link add ${HOST_IF} type veth peer name ${PEER_IF}`)
    sh(`ip link set ${PEER_IF} netns ${NS}`)
    sh(`ip addr add ${OURS}/24 dev ${HOST_IF}`)
    sh(`ip addr add ${OURS2}/32 dev ${HOST_IF}`)
    sh(`ip link set ${HOST_IF} up`)
    sh(`ip netns exec ${NS} ip addr add ${THEIRS}/24 dev ${PEER_IF}`)
    sh(`ip netns exec ${NS} ip link set ${PEER_IF} up`)
    sh(`ip netns exec ${NS} ip link set lo up`)
  })
  afterAll(() => {
    quiet(`ip netns del ${NS}`)
    quiet(`ip link del ${HOST_IF}`)
  })
}

/** The js peer, with @libp2p/autonat-v2, in the namespace. */
const jsPeer = (options: JsPeer.Options = {}) =>
  JsPeer.startProcess({
    command: "ip",
    args: [
      "netns",
      "exec",
      NS,
      process.execPath,
      JsPeer.SCRIPT,
      JSON.stringify(JsPeer.configOf({ listen: [`/ip4/${THEIRS}/tcp/0`], autonat: true, ...options }))
    ],
    name: "js-autonat",
    stderrEnv: "JS_PEER_STDERR"
  }, options)

/** Our node with AutoNat on `listen` (public-looking addresses: no allowPrivateAddrs). */
const ourNode = (listen: ReadonlyArray<string>, options: AutoNat.AutoNatOptions) =>
  Effect.gen(function*() {
    const node = Nodes.Default({ listen: listen.map(ma) })
    const layer = AutoNat.layer({ startupDelay: "1 hour", ...options }).pipe(Layer.provideMerge(node))
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return { ...servicesOf(ctx as Context.Context<NodeServices>), autonat: Context.get(ctx, AutoNat.AutoNat) }
  })

const portOf = (addr: Multiaddr.Multiaddr) => Multiaddr.components(addr)[1]!.value!

describe.skipIf(skipReason !== undefined)(`AutoNAT v2 interop with js-libp2p (${skipReason ?? "netns"})`, () => {
  it.live(
    "js asks us: our server dials js back with the nonce; js verifies its address (§AutoNAT V2 Protocol)",
    () =>
      Effect.gen(function*() {
        const ours = yield* ourNode([`/ip4/${OURS}/tcp/0`], { client: false })
        const js = yield* jsPeer()
        yield* js.dial(Multiaddr.toString(ours.addr))
        const verified = yield* js.command("autonatAddrs").pipe(
          Effect.map((r) => r["addrs"] as ReadonlyArray<{ addr: string; verified: boolean }>),
          Effect.flatMap((addrs) =>
            addrs.some((a) => a.addr.startsWith(`/ip4/${THEIRS}/tcp/`) && a.verified)
              ? Effect.succeed(addrs)
              : Effect.fail("not yet")
          ),
          Effect.retry(Schedule.spaced("200 millis")),
          Effect.timeout("30 seconds")
        )
        expect(verified.filter((a) => a.verified).map((a) => a.addr)).toEqual([
          expect.stringMatching(new RegExp(`^/ip4/${THEIRS.replaceAll(".", "\\.")}/tcp/\\d+`))
        ])
      }),
    90_000
  )

  it.live(
    "we ask js: dialed back with our nonce (same IP; another IP after paying dial data), a closed port is private",
    () =>
      Effect.gen(function*() {
        const ours = yield* ourNode([`/ip4/${OURS}/tcp/0`, `/ip4/${OURS2}/tcp/0`], { server: false, minConfidence: 1 })
        const js = yield* jsPeer({ autonat: true })
        const conn = yield* ours.host.dial(ma(js.addr))
        yield* ours.identify.identify(conn)
        expect(Multiaddr.toString(conn.localAddr)).toMatch(new RegExp(`^/ip4/${OURS.replaceAll(".", "\\.")}/`))
        const jsId = PeerId.fromString(js.peerId)
        if (jsId._tag === "Failure") return yield* Effect.die(jsId.failure)
        const [first, second] = ours.addressManager.listenAddrs()
        const same = yield* ours.autonat.check(jsId.success, first!)
        expect(same.outcome).toBe("public")
        // js observes us at 11.11.11.1: asking for 11.11.11.4 costs dial data (amplification prevention)
        const other = yield* ours.autonat.check(jsId.success, second!)
        expect(other.outcome).toBe("public")
        const closed = ma(`/ip4/${OURS}/tcp/${yield* closedPortOn(OURS)}`)
        expect((yield* ours.autonat.check(jsId.success, closed)).outcome).toBe("private")
        // a round: both addresses public, confirmed, the node public
        const verdicts = yield* ours.autonat.checkNow
        expect(verdicts.map((v) => [Multiaddr.toString(v.addr), v.reachability])).toEqual([
          [`/ip4/${OURS}/tcp/${portOf(first!)}`, "public"],
          [`/ip4/${OURS2}/tcp/${portOf(second!)}`, "public"]
        ])
        expect(ours.addressManager.reachability()).toBe("public")
        expect(ours.addressManager.confirmed().length).toBe(2)
        // the dial data was asked for: a client that pays at most 1,000 bytes refuses js's request
        const stingy = yield* ourNode([`/ip4/${OURS2}/tcp/0`], { server: false, maxDialDataBytes: 1000 })
        yield* stingy.identify.identify(yield* stingy.host.dial(ma(js.addr)))
        const refused = yield* Effect.flip(stingy.autonat.check(jsId.success, stingy.addressManager.listenAddrs()[0]!))
        expect(refused.reason._tag).toBe("DialDataRefused")
      }),
    90_000
  )
})
