/**
 * Circuit relay v2 between our own nodes in one process (relay/circuit-v2.md):
 * reservations with signed vouchers, relayed connections upgraded like any
 * other and marked limited, streams through them, the relay's limits
 * (reservations refused beyond them, circuits cut at their data and duration
 * limits), refresh before expiry.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Option, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Metrics from "../../../src/observability/Metrics.ts"
import * as Status from "../../../src/observability/Status.ts"
import * as Voucher from "../../../src/protocols/relay/Voucher.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import * as Prometheus from "../../support/prometheus.ts"
import { echoOver, relayNode } from "./support.ts"

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251)

/** A relay and two clients on the memory network; `a` has reserved on the relay. */
const threeNodes = (server: Parameters<typeof relayNode>[0] = {}) =>
  Effect.gen(function*() {
    const relay = yield* relayNode({ server: {}, ...server })
    const a = yield* relayNode()
    const b = yield* relayNode()
    const reservation = yield* a.client.reserve(relay.addr)
    return { relay, a, b, reservation, circuit: reservation.addrs[0]! }
  })

describe("circuit relay v2 on TCP", () => {
  it.live(
    "circuit-v2 §Reservation: a relay listening on 0.0.0.0 names no unspecified address in a reservation",
    () =>
      Effect.gen(function*() {
        const relay = yield* relayNode({ server: {}, tcp: true, listen: "/ip4/0.0.0.0/tcp/0" })
        const a = yield* relayNode({ tcp: true })
        const port = Multiaddr.toString(relay.addr).split("/")[4]!
        const reservation = yield* a.client.reserve(
          ma(`/ip4/127.0.0.1/tcp/${port}/p2p/${relay.host.peerId.toString()}`)
        )
        expect(reservation.addrs.length).toBeGreaterThan(0)
        for (const addr of reservation.addrs) expect(Multiaddr.toString(addr)).not.toContain("/ip4/0.0.0.0")
      }).pipe(Effect.provide(Memory.layerNetwork)),
    30_000
  )
})

describe("circuit relay v2 (ours ↔ ours, memory)", () => {
  it.effect("circuit-v2 §Reservation: RESERVE is answered OK with expiry, relay addrs and a voucher [relay-v2:reservation-vouchers:1]", () =>
    Effect.gen(function*() {
      const { a, b, relay, reservation } = yield* threeNodes()
      expect(PeerId.equals(reservation.relay, relay.host.peerId)).toBe(true)
      const now = BigInt(Math.floor((yield* TestClockNow) / 1000))
      expect(reservation.expire).toBe(now + 3600n)
      expect(reservation.addrs.length).toBeGreaterThan(0)
      for (const addr of reservation.addrs) {
        expect(Multiaddr.toString(addr)).toBe(
          `${Multiaddr.toString(relay.addr)}/p2p-circuit/p2p/${a.host.peerId.toString()}`
        )
      }
      expect(reservation.limits).toEqual({ durationMs: 120_000, data: 131072n })
      const voucher = Result.getOrThrow(Voucher.open(reservation.voucher!))
      expect(PeerId.equals(voucher.peer, a.host.peerId)).toBe(true)
      expect(voucher.expiration).toBe(reservation.expire)
      expect(relay.server!.reservations().map((r) => r.peer.toString())).toEqual([a.host.peerId.toString()])
      // /api/status's relay section, as JSON
      const sections = yield* Effect.provideContext(Effect.serviceOption(Status.StatusSections), relay.context)
      const status = JSON.parse(JSON.stringify(yield* Option.getOrThrow(sections).read))
      expect(status.relay.reservations.map((r: { peerId: string }) => r.peerId)).toEqual([a.host.peerId.toString()])
      expect(status.relay.limits).toMatchObject({ circuitSeconds: 120, circuitBytes: 131072, maxReservations: 128 })
      // the circuit address is advertised through the AddressManager, and identify sends it
      const advertised = (yield* a.addressManager.addrs).map(Multiaddr.toString)
      expect(advertised).toContain(`${Multiaddr.toString(relay.addr)}/p2p-circuit`)
      const seen = yield* b.identify.identify(yield* b.host.dial(a.addr))
      expect(seen.listenAddrs.map(Multiaddr.toString)).toContain(`${Multiaddr.toString(relay.addr)}/p2p-circuit`)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect(
    "circuit-v2 §Connection Initiation: B dials A's circuit address, the connection is upgraded, limited, and echoes",
    () =>
      Effect.gen(function*() {
        const { a, b, relay, circuit } = yield* threeNodes()
        const conn = yield* b.host.dial(circuit)
        expect(PeerId.equals(conn.remotePeer, a.host.peerId)).toBe(true)
        expect(MultiaddrNet.isRelayed(conn.remoteAddr)).toBe(true)
        expect(Multiaddr.toString(conn.remoteAddr)).toBe(
          `${Multiaddr.toString(relay.addr)}/p2p-circuit/p2p/${a.host.peerId.toString()}`
        )
        expect(conn.limits).toEqual({ durationMs: 120_000, data: 131072n })
        const data = bytes(10_000)
        const back = yield* echoOver(conn, data)
        assert.deepStrictEqual(back, data)
        // A sees an inbound relayed connection from B, limited too
        const inbound = a.host.connections(b.host.peerId).find((c) => MultiaddrNet.isRelayed(c.remoteAddr))!
        expect(inbound.direction).toBe("inbound")
        expect(Multiaddr.toString(inbound.remoteAddr)).toContain(`/p2p-circuit/p2p/${b.host.peerId.toString()}`)
        expect(inbound.limits?.data).toBe(131072n)
        expect(relay.server!.circuits()).toBe(1)
        const during = Prometheus.parse(Metrics.formatOf(relay.context))
        expect(Prometheus.value(during, "libp2p_relay_reservations_active")).toBe(1)
        expect(Prometheus.value(during, "libp2p_relay_circuits_active")).toBe(1)
        yield* conn.close
        // the circuit ends on the relay once both ends are gone
        yield* waitFor(() => relay.server!.circuits() === 0)
        const after = Prometheus.parse(Metrics.formatOf(relay.context))
        expect(Prometheus.value(after, "libp2p_relay_circuits_active")).toBe(0)
        expect(Prometheus.value(after, "libp2p_relay_bytes_total")).toBeGreaterThan(20_000)
        expect(
          Prometheus.value(after, "libp2p_relay_circuits_total", { end: "closed" }) +
            Prometheus.value(after, "libp2p_relay_circuits_total", { end: "reset" })
        ).toBe(1)
      }).pipe(Effect.provide(Memory.layerNetwork))
  )
})

const TestClockNow = Effect.clockWith((clock) => clock.currentTimeMillis)

/** Yield until `check` holds (bounded). */
const waitFor = (check: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 2000 && !check(); i++) yield* TestClock.adjust("1 millis")
    expect(check()).toBe(true)
  })
