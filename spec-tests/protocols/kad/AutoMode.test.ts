/**
 * Kad-DHT `mode: "auto"` (go-libp2p-kad-dht `ModeAuto`; the kad-dht spec
 * §Client and server mode): the node serves the protocol while the
 * AddressManager's reachability (AutoNAT's verdict) is `public`, and is a
 * client otherwise; the switch registers and removes the handler, identify
 * pushes it, and peers add or drop the node from their tables.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Kad from "../../../src/protocols/kad/Kad.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { connect, type KadNode, kadNode } from "./support.ts"

/** Yield until `done()` (other fibers react to events), at most `n` times. */
const until = (done: () => boolean, n = 1000) =>
  Effect.gen(function*() {
    for (let i = 0; i < n && !done(); i++) yield* Effect.yieldNow
    return done()
  })

const knows = (a: KadNode, b: KadNode) => a.kad.peers().some((p) => p.toString() === b.host.peerId.toString())

describe("Kad §Client and server mode: mode auto follows the reachability", () => {
  it.effect("client while unknown or private, server while public, back to client when private", () =>
    Effect.gen(function*() {
      const auto = yield* kadNode({ mode: "auto" }, 301)
      const peer = yield* kadNode({}, 302)
      expect(auto.kad.mode).toBe("client")
      expect(auto.kad.currentMode()).toBe("client")
      expect(auto.registrar.protocols()).not.toContain(Kad.PROTOCOL)
      yield* connect(peer, auto)
      expect(knows(peer, auto)).toBe(false)

      yield* auto.addressManager.setReachability("public")
      expect(yield* until(() => auto.kad.currentMode() === "server")).toBe(true)
      expect(auto.registrar.protocols()).toContain(Kad.PROTOCOL)
      // identify push tells the peer, which adds us to its table
      expect(yield* until(() => knows(peer, auto), 20_000)).toBe(true)

      yield* auto.addressManager.setReachability("private")
      expect(yield* until(() => auto.kad.currentMode() === "client")).toBe(true)
      expect(auto.registrar.protocols()).not.toContain(Kad.PROTOCOL)
      expect(yield* until(() => !knows(peer, auto), 20_000)).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("the fixed modes ignore the reachability", () =>
    Effect.gen(function*() {
      const client = yield* kadNode({ mode: "client" }, 303)
      yield* client.addressManager.setReachability("public")
      yield* until(() => false, 50)
      expect(client.kad.currentMode()).toBe("client")
      expect(client.registrar.protocols()).not.toContain(Kad.PROTOCOL)
      const server = yield* kadNode({ mode: "server" }, 304)
      yield* server.addressManager.setReachability("private")
      yield* until(() => false, 50)
      expect(server.kad.currentMode()).toBe("server")
      expect(server.registrar.protocols()).toContain(Kad.PROTOCOL)
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
