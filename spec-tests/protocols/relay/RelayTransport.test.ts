/**
 * The `/p2p-circuit` transport's own contract (RelayTransport.ts; relay/circuit-v2.md
 * §Interaction): which addresses it dials and listens on, its typed failures without a bound
 * relay client and through a peer that is no relay, and circuit addresses of relayed
 * connections (`<relay addr>/p2p/<relay>/p2p-circuit/p2p/<remote>`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as RelayClient from "../../../src/protocols/relay/RelayClient.ts"
import * as RelayTransport from "../../../src/protocols/relay/RelayTransport.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { chain } from "../../support/errors.ts"
import { ma } from "../../support/multiaddr.ts"
import { PEER } from "../../support/transport.ts"
import { relayNode } from "./support.ts"

const RELAY = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"

describe("circuit transport", () => {
  it("circuit-v2 §Interaction: dials <relay>/p2p-circuit/p2p/<target>, listens on /p2p-circuit only", () => {
    const t = RelayTransport.make().transport
    expect(t.canDial(ma(`/ip4/1.2.3.4/tcp/1/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))).toBe(true)
    expect(t.canDial(ma(`/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))).toBe(true)
    expect(t.canDial(ma(`/memory/1/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))).toBe(true)
    expect(t.canDial(ma(`/ip4/1.2.3.4/tcp/1/p2p/${RELAY}/p2p-circuit`))).toBe(false)
    expect(t.canDial(ma(`/ip4/1.2.3.4/tcp/1/p2p/${RELAY}`))).toBe(false)
    expect(t.canListen(ma("/p2p-circuit"))).toBe(true)
    expect(t.canListen(ma("/ip4/1.2.3.4/tcp/1"))).toBe(false)
  })

  it.effect("without a relay client a dial fails Unsupported with a NotRunning RelayError", () =>
    Effect.gen(function*() {
      const t = RelayTransport.make().transport
      const e = yield* Effect.flip(t.dial(ma(`/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`)))
      expect(chain(e)).toEqual(["TransportError", "Unsupported", "RelayError", "NotRunning"])
    }))

  it("a circuit address splits into the relay's part, the relay and the target", () => {
    const parsed = RelayClient.parseCircuitAddr(ma(`/memory/3/p2p/${RELAY}/p2p-circuit/p2p/${PEER}`))
    expect(parsed._tag).toBe("Success")
    if (parsed._tag === "Success") {
      expect(parsed.success.relayAddr.toString()).toBe(`/memory/3/p2p/${RELAY}`)
      expect(parsed.success.relay.toString()).toBe(RELAY)
      expect(parsed.success.target.toString()).toBe(PEER)
    }
    const bad = RelayClient.parseCircuitAddr(ma(`/memory/3/p2p-circuit/p2p/${PEER}`))
    expect(bad._tag === "Failure" && bad.failure.reason).toBe("BadAddress")
  })

  it.effect("circuit-v2 §Connection Initiation: dialing through a peer that is no relay fails with a typed error", () =>
    Effect.gen(function*() {
      const notRelay = yield* relayNode()
      const target = yield* relayNode()
      const dialer = yield* relayNode()
      const addr = ma(`${notRelay.addr.toString()}/p2p-circuit/p2p/${target.host.peerId.toString()}`)
      const e = yield* Effect.flip(dialer.host.dial(addr))
      const c = chain(e)
      expect(c.slice(0, 2)).toEqual(["DialError", "TransportError"])
      expect(c).toContain("RelayError")
      // the hop protocol was refused in negotiation: no connection to the target exists
      expect(dialer.host.connections(target.host.peerId)).toEqual([])
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
