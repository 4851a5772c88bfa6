/**
 * perf (`/perf/1.0.0`, perf spec §Protocol) against go-libp2p v0.52 over TCP + Noise + Yamux
 * (spec-tests/interop/go; go-libp2p ships no perf protocol, so its side is the go peer's own
 * handler and client, written to the spec like js-peer.mjs's): our client → go's server and go's
 * client → our server, the same size up and down, byte counts exact on both ends (our server's
 * counters included).
 *
 * 256 MiB each way (issue 19), as the test-plans perf runs do: ~10 s for both directions on
 * the shared 2-core development machine (ours → go 5.7 s, go → ours 4.4 s), so `npm test` runs the
 * full size; `GO_PERF_MIB=<n>` moves n MiB instead (e.g. on a slow machine).
 * Throughput goes to stderr; nothing asserts on speed (ARCHITECTURE.md §6).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { inject } from "vitest"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { eventually } from "../support/attacker.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import * as GoPeer from "./harness/GoPeer.ts"

const build = inject("goPeer")
const MiB = 1024 * 1024
const SIZE = Number(process.env["GO_PERF_MIB"] ?? 256) * MiB

const gbps = (bytes: number, seconds: number) => seconds > 0 ? ((bytes * 8) / seconds / 1e9).toFixed(2) : "∞"
const report = (label: string, r: { readonly seconds: number; readonly uploadSeconds: number }) =>
  process.stderr.write(
    `[go perf interop] ${label.padEnd(10)} ${SIZE / MiB} MiB up + down in ${r.seconds.toFixed(2)} s ` +
      `(up ${gbps(SIZE, r.uploadSeconds)} Gbit/s, down ${gbps(SIZE, r.seconds - r.uploadSeconds)} Gbit/s)\n`
  )

describe.skipIf(build === null)("interop with go-libp2p v0.52: perf spec §Protocol (/perf/1.0.0)", () => {
  it.live(
    `perf spec §Protocol: ours → go and go → ours, ${SIZE / MiB} MiB each way, byte counts exact`,
    () =>
      Effect.gen(function*() {
        const [go, ours] = yield* Effect.all(
          [GoPeer.start(build!.binary, { commandTimeout: "5 minutes" }), tcpNode()],
          {
            concurrency: 2
          }
        )
        const goId = Result.getOrThrow(PeerId.fromString(go.peerId))
        yield* ours.host.dial(ma(go.addr))

        const toGo = yield* ours.perf.perf(goId, { uploadBytes: SIZE, downloadBytes: SIZE })
        expect([toGo.uploadBytes, toGo.downloadBytes]).toEqual([SIZE, SIZE])
        report("ours → go", toGo)

        const before = ours.perf.stats()
        const fromGo = yield* go.perf(
          { addr: Multiaddr.toString(ours.addr) },
          { uploadBytes: SIZE, downloadBytes: SIZE }
        )
        expect([fromGo.uploadBytes, fromGo.downloadBytes]).toEqual([SIZE, SIZE])
        report("go → ours", fromGo)
        // our server counted exactly what go sent and what it sent back
        expect(yield* eventually(Effect.sync(() => ours.perf.stats().completed === before.completed + 1))).toBe(true)
        const after = ours.perf.stats()
        expect(after.uploadBytes - before.uploadBytes).toBe(SIZE)
        expect(after.downloadBytes - before.downloadBytes).toBe(SIZE)
        expect(after.failed).toBe(before.failed)
        expect((yield* go.eventLog).filter((e) => e.event === "handler:error")).toEqual([])
      }),
    600_000
  )
})
