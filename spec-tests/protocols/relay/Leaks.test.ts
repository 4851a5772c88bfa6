/**
 * Relayed connections leave nothing behind (relay/circuit-v2.md §Connection Initiation; the
 * scoped-resource rules of ARCHITECTURE.md §3.2): 20 relayed connections over TCP, each echoing
 * and closed, then the relay's circuits, both ends' connection tables and the process's
 * sockets and timers are back where they were.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { expectResourcesBack, settledResources } from "../../support/attacker.ts"
import { echoOver, relayNode } from "./support.ts"

describe("circuit relay v2: nothing leaks", () => {
  it.live(
    "circuit-v2 §Connection Initiation: 20 relayed connections opened, used and closed leave nothing behind",
    () =>
      Effect.gen(function*() {
        const before = yield* settledResources
        yield* Effect.scoped(Effect.gen(function*() {
          const relay = yield* relayNode({ tcp: true, server: {} })
          const a = yield* relayNode({ tcp: true })
          const b = yield* relayNode({ tcp: true })
          const { addrs } = yield* a.client.reserve(relay.addr)
          for (let i = 0; i < 20; i++) {
            const conn = yield* b.host.dial(addrs[0]!)
            const data = Uint8Array.from({ length: 2000 }, (_, j) => (i + j) % 256)
            expect(Buffer.compare(yield* echoOver(conn, data), data)).toBe(0)
            yield* conn.close
          }
          const relayed = (n: typeof a) => n.host.connections().filter((c) => MultiaddrNet.isRelayed(c.remoteAddr))
          for (let i = 0; i < 200 && (relay.server!.circuits() > 0 || relayed(a).length > 0); i++) {
            yield* Effect.sleep("10 millis")
          }
          expect(relay.server!.circuits()).toBe(0)
          expect(relayed(a)).toEqual([])
          expect(relayed(b)).toEqual([])
          // the direct connections to the relay stay: one each
          expect(a.host.connections().length).toBe(1)
        }))
        yield* expectResourcesBack(before)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})
