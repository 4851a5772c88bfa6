/**
 * The Memory transport (src/transport/Memory.ts): the Transport compliance
 * suite over an in-process network, plus its `/memory/<n>` addressing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Memory from "../../src/transport/Memory.ts"
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
