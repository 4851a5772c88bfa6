/**
 * AutoNAT v2 interop with go-libp2p v0.52's `p2p/protocol/autonatv2`
 * (autonat-v2.md), both directions, on 127.0.0.1 (go's `AllowPrivateAddrs`,
 * our `allowPrivateAddrs`). go dials back from a second host with its own
 * peer id, which the spec allows ("the server is free to use a separate
 * peerID"): our client trusts only the nonce.
 *
 * - go asks us: our server dials go back with the nonce → public; go asks about
 *   a closed port → private.
 * - we ask go: our address on the IP go observes → public; on 127.0.0.2 (our
 *   listener is on every interface) go asks for dial data first, we pay → public;
 *   a client that pays at most 1,000 bytes gets DialDataRefused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Schedule } from "effect"
import { inject } from "vitest"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as AutoNat from "../../src/protocols/autonat/AutoNat.ts"
import { closedPort } from "../protocols/autonat/support.ts"
import { ma } from "../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../support/node.ts"
import * as GoPeer from "./harness/GoPeer.ts"

const build = inject("goPeer")

const ourNode = (listen: string, options: AutoNat.AutoNatOptions) =>
  Effect.gen(function*() {
    const node = Nodes.Default({ listen: [ma(listen)] })
    const layer = AutoNat.layer({ startupDelay: "1 hour", allowPrivateAddrs: true, ...options }).pipe(
      Layer.provideMerge(node)
    )
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return { ...servicesOf(ctx as Context.Context<NodeServices>), autonat: Context.get(ctx, AutoNat.AutoNat) }
  })

const goCheck = (go: GoPeer.GoPeer, addrs: ReadonlyArray<string>) =>
  Effect.map(go.command("autonatCheck", { addrs: [...addrs] }), (r) => r["reachability"])

describe.skipIf(build == null)("AutoNAT v2 interop with go-libp2p autonatv2", () => {
  it.live(
    "go asks us: our server dials go back with its nonce (public); a closed port is private",
    () =>
      Effect.gen(function*() {
        // go throttles a server for a while after each request: one of ours per check
        const first = yield* ourNode("/ip4/127.0.0.1/tcp/0", { client: false })
        const second = yield* ourNode("/ip4/127.0.0.1/tcp/0", { client: false })
        const go = yield* GoPeer.start(build!.binary, {
          autonat: { allowPrivateAddrs: true },
          commandTimeout: "60 seconds"
        })
        const goAddr = go.addrs.find((a) => a.startsWith("/ip4/127.0.0.1/"))!.replace(/\/p2p\/.*$/, "")
        yield* go.dial(Multiaddr.toString(first.addr))
        // go adds a server once its identify of it completed (an event it handles in the background)
        const check = (addrs: ReadonlyArray<string>) =>
          goCheck(go, addrs).pipe(Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 50 }))
        expect(yield* check([goAddr])).toBe("public")
        yield* go.dial(Multiaddr.toString(second.addr))
        expect(yield* check([`/ip4/127.0.0.1/tcp/${yield* closedPort}`])).toBe("private")
      }),
    90_000
  )

  it.live(
    "we ask go: public on the observed IP, public on another IP after the dial data, refused when we will not pay",
    () =>
      Effect.gen(function*() {
        const ours = yield* ourNode("/ip4/0.0.0.0/tcp/0", { server: false })
        const go = yield* GoPeer.start(build!.binary, {
          autonat: { allowPrivateAddrs: true },
          commandTimeout: "60 seconds"
        })
        yield* ours.identify.identify(yield* ours.host.dial(ma(go.addr)))
        const goId = PeerId.fromString(go.peerId)
        if (goId._tag === "Failure") return yield* Effect.die(goId.failure)
        const port = Multiaddr.components(ours.addressManager.listenAddrs()[0]!)[1]!.value
        const same = yield* ours.autonat.check(goId.success, ma(`/ip4/127.0.0.1/tcp/${port}`))
        expect(same.outcome).toBe("public")
        const other = yield* ours.autonat.check(goId.success, ma(`/ip4/127.0.0.2/tcp/${port}`))
        expect(other.outcome).toBe("public")
        const stingy = yield* ourNode("/ip4/0.0.0.0/tcp/0", { server: false, maxDialDataBytes: 1000 })
        yield* stingy.identify.identify(yield* stingy.host.dial(ma(go.addr)))
        const port2 = Multiaddr.components(stingy.addressManager.listenAddrs()[0]!)[1]!.value
        const refused = yield* Effect.flip(stingy.autonat.check(goId.success, ma(`/ip4/127.0.0.2/tcp/${port2}`)))
        expect(refused.reason._tag).toBe("DialDataRefused")
      }),
    90_000
  )
})
