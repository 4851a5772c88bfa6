/**
 * Bad input from the network, at node level, over real TCP (ARCHITECTURE.md
 * §5: a typed error and a closed connection, never a crash, a hang, an
 * unbounded buffer or a leaked fiber): random bytes, broken
 * multistream-select (connections spec §Protocol Negotiation, multistream-select
 * README §Protocol), connections that never speak (connections spec
 * §Upgrading connections: the upgrade has a deadline), and many bad
 * connections at once.
 *
 * Each attack runs on a raw `node:net` socket against one of our nodes; then
 * the node must have closed the attacker's connection within a bound, kept
 * `host.connections()` at its baseline, answered a ping from a fresh
 * well-behaved node, left no socket or handler fiber behind in its listener,
 * and logged no defect. Noise and Yamux attacks are in BadInputNoise.test.ts
 * and BadInputYamux.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
import {
  type Attacker,
  connect,
  eventually,
  expectClosed,
  expectHealthy,
  expectResourcesBack,
  msMessage,
  negotiate,
  noiseFrame,
  randomBytes,
  settledResources,
  type WatchedNode,
  watchedNode
} from "../support/attacker.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"

/** Well above any local processing time, well below the 10 s upgrade deadline: "promptly". */
const PROMPT = "3 seconds"
/** The short upgrade deadline of the nodes in the timeout tests, and the slack beyond it. */
const SHORT_UPGRADE = "1 second"
const AFTER_SHORT_UPGRADE = "4 seconds"

const concat = (...parts: ReadonlyArray<Uint8Array>) => Buffer.concat(parts)

/**
 * The node logged exactly `n` typed upgrade failures (`UpgradeError`), with
 * reasons among `reasons`; returns them. (Defects are checked by expectHealthy.)
 */
const expectUpgradeFailures = (node: WatchedNode, n: number, reasons: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const upgrades = () => node.failures().filter((f) => f.tag === "UpgradeError")
    yield* eventually(Effect.sync(() => upgrades().length >= n))
    const failures = upgrades()
    expect(failures).toHaveLength(n)
    for (const f of failures) {
      expect(f.tag).toBe("UpgradeError")
      expect(reasons).toContain(f.reason)
    }
    return failures
  })

describe("bad input: random bytes", () => {
  it.live("connections spec §Upgrading: random bytes then FIN (1 B … 100 KiB) are refused at once, the node carries on", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const sizes = [1, 2, 7, 64, 1024, 4096, 100 * 1024]
      const results = yield* Effect.forEach(sizes, (size, i) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* attacker.send(randomBytes(size, 1000 + i))
          yield* attacker.end
          return yield* expectClosed(attacker, PROMPT)
        }), { concurrency: "unbounded" })
      expect(results).toHaveLength(sizes.length)
      const failures = yield* expectUpgradeFailures(node, sizes.length, ["SecurityNegotiation"])
      for (const f of failures) {
        expect(f.chain.slice(0, 3)).toEqual(["UpgradeError", "SecurityNegotiation", "MultistreamError"])
      }
      yield* expectHealthy(node, 0)
    }))

  it.live("connections spec §Upgrading: random bytes on a connection kept open end by an error or the upgrade deadline", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: SHORT_UPGRADE })
      const sizes = [1, 2, 3, 7, 64, 1024, 4096, 100 * 1024]
      const seeds = [1, 2, 3]
      const cases = sizes.flatMap((size) => seeds.map((seed) => ({ size, seed })))
      yield* Effect.forEach(cases, ({ seed, size }) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* attacker.send(randomBytes(size, seed * 7919 + size))
          yield* expectClosed(attacker, AFTER_SHORT_UPGRADE)
        }), { concurrency: "unbounded" })
      yield* expectUpgradeFailures(node, cases.length, ["SecurityNegotiation", "Timeout"])
      yield* expectHealthy(node, 0)
    }))
})

describe("bad input: multistream-select", () => {
  /** Send `bytes` and keep the connection open: the node must close it by itself, promptly. */
  const refusedPromptly = (bytes: Uint8Array) =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const attacker = yield* connect(node.addr)
      yield* attacker.send(bytes)
      const closed = yield* expectClosed(attacker, PROMPT)
      const [failure] = yield* expectUpgradeFailures(node, 1, ["SecurityNegotiation"])
      expect(failure!.chain.slice(0, 3)).toEqual(["UpgradeError", "SecurityNegotiation", "MultistreamError"])
      yield* expectHealthy(node, 0)
      return closed
    })

  it.live("multistream-select §Protocol: a first message other than the header fails the negotiation", () =>
    Effect.gen(function*() {
      yield* refusedPromptly(msMessage("/multistream/2.0.0"))
      yield* refusedPromptly(msMessage("/noise"))
    }))

  it.live("multistream-select §Protocol: the header, then a message without its newline", () =>
    refusedPromptly(concat(Multistream.HEADER_FRAME, Uint8Array.of(5), Buffer.from("hello"))))

  it.live("multistream-select §Protocol: the header, then a malformed length prefix (10 continuation bytes)", () =>
    refusedPromptly(concat(Multistream.HEADER_FRAME, new Uint8Array(10).fill(0xff))))

  it.live("multistream-select §Protocol: the header, then a message that is not UTF-8", () =>
    refusedPromptly(concat(Multistream.HEADER_FRAME, Uint8Array.of(3, 0xff, 0xfe, 0x0a))))

  it.live("multistream-select §Protocol: the header, then garbage: refused at once after FIN, else by an error or the deadline", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: SHORT_UPGRADE })
      yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7, 8], (seed) =>
        Effect.gen(function*() {
          // garbage may announce a message longer than what follows: the node waits for it, within the deadline
          const open = yield* connect(node.addr)
          yield* open.send(Multistream.HEADER_FRAME, randomBytes(64, seed))
          yield* expectClosed(open, AFTER_SHORT_UPGRADE)
          // with FIN after it, nothing more can come: refused well before the deadline
          const fin = yield* connect(node.addr)
          yield* fin.send(Multistream.HEADER_FRAME, randomBytes(64, seed))
          yield* fin.end
          const closed = yield* expectClosed(fin, AFTER_SHORT_UPGRADE)
          expect(closed.elapsed).toBeLessThan(500)
        }), { concurrency: "unbounded" })
      yield* expectUpgradeFailures(node, 16, ["SecurityNegotiation", "Timeout"])
      yield* expectHealthy(node, 0)
    }))

  it.live("connections spec §multistream-select (1 KiB limit): an over-long message is refused from its length prefix alone", () =>
    Effect.gen(function*() {
      // only the prefix: the node must not wait for (or buffer) the body
      yield* refusedPromptly(concat(Multistream.HEADER_FRAME, Varint.encode(Multistream.MAX_MESSAGE_LENGTH + 1)))
      // and a whole over-long message
      const body = new Uint8Array(4096).fill(0x61)
      body[body.length - 1] = 0x0a
      yield* refusedPromptly(concat(Multistream.HEADER_FRAME, Varint.encode(body.length), body))
      // an over-long header too
      yield* refusedPromptly(concat(Varint.encode(1 << 20), randomBytes(1024, 5)))
    }))

  it.live("multistream-select §Protocol: endless proposals of unknown protocols are cut off at the proposal bound, before the deadline", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: SHORT_UPGRADE })
      const attacker = yield* connect(node.addr)
      yield* attacker.send(Multistream.HEADER_FRAME)
      const proposals = Buffer.concat(Array.from({ length: 200 }, (_, i) => msMessage(`/unknown/${i}`)))
      // keep proposing (and reading the answers) as long as the node lets us
      const flood = Effect.gen(function*() {
        while (!attacker.isClosed()) {
          yield* attacker.send(proposals)
          yield* Effect.sleep("5 millis")
        }
      })
      const [closed] = yield* Effect.all([expectClosed(attacker, AFTER_SHORT_UPGRADE), flood], {
        concurrency: "unbounded"
      })
      // the node answered na to at most DEFAULT_MAX_PROPOSALS proposals, then refused the connection. How many
      // of those answers reach the attacker is up to timing: the node closes while the flood still fills its
      // receive buffer, so its kernel resets the connection and the attacker's unread bytes are dropped. The
      // node's own failure says it stopped at the bound.
      const nas = Math.floor((closed.received - Multistream.HEADER_FRAME.byteLength) / Multistream.NA_FRAME.byteLength)
      expect(nas).toBeLessThanOrEqual(Multistream.DEFAULT_MAX_PROPOSALS)
      expect(closed.elapsed).toBeLessThan(500)
      const [failure] = yield* expectUpgradeFailures(node, 1, ["SecurityNegotiation"])
      expect(failure?.chain).toContain("TooManyProposals")
      yield* expectHealthy(node, 0)
    }))
})

describe("bad input: connections that never speak", () => {
  it.live("connections spec §Upgrading: a silent connection is closed at the upgrade deadline", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: SHORT_UPGRADE })
      const attacker = yield* connect(node.addr)
      const closed = yield* expectClosed(attacker, AFTER_SHORT_UPGRADE)
      expect(closed.elapsed).toBeGreaterThanOrEqual(900)
      expect(closed.received).toBe(0)
      yield* expectUpgradeFailures(node, 1, ["Timeout"])
      yield* expectHealthy(node, 0)
    }))

  it.live("connections spec §Upgrading: stalling after the multistream header, or inside the Noise handshake, hits the same deadline", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: SHORT_UPGRADE })
      const stalls: ReadonlyArray<(a: Attacker) => Effect.Effect<void, unknown>> = [
        // header only
        (a) => a.send(Multistream.HEADER_FRAME),
        // half a proposal
        (a) => a.send(Multistream.HEADER_FRAME, msMessage("/noise").subarray(0, 3)),
        // /noise agreed, then nothing
        (a) => negotiate(a, Noise.PROTOCOL),
        // Noise message 1, then nothing (the node's message 2 goes unanswered)
        (a) =>
          Effect.gen(function*() {
            yield* negotiate(a, Noise.PROTOCOL)
            const hs = HandshakeState.make({ initiator: true, staticKeyPair: X25519.generate() })
            const m1 = hs.writeMessage(new Uint8Array(0))
            if (m1._tag === "Success") yield* a.send(noiseFrame(m1.success))
          }),
        // a Noise length prefix announcing 65535 bytes, then 100 of them
        (a) =>
          Effect.gen(function*() {
            yield* negotiate(a, Noise.PROTOCOL)
            yield* a.send(Uint8Array.of(0xff, 0xff), randomBytes(100, 9))
          })
      ]
      yield* Effect.forEach(stalls, (stall) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* stall(attacker)
          const closed = yield* expectClosed(attacker, AFTER_SHORT_UPGRADE)
          expect(closed.elapsed).toBeGreaterThanOrEqual(500)
        }), { concurrency: "unbounded" })
      yield* expectUpgradeFailures(node, stalls.length, ["Timeout"])
      yield* expectHealthy(node, 0)
    }))
})

describe("bad input: many at once", () => {
  it.live("connections spec §Upgrading: 200 junk connections in parallel; the node survives, answers a ping and holds nothing afterwards", () =>
    Effect.gen(function*() {
      // every junk connection must reach the upgrade: loopback is exempted from the per-source
      // shares of the handshake pool (which would refuse all but 64 of them at once, see spec-tests/abuse/)
      const node = yield* watchedNode({
        upgradeTimeout: SHORT_UPGRADE,
        resources: { fairness: { allow: [ma("/ip4/127.0.0.0/ipcidr/8")] } }
      })
      // one well-behaved peer stays connected throughout
      const good = yield* tcpNode()
      yield* good.ping.ping(node.addr)
      yield* Effect.sleep("100 millis")
      const before = yield* settledResources
      const kinds: ReadonlyArray<(a: Attacker, i: number) => Effect.Effect<void, unknown>> = [
        () => Effect.void, // silent
        (a, i) => a.send(randomBytes(1 + (i * 37) % 2048, i)), // random, kept open
        (a, i) => Effect.andThen(a.send(randomBytes(1 + (i * 53) % 4096, i)), a.end), // random, then FIN
        (a, i) => a.send(Multistream.HEADER_FRAME, randomBytes(32, i)), // header, then garbage
        (a) => Effect.andThen(negotiate(a, Noise.PROTOCOL), a.send(Uint8Array.of(0, 5), randomBytes(5, 1))) // short Noise message
      ]
      const N = 200
      const closed = yield* Effect.forEach(Array.from({ length: N }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* Effect.ignore(kinds[i % kinds.length]!(attacker, i))
          return yield* expectClosed(attacker, "8 seconds")
        }), { concurrency: "unbounded" })
      expect(closed).toHaveLength(N)
      yield* expectUpgradeFailures(node, N, ["SecurityNegotiation", "Security", "Timeout"])
      // every socket and timer of the junk is gone from the process
      yield* expectResourcesBack(before)
      // the good peer's connection survived all of it
      expect(yield* good.ping.ping(node.host.peerId)).toHaveLength(1)
      yield* expectHealthy(node, 1)
    }))
})
