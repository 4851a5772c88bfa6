/**
 * Ping round-trip times over loopback TCP (+ Noise + Yamux), 20 pings on one
 * `/ipfs/ping/1.0.0` stream (ping spec: the dialer may reuse a stream for several pings),
 * for the four pairings: ours → js, js → ours, js → js (two js-libp2p processes), and
 * ours → ours. Numbers go to stderr for comparison; there are NO timing assertions
 * (ARCHITECTURE.md §6: wall-clock speed is bench/'s business). The test only checks that
 * every round trip happened with a positive, finite RTT.
 *
 * Each pairing is connected and warmed up (5 pings on another stream) before the 20
 * measured ones, and the pairings run one after another so they do not share the CPU.
 * js → x uses the harness's "stream" mode (performance.now around each ping); ours → x
 * uses our Ping service (Clock.currentTimeNanos around each ping).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const COUNT = 20
const WARMUP = 5

const quantile = (sorted: ReadonlyArray<number>, q: number): number => {
  const at = (sorted.length - 1) * q
  const lo = Math.floor(at)
  const hi = Math.ceil(at)
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)
}

const summary = (rtts: ReadonlyArray<number>) => {
  const sorted = [...rtts].sort((a, b) => a - b)
  return { median: quantile(sorted, 0.5), min: sorted[0]!, p90: quantile(sorted, 0.9), max: sorted[sorted.length - 1]! }
}

const checkRtts = (rtts: ReadonlyArray<number>) => {
  expect(rtts).toHaveLength(COUNT)
  for (const rtt of rtts) {
    expect(Number.isFinite(rtt)).toBe(true)
    expect(rtt).toBeGreaterThan(0)
  }
}

describe("ping RTT over loopback TCP (measurement only, no timing assertions)", () => {
  it.live("ping spec: 20 pings on one stream — ours → js, js → ours, js → js, ours → ours (medians to stderr) [ping:protocol:1]", () =>
    Effect.gen(function*() {
      const [js1, js2, ours1, ours2] = yield* Effect.all([JsPeer.start(), JsPeer.start(), tcpNode(), tcpNode()], {
        concurrency: "unbounded"
      })
      const results: Array<readonly [string, ReadonlyArray<number>]> = []

      // ours → js
      const js1Id = PeerId.fromString(js1.peerId)
      if (js1Id._tag === "Failure") return yield* Effect.die(js1Id.failure)
      yield* ours1.host.dial(ma(js1.addr))
      yield* ours1.ping.ping(js1Id.success, { count: WARMUP })
      const oursToJs = yield* ours1.ping.ping(js1Id.success, { count: COUNT })
      checkRtts(oursToJs)
      results.push(["ours → js", oursToJs])

      // js → ours (js2 dials ours2, so this is a fresh connection in js's direction)
      const ours2Id = PeerId.toString(ours2.host.peerId)
      yield* js2.dial(Multiaddr.toString(ours2.addr))
      yield* js2.ping({ peerId: ours2Id }, { count: WARMUP, mode: "stream" })
      const jsToOurs = (yield* js2.ping({ peerId: ours2Id }, { count: COUNT, mode: "stream" })).rtts
      checkRtts(jsToOurs)
      results.push(["js → ours", jsToOurs])

      // js → js
      yield* js2.dial(js1.addr)
      yield* js2.ping({ peerId: js1.peerId }, { count: WARMUP, mode: "stream" })
      const jsToJs = (yield* js2.ping({ peerId: js1.peerId }, { count: COUNT, mode: "stream" })).rtts
      checkRtts(jsToJs)
      results.push(["js → js", jsToJs])

      // ours → ours
      yield* ours1.host.dial(ours2.addr)
      yield* ours1.ping.ping(ours2.host.peerId, { count: WARMUP })
      const oursToOurs = yield* ours1.ping.ping(ours2.host.peerId, { count: COUNT })
      checkRtts(oursToOurs)
      results.push(["ours → ours", oursToOurs])

      for (const [name, rtts] of results) {
        const s = summary(rtts)
        process.stderr.write(
          `[ping RTT, ${COUNT} on one stream] ${name.padEnd(11)} median ${s.median.toFixed(3)} ms  ` +
            `(min ${s.min.toFixed(3)}, p90 ${s.p90.toFixed(3)}, max ${s.max.toFixed(3)})\n`
        )
      }
    }))
})
