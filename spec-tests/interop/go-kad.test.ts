/**
 * Kad-DHT interop with go-libp2p-kad-dht v0.43 (the DHT kubo runs; spec-tests/interop/go,
 * go/kad.go, driven with the js peer's kad commands through `JsKad`): our node (TCP + Noise +
 * Yamux + identify + Kad) in a network of GO_NODES + 1 go DHT servers (the main go peer and
 * `JsKad.start` hosts in the same go process, each dialing the 3 started before it) on
 * 127.0.0.1, both directions: §Peer routing (each finds a peer it is not connected to),
 * §Value routing (a `/pk/` record put by one is read by the other), §Content routing (a CID
 * provided by one is found by the other), §Client and server mode (our server-mode node enters go
 * routing tables, a client-mode one none).
 *
 * go's DHT runs with dht.Mode(dht.ModeServer): its default ModeAuto stays a client until AutoNAT
 * says it is publicly reachable, which never happens on loopback. The plain IpfsDHT keeps loopback
 * addresses and peers (AddressFilter unset, EmptyRTFilter, EmptyQueryFilter); only go's dual DHT
 * splits LAN and WAN.
 *
 * Skipped, with one notice from harness/goSetup.ts, when Go is not installed; mandatory in CI.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { inject } from "vitest"
import { ma } from "../support/multiaddr.ts"
import * as GoPeer from "./harness/GoPeer.ts"
import * as JsKad from "./harness/JsKad.ts"
import type * as JsPeer from "./harness/JsPeer.ts"
import * as KadScenario from "./harness/KadScenario.ts"

const build = inject("goPeer")

/** go DHT hosts besides the main go peer. */
const GO_NODES = 8

/** The go network: the main go peer (a DHT server) and `count` more go hosts, meshed. */
const goNetwork = (count = GO_NODES) =>
  Effect.gen(function*() {
    const go = yield* GoPeer.start(build!.binary, { kad: {}, commandTimeout: "60 seconds" })
    const nodes = yield* JsKad.start(go, { count, dial: [go.addr], mesh: 3 })
    return { go, nodes }
  })

/** How many go routing tables (main + started hosts) hold `peer`. */
const tablesHolding = (go: JsPeer.JsPeer, peer: string) =>
  Effect.map(
    Effect.forEach([undefined, ...Array.from({ length: GO_NODES }, (_, i) => i)], (n) => JsKad.table(go, n)),
    (tables) => tables.filter((t) => t.includes(peer)).length
  )

describe.skipIf(build == null)("Kad-DHT interop with go-libp2p-kad-dht", () => {
  it.live(
    `server mode, ${GO_NODES + 1} go nodes: peer routing, /pk/ and /ipns/ records and providers both ways`,
    () =>
      Effect.gen(function*() {
        const { go, nodes } = yield* goNetwork()
        const ours = yield* KadScenario.ourNode({ bootstrap: [ma(go.addr)] })
        const ourId = ours.host.peerId.toString()
        yield* ours.kad.refresh
        expect(ours.kad.peers().length).toBeGreaterThan(0)

        // §Peer routing, we find go: a go host we are not connected to
        yield* KadScenario.weFindFar(ours, nodes)

        // §Client and server mode: our server-mode node is in go routing tables (go adds a peer
        // once identify shows it speaks the DHT protocol)
        yield* tablesHolding(go, ourId).pipe(
          Effect.filterOrFail((n) => n > 0),
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 100 })
        )

        // §Peer routing, go finds us: from a go host started now, which never had our address
        yield* KadScenario.theyFindUs(go, nodes, ours, GO_NODES)
        // §Value routing, ours → go and go → ours
        yield* KadScenario.pkRecordsBothWays(go, ours, 3, 5)
        // IPNS records (go-libp2p-kad-dht validates /ipns/ with boxo's validator), ours → go and go → ours
        yield* KadScenario.ipnsRecordsBothWays(go, ours, 4, 2)
        // §Content routing, ours → go and go → ours
        yield* KadScenario.providersBothWays(go, nodes, ours, 6, 7)
      }),
    { timeout: 180_000 }
  )

  it.live(
    "§Client and server mode: our client-mode node asks go but enters no go routing table",
    () =>
      Effect.gen(function*() {
        const { go, nodes } = yield* goNetwork()
        const ours = yield* KadScenario.ourNode({ mode: "client", bootstrap: [ma(go.addr)] })
        yield* ours.kad.refresh
        const far = nodes[nodes.length - 1]!
        yield* ours.host.hangUp(KadScenario.idOf(far.peerId))
        const found = yield* ours.kad.findPeer(KadScenario.idOf(far.peerId))
        expect(found.peerId.toString()).toBe(far.peerId)
        expect(ours.host.connections().length).toBeGreaterThan(1)
        expect(yield* tablesHolding(go, ours.host.peerId.toString())).toBe(0)
      }),
    { timeout: 180_000 }
  )
})
