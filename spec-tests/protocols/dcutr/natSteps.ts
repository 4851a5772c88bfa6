/**
 * The steps both DCUtR NAT tests (`DcutrNat.test.ts` with the stand-in
 * relay, `DcutrRelayNat.test.ts` with ours) take, on the child programs of
 * `peerProgram.ts`: A on site a (port 4001) dials B on site b (port 4002)
 * through the relay at `circuit`, B starts DCUtR.
 */
import { expect } from "@effect/vitest"
import { Effect } from "effect"
import * as Path from "node:path"
import * as Netns from "../../support/netns.ts"
import type * as Proc from "../../support/process.ts"

const lines = Netns.outputLines
const relayDcutrPeer = Path.join(import.meta.dirname, "relayDcutrPeer.ts")

/**
 * Two of our nodes (`relayDcutrPeer.ts peer`), B behind NAT b on port 4002
 * and A behind NAT a on port 4001, once each holds a reservation on the
 * relay at `relayAddr` (with /p2p).
 */
export const reservedPeers = (net: Netns.NatTopology, relayAddr: string) =>
  Effect.gen(function*() {
    const b = yield* Netns.spawnNode(net.b.host.ns, relayDcutrPeer, ["peer", "4002", relayAddr], { stdin: true })
    const a = yield* Netns.spawnNode(net.a.host.ns, relayDcutrPeer, ["peer", "4001", relayAddr], { stdin: true })
    const idB = (yield* b.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    const idA = (yield* a.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    yield* b.awaitOutput(/reserved/, "60 seconds")
    yield* a.awaitOutput(/reserved/, "60 seconds")
    return { a, b, idA, idB }
  })
const nthLine = Netns.nthOutputLine

/**
 * The relayed connection, then DCUtR (relay/DCUtR.md §The Protocol): B, which
 * received it, is the initiator; A answers at its first round; each ends
 * with a direct connection whose remote address is the other NAT's public side.
 */
export const connectAndUpgrade = (net: Netns.NatTopology, a: Proc.Process, b: Proc.Process, circuit: string) =>
  Effect.gen(function*() {
    yield* a.write(`dial ${circuit}\n`)
    expect(yield* nthLine(a, "dialed ", 1)).toContain("/p2p-circuit")
    const ub = (yield* nthLine(b, "upgraded ", 1)).split(" ")
    const ua = (yield* nthLine(a, "upgraded ", 1)).split(" ")
    expect(ub[1]).toBe("initiator")
    expect(ua.slice(1, 3)).toEqual(["responder", "1"])
    expect(ub[4]).toBe(`/ip4/${net.a.publicIp}/tcp/4001`)
    expect(ua[4]).toBe(`/ip4/${net.b.publicIp}/tcp/4002`)
  })

/** `n` pings each way; both go over the direct connection (the Host hands it out first). */
export const pingDirect = (
  net: Netns.NatTopology,
  a: { readonly proc: Proc.Process; readonly id: string },
  b: { readonly proc: Proc.Process; readonly id: string },
  n: number
) =>
  Effect.gen(function*() {
    yield* a.proc.write(`ping ${b.id} ${n}\n`)
    expect(yield* nthLine(a.proc, "pinged ", 1)).toBe(`pinged ${n} /ip4/${net.b.publicIp}/tcp/4002`)
    yield* b.proc.write(`ping ${a.id} ${n}\n`)
    expect(yield* nthLine(b.proc, "pinged ", 1)).toBe(`pinged ${n} /ip4/${net.a.publicIp}/tcp/4001`)
  })

/**
 * Behind symmetric-like NATs (§The Protocol step 6): B gives up after its 3
 * rounds with DialFailed, A failed each of the 3 rounds it answered, nobody
 * upgraded, and the relayed connection stays and carries streams.
 */
export const failToUpgrade = (a: Proc.Process, b: Proc.Process, idB: string, circuit: string) =>
  Effect.gen(function*() {
    yield* a.write(`dial ${circuit}\n`)
    yield* nthLine(a, "dialed ", 1)
    const failed = (yield* nthLine(b, "dcutr-failed ", 1)).split(" ")
    expect(failed.slice(1, 3)).toEqual(["initiator", "DialFailed"])
    yield* nthLine(a, "dcutr-failed responder DialFailed", 3)
    expect(lines(a, "dcutr-failed responder")).toHaveLength(3)
    expect(lines(a, "upgraded ")).toEqual([])
    expect(lines(b, "upgraded ")).toEqual([])
    yield* a.write(`ping ${idB} 3\n`)
    expect(yield* nthLine(a, "pinged ", 1)).toContain("/p2p-circuit")
    yield* a.write(`conns ${idB}\n`)
    expect((yield* nthLine(a, "conns ", 1)).split(" ")[1]).toBe("1")
  })
