/**
 * The Memory transport (src/transport/Memory.ts): the Transport compliance
 * suite over an in-process network, plus its `/memory/<n>` addressing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { dec, enc } from "../support/bytes.ts"
import { ma } from "../support/multiaddr.ts"
import { PEER } from "../support/transport.ts"
import { transportSuite } from "./compliance.ts"

const memory = Memory.make({ listeners: new Map(), nextPort: 1, nextDialer: 1_000_000 })

transportSuite("memory", {
  transport: memory,
  listenAddr: Effect.succeed(ma("/memory/0")),
  halfClose: true,
  resetSeenAs: ["Reset"],
  // both come from Duplex.pair; see the suite's `deviations`
  deviations: { writeAfterResetIsClosed: true, scopeCloseResets: true }
})

describe("Memory transport: the delay line of a latency network (simulations)", () => {
  it.effect("writes and the end of stream arrive latencyMillis later in virtual time, in order; a reset drops what is in flight and fails later writes", () =>
    Effect.gen(function*() {
      const network: Memory.MemoryNetworkShape = {
        listeners: new Map(),
        nextPort: 1,
        nextDialer: 1_000_000,
        latency: true,
        latencyMillis: 20
      }
      const transport = Memory.make(network)
      const accepted = yield* Deferred.make<Duplex.Duplex>()
      const listener = yield* transport.listen(
        ma("/memory/0"),
        (conn) => Effect.andThen(Deferred.succeed(accepted, conn.duplex), Effect.never)
      )
      const dialed = yield* transport.dial(listener.addrs[0]!)
      const remote = yield* Deferred.await(accepted)
      yield* dialed.duplex.write([enc("a")])
      yield* TestClock.adjust("10 millis")
      yield* dialed.duplex.write([enc("b")])
      yield* dialed.duplex.closeWrite
      const reads = yield* Effect.forkChild(Duplex.readAll(remote, 1024))
      yield* TestClock.adjust("9 millis")
      expect(reads.pollUnsafe()).toBeUndefined() // "a" is due at 20 ms
      yield* TestClock.adjust("20 millis")
      expect(dec(yield* Fiber.join(reads))).toBe("ab") // then "b" and the end, in order
      // the other way, then a reset of the reader's end: later writes fail, nothing hangs
      network.latencyMillis = 0
      yield* remote.write([enc("x")])
      yield* dialed.duplex.reset
      yield* TestClock.adjust("1 millis")
      const err = yield* Effect.flip(remote.write([enc("y")]))
      expect(err._tag).toBe("DuplexError")
    }).pipe(Effect.scoped))
})

describe("Memory transport: addressing (multiaddr protocol memory, 0x0309)", () => {
  it("dials and listens on /memory/<n> (a trailing /p2p is ignored for dials), nothing else", () => {
    expect(memory.canDial(ma("/memory/1"))).toBe(true)
    expect(memory.canDial(ma(`/memory/1/p2p/${PEER}`))).toBe(true)
    expect(memory.canListen(ma("/memory/0"))).toBe(true)
    expect(memory.canDial(ma("/ip4/127.0.0.1/tcp/1"))).toBe(false)
    expect(memory.canListen(ma("/ip4/127.0.0.1/tcp/0"))).toBe(false)
  })

  it.live("listening on /memory/0 picks the next free number; an address it does not handle is Unsupported", () =>
    Effect.gen(function*() {
      const a = yield* memory.listen(ma("/memory/0"), () => Effect.void)
      const b = yield* memory.listen(ma("/memory/0"), () => Effect.void)
      expect(a.addrs[0]!.toString()).toMatch(/^\/memory\/\d+$/)
      expect(b.addrs[0]!.toString()).not.toBe(a.addrs[0]!.toString())
      const err = yield* Effect.flip(memory.listen(ma("/ip4/127.0.0.1/tcp/0"), () => Effect.void))
      expect([err._tag, err.reason]).toEqual(["TransportError", "Unsupported"])
    }))
})
