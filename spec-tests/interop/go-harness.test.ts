/**
 * Smoke tests of the go-libp2p test peer (spec-tests/interop/go, driven through
 * harness/GoPeer.ts) on its own, before our node uses it: two go peers talk to each other —
 * connect, ping (ping spec), identify with a verified signed peer record (identify spec,
 * RFC 0003), echo over concurrent yamux streams, perf (perf spec) — and a go peer talks to a
 * js-libp2p peer (harness/JsPeer.ts) the same way, so a failure against us can be told apart
 * from a harness fault. Every process is gone once its scope closes; a command go does not know
 * is a typed CommandFailed and the process keeps serving.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { inject } from "vitest"
import { eventually } from "../support/attacker.ts"
import { alive } from "../support/process.ts"
import * as GoPeer from "./harness/GoPeer.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const build = inject("goPeer")
const MiB = 1024 * 1024

/** a dials b; ping, identify (record verified), echo and perf from a to b, and ping back. */
const exercise = (a: JsPeer.JsPeer, b: JsPeer.JsPeer) =>
  Effect.gen(function*() {
    const dialed = yield* a.dial(b.addr)
    expect([dialed.peerId, dialed.direction, dialed.encryption, dialed.multiplexer]).toEqual([
      b.peerId,
      "outbound",
      "/noise",
      "/yamux/1.0.0"
    ])
    expect((yield* a.ping({ peerId: b.peerId }, { count: 3 })).rtts).toHaveLength(3)
    expect((yield* b.ping({ peerId: a.peerId }, { count: 2 })).rtts).toHaveLength(2)
    const id = yield* a.identify(b.peerId)
    expect(id.peerId).toBe(b.peerId)
    expect(id.protocols).toEqual(expect.arrayContaining(["/ipfs/ping/1.0.0", "/echo/1.0.0", "/perf/1.0.0"]))
    expect(id.peerRecordVerified).toBe(true)
    expect(id.peerRecord?.addrs).toContain(b.addr.replace(/\/p2p\/.*$/, ""))
    const echo = yield* a.echo({ peerId: b.peerId }, { bytes: 256 * 1024, streams: 4 })
    expect(echo.bytes).toBe(4 * 256 * 1024)
    const perf = yield* a.perf({ peerId: b.peerId }, { uploadBytes: 4 * MiB, downloadBytes: 3 * MiB })
    expect([perf.uploadBytes, perf.downloadBytes]).toEqual([4 * MiB, 3 * MiB])
  })

describe.skipIf(build === null)("go-libp2p test peer (go ↔ go, go ↔ js)", () => {
  it.live(
    "go ↔ go: ready line, dial, ping, identify with a verified peer record, echo, perf; bad command",
    () =>
      Effect.gen(function*() {
        const [a, b] = yield* Effect.all([GoPeer.start(build!.binary), GoPeer.start(build!.binary)], {
          concurrency: 2
        })
        expect(a.nodeVersion).toMatch(/^go1\.\d+/)
        expect(a.addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
        expect(a.addr.endsWith(`/p2p/${a.peerId}`)).toBe(true)
        yield* exercise(a, b)
        yield* a.awaitEvent(JsPeer.isEvent("peer:connect", { peerId: b.peerId }))
        yield* b.awaitEvent(JsPeer.isEvent("peer:identify", { peerId: a.peerId }))
        const id = yield* a.identify(b.peerId)
        expect(id.agentVersion).toBe(`go-libp2p/${build!.libp2p}`)
        const bad = yield* Effect.flip(a.command("no-such-command"))
        expect(bad.reason).toBe("CommandFailed")
        expect(bad.errorName).toBe("BadRequest")
        expect((yield* a.peers).peers.map((p) => p.peerId)).toEqual([b.peerId])
      }),
    60_000
  )

  it.live(
    "go ↔ js-libp2p, both directions: the two reference stacks agree through our harness",
    () =>
      Effect.gen(function*() {
        const [go, js] = yield* Effect.all([GoPeer.start(build!.binary), JsPeer.start()], { concurrency: 2 })
        yield* exercise(go, js)
        yield* go.hangup(js.peerId)
        // js must have seen the close, or its dial returns the old (inbound) connection
        expect(yield* eventually(Effect.map(js.connections, (c) => c.count === 0))).toBe(true)
        yield* exercise(js, go)
      }),
    60_000
  )

  it.live("the process is gone when its scope closes, and after stop", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const peer = yield* Scope.provide(GoPeer.start(build!.binary), scope)
      expect(alive(peer.pid)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(alive(peer.pid)).toBe(false)
      const other = yield* GoPeer.start(build!.binary)
      yield* other.stop
      expect(alive(other.pid)).toBe(false)
    }), 30_000)
})
