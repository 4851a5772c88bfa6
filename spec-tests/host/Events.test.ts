/**
 * Events are read-only, bounded streams: `subscribe` misses nothing published
 * after it returns; a subscriber that lags loses the oldest (sliding buffer).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import * as RegistrarModule from "../../src/connection/Registrar.ts"
import { CHANGES_BUFFER, Registrar } from "../../src/connection/Registrar.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { memoryNode } from "../support/node.ts"

describe("events as streams", () => {
  it.live("host.subscribe: the events of a dial made right after subscribing are all there, in order", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const events = yield* a.host.subscribe
      const conn = yield* a.host.dial(b.addr)
      yield* conn.close
      const got = yield* events.pipe(Stream.take(4), Stream.runCollect)
      expect(got.map((e) => e._tag)).toEqual(["ConnectionOpen", "PeerConnect", "ConnectionClose", "PeerDisconnect"])
      for (const e of got) {
        const peer = "peerId" in e ? e.peerId : "connection" in e ? e.connection.remotePeer : undefined
        expect(peer !== undefined && PeerId.equals(peer, b.host.peerId)).toBe(true)
      }
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("Registrar.changes slides: a subscriber that reads nothing keeps the latest CHANGES_BUFFER lists", () =>
    Effect.gen(function*() {
      const registrar = yield* Registrar
      const changes = yield* registrar.subscribeChanges
      const n = CHANGES_BUFFER + 4
      for (let i = 0; i < n; i++) yield* registrar.handle(`/test/${i}`, () => Effect.void)
      const got = yield* changes.pipe(Stream.take(CHANGES_BUFFER), Stream.runCollect)
      // the oldest 4 lists were dropped; the rest arrive in order, the last one complete
      expect(got.map((list) => list.length)).toEqual(Array.from({ length: CHANGES_BUFFER }, (_, i) => i + 5))
      expect(got[got.length - 1]).toEqual(Array.from({ length: n }, (_, i) => `/test/${i}`))
    }).pipe(Effect.provide(RegistrarModule.layer)))
})
