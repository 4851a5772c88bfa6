/**
 * Circuit relay v2 against go-libp2p v0.52 (`p2p/protocol/circuitv2`; spec-tests/interop/go)
 * over loopback TCP, both roles (relay/circuit-v2.md):
 * - a go relay with our two clients: ours reserves on go (go's voucher opens and names us, go's
 *   limits: 2 min, 128 KiB), the other dials it through go and echoes;
 * - our relay with go clients: go reserves on us (go verifies our voucher), ours and go dial it
 *   through us and echo; go dials ours through us.
 * Skipped, with the go interop tests, when Go is not installed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import * as MultiaddrNet from "../../src/core/MultiaddrNet.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { relayNode } from "../protocols/relay/support.ts"
import * as GoPeer from "./harness/GoPeer.ts"
import { ourClientsThrough, oursDialsThrough } from "./harness/RelayScenario.ts"

const build = inject("goPeer")

describe.skipIf(build === null)("interop with go-libp2p v0.52: circuit relay v2", () => {
  it.live(
    "circuit-v2 §Reservation + §Connection Initiation: go relay, our two clients reserve, dial and echo",
    () =>
      Effect.gen(function*() {
        const relay = yield* GoPeer.start(build!.binary, { relay: { server: true } })
        // go's defaults (circuitv2/relay/resources.go): 2 minutes, 128 KiB, the duration in seconds; go
        // announces only public addresses, so on loopback the circuit address is built on the connection's
        const { a } = yield* ourClientsThrough(relay, { durationMs: 120_000, data: 131072n })
        const held = yield* relay.command("relayReservations")
        expect(held["reservations"]).toContain(a.host.peerId.toString())
      }).pipe(Effect.provide(Memory.layerNetwork)),
    90_000
  )

  it.live(
    "circuit-v2 §Reservation: go reserves on our relay; ours and go dial it through us and echo",
    () =>
      Effect.gen(function*() {
        const relay = yield* relayNode({ tcp: true, server: {} })
        const target = yield* GoPeer.start(build!.binary)
        const r = yield* target.command("relayReserve", { addr: relay.addr.toString() })
        expect(r["voucher"]).toBe(true) // go verified our voucher (client.Reserve fails otherwise)
        expect(r["limitDurationMs"]).toBe(120_000)
        expect(r["limitData"]).toBe(131072)
        expect(relay.server!.reservations().map((x) => x.peer.toString())).toEqual([target.peerId])
        yield* oursDialsThrough(relay, target.peerId)
        const other = yield* GoPeer.start(build!.binary)
        const circuit = `${relay.addr.toString()}/p2p-circuit/p2p/${target.peerId}`
        expect((yield* other.echo({ addr: circuit }, { bytes: 4096 })).bytes).toBe(4096)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    90_000
  )

  it.live("circuit-v2 §Stop Protocol: go dials ours through our relay and echoes", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ tcp: true, server: {} })
      const a = yield* relayNode({ tcp: true })
      const { addrs } = yield* a.client.reserve(relay.addr)
      const go = yield* GoPeer.start(build!.binary)
      const echoed = yield* go.echo({ addr: addrs[0]!.toString() }, { bytes: 8192, streams: 2 })
      expect(echoed.bytes).toBe(16384)
      const inbound = a.host.connections().find((c) => c.remotePeer.toString() === go.peerId)!
      expect(MultiaddrNet.isRelayed(inbound.remoteAddr)).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)), 90_000)
})
