/**
 * Circuit relay v2 interop with js-libp2p (`@libp2p/circuit-relay-v2`) in separate processes
 * over loopback TCP (relay/circuit-v2.md; ARCHITECTURE.md §6), both roles:
 * - a js relay with two of our clients: ours reserves on js (js's voucher verifies), the other
 *   dials it through js and echoes over the relayed connection;
 * - our relay with js clients: js reserves on us (its `/p2p-circuit` address appears), then
 *   ours and another js dial it through us and echo; js dials ours through us and through js.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../src/core/MultiaddrNet.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { relayNode } from "../protocols/relay/support.ts"
import { ma } from "../support/multiaddr.ts"
import * as JsPeer from "./harness/JsPeer.ts"
import { ourClientsThrough, oursDialsThrough } from "./harness/RelayScenario.ts"

/** js's circuit address once it has reserved (from its `addrs`), polled every 100 ms for at most 20 s. */
const circuitAddrOf = (js: JsPeer.JsPeer) =>
  Effect.gen(function*() {
    while (true) {
      const r = yield* js.command("addrs")
      const found = (r["addrs"] as ReadonlyArray<string>).find((a) => a.includes("/p2p-circuit/"))
      if (found !== undefined) return found
      yield* Effect.sleep("100 millis")
    }
  }).pipe(Effect.timeout("20 seconds"))

describe("circuit relay v2 ↔ js-libp2p", () => {
  it.live(
    "circuit-v2 §Reservation + §Connection Initiation: js relay, our two clients reserve, dial and echo",
    () =>
      Effect.gen(function*() {
        const relay = yield* JsPeer.start({ relay: { server: true } })
        // js's defaults are 2 minutes and 128 KiB, but js writes the duration in milliseconds
        // (120000) where the spec says seconds (§Reservation `Limit.duration`): we read 120000 s
        const { a } = yield* ourClientsThrough(relay, { durationMs: 120_000_000, data: 131072n })
        const held = yield* relay.command("relayReservations")
        expect(held["reservations"]).toEqual([a.host.peerId.toString()])
      }).pipe(Effect.provide(Memory.layerNetwork)),
    90_000
  )

  it.live(
    "circuit-v2 §Reservation: js reserves on our relay; ours and js dial it through us and echo",
    () =>
      Effect.gen(function*() {
        const relay = yield* relayNode({ tcp: true, server: {} })
        const relayAddr = relay.addr.toString()
        const target = yield* JsPeer.start({
          relay: { transport: true },
          listen: ["/ip4/127.0.0.1/tcp/0", `${relayAddr}/p2p-circuit`]
        })
        const circuit = yield* circuitAddrOf(target)
        expect(circuit).toBe(`${relayAddr}/p2p-circuit/p2p/${target.peerId}`)
        expect(relay.server!.reservations().map((r) => r.peer.toString())).toEqual([target.peerId])
        // ours → js (not lazy: js fails a stream whose header, data and FIN arrive before its negotiation ends)
        yield* oursDialsThrough(relay, target.peerId)
        // js → js through our relay
        const other = yield* JsPeer.start({ relay: { transport: true } })
        expect((yield* other.echo({ addr: circuit }, { bytes: 4096 })).bytes).toBe(4096)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    90_000
  )

  it.live("circuit-v2 §Stop Protocol: js dials ours through our relay and echoes", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ tcp: true, server: {} })
      const a = yield* relayNode({ tcp: true })
      const { addrs } = yield* a.client.reserve(relay.addr)
      const js = yield* JsPeer.start({ relay: { transport: true } })
      const echoed = yield* js.echo({ addr: Multiaddr.toString(addrs[0]!) }, { bytes: 8192, streams: 2 })
      expect(echoed.bytes).toBe(16384)
      const inbound = a.host.connections().find((c) => c.remotePeer.toString() === js.peerId)!
      expect(MultiaddrNet.isRelayed(inbound.remoteAddr)).toBe(true)
      expect(inbound.direction).toBe("inbound")
    }).pipe(Effect.provide(Memory.layerNetwork)), 90_000)

  it.live("circuit-v2 §Connection Initiation: js dials ours through a js relay", () =>
    Effect.gen(function*() {
      const relay = yield* JsPeer.start({ relay: { server: true } })
      const a = yield* relayNode({ tcp: true })
      const { addrs } = yield* a.client.reserve(ma(relay.addr))
      const js = yield* JsPeer.start({ relay: { transport: true } })
      const circuit = addrs.find((x) => x.toString().startsWith(relay.addr))!
      expect((yield* js.echo({ addr: circuit.toString() }, { bytes: 4096 })).bytes).toBe(4096)
    }).pipe(Effect.provide(Memory.layerNetwork)), 90_000)
})
