/**
 * Smoke tests of the js-libp2p interop harness (spec-tests/interop/harness): two js-libp2p v3
 * peers in separate processes talk to each other through it — connect, ping (ping spec),
 * identify with a signed peer record (identify spec, RFC 0003 peer records), echo over
 * concurrent yamux streams, and the perf protocol (perf spec) — and every process is gone
 * once its scope closes. They prove the harness before our own node uses it, and print
 * js↔js baselines to stderr (no timing assertions).
 */
import { describe, expect, it } from "@effect/vitest"
import { generateKeyPair, privateKeyToProtobuf } from "@libp2p/crypto/keys"
import { peerIdFromPrivateKey } from "@libp2p/peer-id"
import { Effect, Exit, Fiber, Scope, Stream } from "effect"
import { alive } from "../support/process.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const MiB = 1024 * 1024

const report = (line: string) => Effect.sync(() => process.stderr.write(`[js↔js baseline] ${line}\n`))

const pair = Effect.gen(function*() {
  const [a, b] = yield* Effect.all([JsPeer.start(), JsPeer.start()], { concurrency: 2 })
  const dialed = yield* a.dial(b.addr)
  return { a, b, dialed }
})

describe("js-libp2p interop harness (js ↔ js)", () => {
  it.live("starts js-libp2p under the test's Node 24 with a ready line, and dials: connect events on both sides", () =>
    Effect.gen(function*() {
      const { a, b, dialed } = yield* pair
      expect(a.nodeVersion.startsWith("v24.")).toBe(true)
      expect(process.version.startsWith("v24.")).toBe(true)
      expect(a.addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
      expect(a.addr.endsWith(`/p2p/${a.peerId}`)).toBe(true)
      expect(dialed.peerId).toBe(b.peerId)
      expect(dialed.encryption).toBe("/noise")
      expect(dialed.multiplexer).toBe("/yamux/1.0.0")
      expect(dialed.direction).toBe("outbound")
      yield* a.awaitEvent(JsPeer.isEvent("peer:connect", { peerId: b.peerId }))
      yield* b.awaitEvent(JsPeer.isEvent("peer:connect", { peerId: a.peerId }))
      const conns = yield* b.connections
      expect(conns.count).toBe(1)
      expect(conns.connections[0]?.peerId).toBe(a.peerId)
      expect(conns.connections[0]?.direction).toBe("inbound")
      const peers = yield* a.peers
      expect(peers.peers.map((p) => p.peerId)).toEqual([b.peerId])
      // the same command value run concurrently gets one answer each
      const many = yield* Effect.all([a.peers, a.peers, a.peers], { concurrency: "unbounded" })
      expect(many.map((p) => p.peers.length)).toEqual([1, 1, 1])
      // a command the js side rejects is a typed CommandFailed, and the process keeps serving
      const bad = yield* Effect.flip(a.command("no-such-command"))
      expect(bad.reason).toBe("CommandFailed")
      expect((yield* a.peers).peers.length).toBe(1)
    }))

  it.live("ping spec: three round trips over /ipfs/ping/1.0.0 (service: a stream each; one stream for several pings)", () =>
    Effect.gen(function*() {
      const { a, b } = yield* pair
      const byService = yield* a.ping({ peerId: b.peerId }, { count: 3 })
      expect(byService.rtts.length).toBe(3)
      const oneStream = yield* a.ping({ peerId: b.peerId }, { count: 3, mode: "stream" })
      expect(oneStream.rtts.length).toBe(3)
      for (const rtt of [...byService.rtts, ...oneStream.rtts]) expect(rtt).toBeGreaterThanOrEqual(0)
      yield* report(
        `ping RTT (ms): service ${byService.rtts.join(", ")}; one stream ${
          oneStream.rtts.map((r) => r.toFixed(3)).join(", ")
        }`
      )
    }))

  it.live("identify spec: the result of the connection lists /ipfs/ping/1.0.0 and carries a verified signed peer record", () =>
    Effect.gen(function*() {
      const { a, b } = yield* pair
      const id = yield* a.identify(b.peerId)
      expect(id.peerId).toBe(b.peerId)
      expect(id.protocolVersion).toBe("ipfs/0.1.0")
      expect(id.agentVersion).toMatch(/js-libp2p/)
      expect(id.protocols).toContain("/ipfs/ping/1.0.0")
      expect(id.protocols).toContain("/ipfs/id/1.0.0")
      expect(id.protocols).toContain("/echo/1.0.0")
      expect(id.protocols).toContain("/perf/1.0.0")
      expect(id.listenAddrs.length).toBeGreaterThan(0)
      expect(id.observedAddr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/)
      expect(id.signedPeerRecord).not.toBeNull()
      expect(id.peerRecordVerified).toBe(true)
      expect(id.peerRecord?.peerId).toBe(b.peerId)
      // the record's addresses are b's listen address (without /p2p/)
      expect(id.peerRecord?.addrs).toContain(b.addr.replace(`/p2p/${b.peerId}`, ""))
      // the event stream saw it too, and identify can be re-run on demand
      yield* a.awaitEvent(JsPeer.isEvent("peer:identify", { peerId: b.peerId }))
      const again = yield* a.identify(b.peerId, { fresh: true })
      expect(again.peerRecordVerified).toBe(true)
    }))

  it.live("echo: 1 MiB of pseudo-random bytes on each of 4 concurrent streams comes back intact", () =>
    Effect.gen(function*() {
      const { a, b } = yield* pair
      const r = yield* a.echo({ peerId: b.peerId }, { bytes: MiB, streams: 4 })
      expect(r.bytes).toBe(4 * MiB)
      expect(r.streams).toBe(4)
      const mbit = (r.bytes * 8 * 2) / (r.ms / 1000) / 1e6 // each byte crosses twice
      yield* report(`echo 4 × 1 MiB over 4 streams: ${r.ms.toFixed(1)} ms (${mbit.toFixed(0)} Mbit/s both directions)`)
      // optimistic negotiation (protocol name sent with the first data) echoes the same
      const lazy = yield* a.echo({ peerId: b.peerId }, { bytes: 100_000, streams: 2, negotiateFully: false })
      expect(lazy.bytes).toBe(200_000)
      // an unsupported protocol fails with js's own error name
      const err = yield* Effect.flip(a.echo({ peerId: b.peerId }, { bytes: 10, protocol: "/no/such/1.0.0" }))
      expect(err.reason).toBe("CommandFailed")
      expect(err.errorName).toBe("UnsupportedProtocolError")
      // a perf stream cut short inside the 8-byte header: the handler resets it and says why
      const cut = yield* Effect.flip(a.echo({ peerId: b.peerId }, { bytes: 4, protocol: "/perf/1.0.0" }))
      expect(cut.reason).toBe("CommandFailed")
      const why = yield* b.awaitEvent(JsPeer.isEvent("handler:error", { protocol: "/perf/1.0.0" }))
      expect(String(why["error"])).toMatch(/after 4 header bytes/)
      // multistream-select picks the first protocol the listener supports
      expect(yield* a.negotiate({ peerId: b.peerId }, ["/no/such/1.0.0", "/echo/1.0.0"])).toBe("/echo/1.0.0")
    }))

  it.live("perf spec: the js perf handler sends back exactly the requested byte count", () =>
    Effect.gen(function*() {
      const { a, b } = yield* pair
      const small = yield* a.perf({ peerId: b.peerId }, { uploadBytes: 1000, downloadBytes: 12345 })
      expect(small.downloadBytes).toBe(12345)
      const none = yield* a.perf({ peerId: b.peerId }, { uploadBytes: 0, downloadBytes: 0 })
      expect(none.downloadBytes).toBe(0)
      const up = yield* a.perf({ peerId: b.peerId }, { uploadBytes: 32 * MiB, downloadBytes: 0 })
      const down = yield* a.perf({ peerId: b.peerId }, { uploadBytes: 0, downloadBytes: 32 * MiB })
      expect(down.downloadBytes).toBe(32 * MiB)
      const gbit = (bytes: number, s: number) => ((bytes * 8) / s / 1e9).toFixed(2)
      yield* report(
        `perf 32 MiB upload ${up.seconds.toFixed(3)} s (${gbit(32 * MiB, up.seconds)} Gbit/s), ` +
          `32 MiB download ${down.seconds.toFixed(3)} s (${gbit(32 * MiB, down.seconds)} Gbit/s)`
      )
    }))

  it.live("peer-ids spec §Keys: a private key given as protobuf bytes fixes the peer id; identify/push announces a new protocol", () =>
    Effect.gen(function*() {
      const key = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const expected = peerIdFromPrivateKey(key).toString()
      const [a, b] = yield* Effect.all([
        JsPeer.start({ privateKey: privateKeyToProtobuf(key) }),
        JsPeer.start()
      ], { concurrency: 2 })
      expect(a.peerId).toBe(expected)
      yield* b.dial(a.addr)
      const first = yield* b.identify(a.peerId)
      expect(first.protocols).not.toContain("/harness/sink/1.0.0")
      const mark = yield* b.eventCount
      yield* a.handle("/harness/sink/1.0.0", "sink")
      const pushed = yield* b.awaitEvent(
        (e) =>
          e.event === "peer:identify" && e["peerId"] === a.peerId &&
          JSON.stringify(e["protocols"]).includes("/harness/sink/1.0.0"),
        { after: mark, timeout: "10 seconds" }
      )
      expect(pushed["protocols"]).toContain("/ipfs/id/push/1.0.0")
      // the sink handler takes bytes and closes without answering
      expect(yield* Effect.flip(b.echo({ peerId: a.peerId }, { bytes: 100, protocol: "/harness/sink/1.0.0" })))
        .toMatchObject({
          reason: "CommandFailed"
        })
    }))

  it.live("hangup and stop: disconnect events on both sides, stop exits 0, closing the scope kills what is left", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { a, b } = yield* Scope.provide(pair, scope)
      const mark = yield* b.eventCount
      yield* a.hangup(b.peerId)
      yield* b.awaitEvent(JsPeer.isEvent("peer:disconnect", { peerId: a.peerId }), { after: mark })
      // a live event stream sees the next connection
      const next = yield* Effect.forkChild(
        Stream.runHead(Stream.filter(b.events, JsPeer.isEvent("peer:connect", { peerId: a.peerId })))
      )
      yield* Effect.yieldNow
      yield* a.dial(b.addr)
      yield* a.stop
      expect(alive(a.pid)).toBe(false)
      const failed = yield* Effect.flip(a.peers)
      expect(failed.reason).toBe("Exited")
      yield* Scope.close(scope, Exit.void)
      expect(alive(b.pid)).toBe(false)
      // b's event stream ended with the process (the connect event may or may not have been first)
      yield* Effect.asVoid(Fiber.join(next))
    }))

  it.live("connection limits: the harness lifts js's 5 inbound connections/s per host (inboundConnectionThreshold; 2 refuses the 3rd)", () =>
    Effect.gen(function*() {
      const [a, lifted, strict] = yield* Effect.all([
        JsPeer.start(),
        JsPeer.start(),
        JsPeer.start({ connectionManager: { inboundConnectionThreshold: 2 } })
      ], { concurrency: 3 })
      let dialed = 0
      const cycles = (target: JsPeer.JsPeer, n: number) =>
        Effect.gen(function*() {
          dialed = 0
          const t0 = performance.now()
          for (let i = 0; i < n; i++) {
            yield* a.dial(target.addr)
            dialed++
            yield* a.hangup(target.peerId)
          }
          return performance.now() - t0
        })
      const ms = yield* cycles(lifted, 12)
      expect(dialed).toBe(12)
      yield* report(`12 sequential dial+hangup cycles: ${ms.toFixed(0)} ms`)
      // the strict listener drops the TCP connection once the host's budget is spent: the dialer sees the reset,
      // or, when the drop lands inside the Noise handshake, js's own EncryptionFailedError (a quiet machine)
      const refused = yield* Effect.flip(cycles(strict, 12))
      expect(refused.reason).toBe("CommandFailed")
      expect(refused.message).toMatch(/ECONNRESET|reset|EncryptionFailedError/i)
      expect(dialed).toBeGreaterThanOrEqual(2)
    }))

  it.effect("timeouts run on the real clock even under TestClock (it.effect)", () =>
    Effect.gen(function*() {
      const a = yield* JsPeer.start()
      const err = yield* Effect.flip(a.awaitEvent(JsPeer.isEvent("never-happens"), { timeout: "300 millis" }))
      expect(err.reason).toBe("CommandTimeout")
      expect(err.message).toMatch(/"event":"ready"/)
    }))

  it.live("a process that dies is reported as Exited with its stderr, and a bad config fails start", () =>
    Effect.gen(function*() {
      const a = yield* JsPeer.start()
      process.kill(a.pid, "SIGKILL")
      const err = yield* Effect.flip(a.ping({ addr: a.addr }))
      expect(err.reason).toBe("Exited")
      const bad = yield* Effect.flip(JsPeer.start({ listen: ["not-a-multiaddr"] }))
      expect(bad.reason).toBe("Exited")
      expect(bad.message).toMatch(/multiaddr/i)
      // a start that takes too long is a StartTimeout, and the process is killed at once
      const slow = yield* Effect.flip(JsPeer.start({ startTimeout: "1 millis" }))
      expect(slow.reason).toBe("StartTimeout")
    }))
})
