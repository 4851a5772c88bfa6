/**
 * circuit-v2.md §Reservation and §Connection Initiation limits, between our
 * own nodes: reservations beyond the relay's limits are refused with
 * RESERVATION_REFUSED, a circuit is cut at its data limit and at its duration
 * limit (TestClock), circuits beyond the relay's limit get
 * RESOURCE_LIMIT_EXCEEDED, and a kept reservation is refreshed before it expires.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Metrics from "../../../src/observability/Metrics.ts"
import * as RelayClient from "../../../src/protocols/relay/RelayClient.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { expectResourcesBack, settledResources } from "../../support/attacker.ts"
import { chain } from "../../support/errors.ts"
import * as Prometheus from "../../support/prometheus.ts"
import { echoOver, relayNode } from "./support.ts"

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251)

const refusal = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.map(Effect.flip(effect), (e) => ({ chain: chain(e), error: e }))

describe("circuit relay v2 limits", () => {
  it.effect("circuit-v2 §Reservation: beyond maxReservations the relay answers RESERVATION_REFUSED", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: { maxReservations: 1 } })
      const a = yield* relayNode()
      const b = yield* relayNode()
      yield* a.client.reserve(relay.addr)
      // a refresh by the same peer is not a new reservation
      yield* a.client.reserve(relay.addr)
      const { error } = yield* refusal(b.client.reserve(relay.addr))
      expect(error._tag).toBe("RelayError")
      expect(error.reason).toBe("Refused")
      expect(error.status).toBe("RESERVATION_REFUSED")
      expect(relay.server!.reservations().length).toBe(1)
      const metrics = Prometheus.parse(Metrics.formatOf(relay.context))
      expect(
        Prometheus.value(metrics, "libp2p_relay_refused_total", { kind: "reservation", reason: "RESERVATION_REFUSED" })
      )
        .toBe(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation: the reservation ends when the peer disconnects", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: {} })
      const a = yield* relayNode()
      yield* a.client.reserve(relay.addr)
      expect(relay.server!.reservations().length).toBe(1)
      yield* a.host.hangUp(relay.host.peerId)
      for (let i = 0; i < 200 && relay.server!.reservations().length > 0; i++) yield* Effect.yieldNow
      expect(relay.server!.reservations().length).toBe(0)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation: an expired reservation is swept and CONNECT answers NO_RESERVATION", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: { reservationTtl: "2 minutes", sweepInterval: "1 minute" } })
      const a = yield* relayNode()
      const b = yield* relayNode()
      const { addrs } = yield* a.client.reserve(relay.addr)
      yield* TestClock.adjust("3 minutes")
      expect(relay.server!.reservations().length).toBe(0)
      const { chain: c } = yield* refusal(b.host.dial(addrs[0]!))
      expect(c).toContain("RelayError")
      const { error } = yield* refusal(b.host.dial(addrs[0]!, { force: true }))
      expect(JSON.stringify(error)).toContain("NO_RESERVATION")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation (data): the relay resets a circuit once its data limit is reached", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: { limit: { data: 64n * 1024n } } })
      const a = yield* relayNode()
      const b = yield* relayNode()
      const { addrs } = yield* a.client.reserve(relay.addr)
      const conn = yield* b.host.dial(addrs[0]!)
      expect(conn.limits).toEqual({ data: 65536n })
      // a small echo fits
      const small = bytes(1000)
      assert.deepStrictEqual(yield* echoOver(conn, small), small)
      // 200 KiB does not: the circuit is cut, the echo fails, the connection ends
      const failed = yield* Effect.flip(echoOver(conn, bytes(200 * 1024)))
      expect(chain(failed).length).toBeGreaterThan(0)
      yield* conn.closed
      expect(relay.server!.circuits()).toBe(0)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation (duration): the relay resets a circuit at its duration limit", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: { limit: { durationMs: 10_000 } } })
      const a = yield* relayNode()
      const b = yield* relayNode()
      const { addrs } = yield* a.client.reserve(relay.addr)
      const conn = yield* b.host.dial(addrs[0]!)
      expect(conn.limits).toEqual({ durationMs: 10_000 })
      const small = bytes(100)
      assert.deepStrictEqual(yield* echoOver(conn, small), small)
      yield* TestClock.adjust("5 seconds")
      expect(conn.isClosed()).toBe(false)
      yield* TestClock.adjust("6 seconds")
      yield* conn.closed
      expect(relay.server!.circuits()).toBe(0)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Connection Initiation: beyond maxCircuitsPerPeer the relay answers RESOURCE_LIMIT_EXCEEDED", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: { maxCircuitsPerPeer: 1 } })
      const a = yield* relayNode()
      const b = yield* relayNode()
      const c = yield* relayNode()
      const { addrs } = yield* a.client.reserve(relay.addr)
      yield* b.host.dial(addrs[0]!)
      const { error } = yield* refusal(c.host.dial(addrs[0]!))
      expect(JSON.stringify(error)).toContain("RESOURCE_LIMIT_EXCEEDED")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation: a kept reservation is refreshed before it expires", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: { reservationTtl: "10 minutes" } })
      // a node that keeps a reservation on the relay
      const events: Array<RelayClient.RelayClientEvent> = []
      const keeper = yield* relayNode({ client: { relays: [relay.addr] } })
      const sub = yield* keeper.client.subscribe
      const fiber = yield* Effect.forkChild(Stream.runForEach(sub, (e) => Effect.sync(() => void events.push(e))))
      for (let i = 0; i < 500 && keeper.client.reservations().length === 0; i++) yield* Effect.yieldNow
      const first = keeper.client.reservations()[0]!
      expect(first).toBeDefined()
      // 3/4 of 10 minutes later it has reserved again, with a later expiry
      yield* TestClock.adjust("8 minutes")
      for (let i = 0; i < 500 && keeper.client.reservations()[0]!.expire === first.expire; i++) yield* Effect.yieldNow
      const second = keeper.client.reservations()[0]!
      expect(second.expire > first.expire).toBe(true)
      yield* TestClock.adjust("8 minutes")
      for (let i = 0; i < 500 && keeper.client.reservations()[0]!.expire === second.expire; i++) yield* Effect.yieldNow
      expect(keeper.client.reservations()[0]!.expire > second.expire).toBe(true)
      expect(relay.server!.reservations().length).toBe(1)
      yield* Fiber.interrupt(fiber)
      // each reservation was announced
      expect(events.filter((e) => e._tag === "Reserved").length).toBeGreaterThanOrEqual(2)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live(
    "circuit-v2 §Reservation: a flood of reservations from one IP is refused beyond maxReservationsPerIp; nothing leaks",
    () =>
      Effect.gen(function*() {
        const before = yield* settledResources
        yield* Effect.scoped(Effect.gen(function*() {
          const relay = yield* relayNode({ tcp: true, server: { maxReservationsPerIp: 2 } })
          const clients = yield* Effect.forEach([1, 2, 3, 4], () => relayNode({ tcp: true }))
          const results = yield* Effect.forEach(clients, (c) => Effect.result(c.client.reserve(relay.addr)))
          const refused = results.filter((r) => r._tag === "Failure")
          expect(results.filter((r) => r._tag === "Success").length).toBe(2)
          expect(refused.length).toBe(2)
          for (const r of refused) {
            if (r._tag === "Failure") expect(r.failure.status).toBe("RESERVATION_REFUSED")
          }
          expect(relay.server!.reservations().length).toBe(2)
        }))
        yield* expectResourcesBack(before)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})
