/**
 * circuit-v2 §Reservation and §Connection Initiation rules on the relay's side:
 * "Implementations should not accept reservations [connection initiations]
 * over already relayed connections" (a relay reached over a relayed connection
 * answers RESERVE and CONNECT with PERMISSION_DENIED), and the relay retains a
 * reserved peer's connection until the reservation expires.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as Reader from "../../../src/core/Reader.ts"
import * as Circuit from "../../../src/protocols/relay/circuit.ts"
import * as Messages from "../../../src/protocols/relay/messages.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { relayNode } from "./support.ts"

describe("circuit relay v2: reservation rules", () => {
  it.effect(
    "circuit-v2 §Reservation: the relay retains a reserved peer's connection (protected) until the reservation expires [relay-v2:reservation:2]",
    () =>
      Effect.gen(function*() {
        const relay = yield* relayNode({ server: { reservationTtl: "2 minutes", sweepInterval: "1 minute" } })
        const a = yield* relayNode()
        yield* a.client.reserve(relay.addr)
        expect(relay.connectionManager.isProtected(a.host.peerId)).toBe(true)
        yield* TestClock.adjust("3 minutes")
        expect(relay.server!.reservations().length).toBe(0)
        // expired: the connection is subject to the connection manager's policy again
        expect(relay.connectionManager.isProtected(a.host.peerId)).toBe(false)
      }).pipe(Effect.provide(Memory.layerNetwork))
  )

  it.effect(
    "circuit-v2 §Reservation + §Connection Initiation: RESERVE and CONNECT over a relayed connection get PERMISSION_DENIED [relay-v2:reservation:3] [relay-v2:connection-initiation:1]",
    () =>
      Effect.gen(function*() {
        const relay = yield* relayNode({ server: {} })
        // a is a relay too, reachable only through `relay` for b
        const a = yield* relayNode({ server: {} })
        const b = yield* relayNode()
        const reservation = yield* a.client.reserve(relay.addr)
        const conn = yield* b.host.dial(reservation.addrs[0]!)
        expect(MultiaddrNet.isRelayed(conn.remoteAddr)).toBe(true)
        const ask = (message: Messages.HopMessage) =>
          Effect.scoped(Effect.gen(function*() {
            const stream = yield* conn.newStream([Messages.HOP_PROTOCOL])
            yield* Circuit.writeMessage(stream, Messages.HopMessage, message)
            return yield* Circuit.readMessage(Reader.make(stream), Messages.HopMessage, "10 seconds")
          }))
        const reserve = yield* ask({ type: Messages.HopType.RESERVE })
        expect([reserve.type, reserve.status]).toEqual([Messages.HopType.STATUS, Messages.Status.PERMISSION_DENIED])
        const connect = yield* ask({ type: Messages.HopType.CONNECT, peer: Messages.peerOf(relay.host.peerId) })
        expect([connect.type, connect.status]).toEqual([Messages.HopType.STATUS, Messages.Status.PERMISSION_DENIED])
        // a reservation on `a` over a direct connection is served
        const c = yield* relayNode()
        expect((yield* c.client.reserve(a.addr)).addrs.length).toBeGreaterThan(0)
      }).pipe(Effect.provide(Memory.layerNetwork))
  )
})
