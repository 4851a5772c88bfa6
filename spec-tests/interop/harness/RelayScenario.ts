/**
 * Circuit relay v2 interop steps shared by the js and go tests (relay-js, go-relay): our two
 * clients through a foreign relay, and one of ours dialing a foreign target through our relay.
 */
import { expect } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Voucher from "../../../src/protocols/relay/Voucher.ts"
import type * as Transport from "../../../src/transport/Transport.ts"
import { echoOver, type RelayNode, relayNode } from "../../protocols/relay/support.ts"
import { ma } from "../../support/multiaddr.ts"

export const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13) % 256)

/**
 * circuit-v2 §Reservation + §Connection Initiation through a foreign relay: ours `a` reserves
 * (the voucher opens and names `a`, the limits are `limits`), ours `b` dials `a`'s circuit
 * address, the connection is relayed and limited, and 20 KB echo through it.
 */
export const ourClientsThrough = (
  relay: { readonly addr: string; readonly peerId: string },
  limits: Transport.ConnectionLimits
) =>
  Effect.gen(function*() {
    const a = yield* relayNode({ tcp: true })
    const b = yield* relayNode({ tcp: true })
    const reservation = yield* a.client.reserve(ma(relay.addr))
    expect(reservation.relay.toString()).toBe(relay.peerId)
    const voucher = Result.getOrThrow(Voucher.open(reservation.voucher!))
    expect(PeerId.equals(voucher.peer, a.host.peerId)).toBe(true)
    expect(voucher.expiration).toBe(reservation.expire)
    expect(reservation.limits).toEqual(limits)
    const circuit = reservation.addrs.find((x) => x.toString().startsWith(relay.addr))!
    expect(circuit.toString()).toBe(`${relay.addr}/p2p-circuit/p2p/${a.host.peerId.toString()}`)
    const conn = yield* b.host.dial(circuit)
    expect(MultiaddrNet.isRelayed(conn.remoteAddr)).toBe(true)
    expect(conn.limits).toEqual(limits)
    const data = bytes(20_000)
    expect(Buffer.compare(yield* echoOver(conn, data), data)).toBe(0)
    return { a, b }
  })

/** A new node of ours dials `target` through our `relay` and echoes 10 KB (`lazy: false`: see `echoOver`). */
export const oursDialsThrough = (relay: RelayNode, target: string) =>
  Effect.gen(function*() {
    const b = yield* relayNode({ tcp: true })
    const conn = yield* b.host.dial(ma(`${relay.addr.toString()}/p2p-circuit/p2p/${target}`))
    expect(conn.remotePeer.toString()).toBe(target)
    const data = bytes(10_000)
    expect(Buffer.compare(yield* echoOver(conn, data, { lazy: false }), data)).toBe(0)
  })
