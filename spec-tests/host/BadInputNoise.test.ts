/**
 * Bad input in the Noise handshake and transport, at node level over TCP
 * (noise-libp2p spec §Handshake Pattern, §The libp2p Handshake Payload,
 * §Static Key Authentication, §Wire Format, §Encryption and I/O;
 * ARCHITECTURE.md §5). The attacker speaks valid multistream-select and
 * drives our own HandshakeState by hand, so that each bad message lands
 * exactly where the test wants it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
import {
  type Attacker,
  connect,
  eventsFor,
  eventually,
  expectClosed,
  expectHealthy,
  handshakePayload,
  listenOnce,
  msMessage,
  negotiate,
  negotiateResponder,
  noiseFrame,
  noiseInitiator,
  randomBytes,
  readNoiseMessage,
  recordEvents,
  type WatchedNode,
  watchedNode,
  yamuxFrame
} from "../support/attacker.ts"
import { chain } from "../support/errors.ts"
import { ma } from "../support/multiaddr.ts"

const PROMPT = "3 seconds"

/** The node logged exactly `n` typed inbound upgrade failures (`UpgradeError`), each with `reason`; returns their chains. */
const expectUpgradeFailures = (node: WatchedNode, n: number, reason: string) =>
  Effect.gen(function*() {
    const upgrades = () => node.failures().filter((f) => f.tag === "UpgradeError")
    yield* eventually(Effect.sync(() => upgrades().length >= n))
    const failures = upgrades()
    expect(failures).toHaveLength(n)
    for (const f of failures) {
      expect(f.tag).toBe("UpgradeError")
      expect(f.reason).toBe(reason)
    }
    return failures.map((f) => f.chain)
  })

const unwrap = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)

/** Multistream `/noise`, then Noise message 1 from a fresh initiator. */
const afterMessage1 = (attacker: Attacker) =>
  Effect.gen(function*() {
    yield* negotiate(attacker, Noise.PROTOCOL)
    const staticKeyPair = X25519.generate()
    const hs = HandshakeState.make({ initiator: true, staticKeyPair })
    yield* attacker.send(noiseFrame(unwrap(hs.writeMessage(new Uint8Array(0)))))
    return { hs, staticKeyPair }
  })

describe("bad input: Noise handshake (inbound)", () => {
  it.live("noise-libp2p §Static Key Authentication: message 3 signed over another static key is refused (InvalidSignature)", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const events = yield* recordEvents(node)
      const identity = yield* Keys.generate("Ed25519")
      const attacker = yield* connect(node.addr)
      yield* noiseInitiator(attacker, { identity, signWrongStatic: true })
      const closed = yield* expectClosed(attacker, PROMPT)
      expect(closed.elapsed).toBeLessThan(2000)
      const [failure] = yield* expectUpgradeFailures(node, 1, "Security")
      expect(failure).toContain("InvalidSignature")
      // never a connection, never a peer:connect for that identity
      expect(eventsFor(events, "ConnectionOpen", PeerId.fromPrivateKey(identity))).toBe(0)
      expect(eventsFor(events, "PeerConnect", PeerId.fromPrivateKey(identity))).toBe(0)
      yield* expectHealthy(node, 0)
    }))

  it.live("noise-libp2p §The libp2p Handshake Payload: a message-3 payload that is not the protobuf, or lacks the key or signature, is refused", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const identity = yield* Keys.generate("Ed25519")
      const other = yield* Keys.generate("Secp256k1")
      const payloads: ReadonlyArray<Uint8Array> = [
        randomBytes(200, 77), // not a protobuf
        new Uint8Array(0), // no identity key
        Uint8Array.of(0x0a, 0x03, 0x08, 0x01, 0x12), // a truncated PublicKey
        // a key of one peer with the signature of another
        handshakePayload({ identity, signer: other, signedStatic: new Uint8Array(32) })
      ]
      yield* Effect.forEach(payloads, (payload3) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* noiseInitiator(attacker, { identity, payload3 })
          yield* expectClosed(attacker, PROMPT)
        }), { concurrency: "unbounded" })
      const messages = yield* expectUpgradeFailures(node, payloads.length, "Security")
      for (const m of messages) expect(m.includes("InvalidPayload") || m.includes("InvalidSignature")).toBe(true)
      yield* expectHealthy(node, 0)
    }))

  it.live("noise-libp2p §Wire Format: a message 1 too short for an ephemeral key, or empty, is refused at once", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      yield* Effect.forEach(
        [new Uint8Array(0), randomBytes(5, 3), randomBytes(31, 4)],
        (message) =>
          Effect.gen(function*() {
            const attacker = yield* connect(node.addr)
            yield* negotiate(attacker, Noise.PROTOCOL)
            yield* attacker.send(noiseFrame(message))
            yield* expectClosed(attacker, PROMPT)
          }),
        { concurrency: "unbounded" }
      )
      const messages = yield* expectUpgradeFailures(node, 3, "Security")
      for (const m of messages) expect(m).toContain("InvalidPayload")
      yield* expectHealthy(node, 0)
    }))

  it.live("Noise §12.1 (DH): ephemeral or static X25519 keys of small order are refused with a typed error", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const zero = new Uint8Array(32)
      const one = new Uint8Array(32)
      one[0] = 1
      // message 1 whose ephemeral key is a point of small order
      const ephemerals = [zero, one]
      yield* Effect.forEach(ephemerals, (e) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* negotiate(attacker, Noise.PROTOCOL)
          yield* attacker.send(noiseFrame(e))
          yield* expectClosed(attacker, PROMPT)
        }), { concurrency: "unbounded" })
      // message 3 whose (encrypted, signed) static key is a point of small order
      const identity = yield* Keys.generate("Ed25519")
      const attacker = yield* connect(node.addr)
      yield* negotiate(attacker, Noise.PROTOCOL)
      const staticKeyPair = { ...X25519.generate(), publicRaw: zero }
      const hs = HandshakeState.make({ initiator: true, staticKeyPair })
      yield* attacker.send(noiseFrame(unwrap(hs.writeMessage(new Uint8Array(0)))))
      unwrap(hs.readMessage(yield* readNoiseMessage(attacker)))
      yield* attacker.send(noiseFrame(unwrap(hs.writeMessage(handshakePayload({ identity, signedStatic: zero })))))
      yield* expectClosed(attacker, PROMPT)
      const messages = yield* expectUpgradeFailures(node, 3, "Security")
      for (const m of messages) expect(m).toContain("InvalidPayload")
      yield* expectHealthy(node, 0)
    }))

  it.live("noise-libp2p §Wire Format: maximum-length garbage messages (65535 bytes) are refused, nothing is buffered beyond them", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      // message 1 may carry a payload (unauthenticated in XX): 32 key bytes and 65503 garbage bytes are read as one
      const attacker = yield* connect(node.addr)
      yield* negotiate(attacker, Noise.PROTOCOL)
      yield* attacker.send(noiseFrame(randomBytes(65535, 11)))
      // so the node answers with message 2 …
      const message2 = yield* Effect.result(readNoiseMessage(attacker))
      expect(Result.isSuccess(message2)).toBe(true)
      // … and the garbage message 3 that follows cannot authenticate (the one after it is never read)
      yield* attacker.send(noiseFrame(randomBytes(65535, 12)), noiseFrame(randomBytes(65535, 13)))
      yield* expectClosed(attacker, PROMPT)
      const [failure] = yield* expectUpgradeFailures(node, 1, "Security")
      expect(failure).toContain("Decrypt")
      yield* expectHealthy(node, 0)
    }))

  it.live("noise-libp2p §Handshake Pattern: a handshake cut short by EOF (in message 1, before or inside message 3) fails at once", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const cuts: ReadonlyArray<(a: Attacker) => Effect.Effect<void, unknown>> = [
        // half of message 1 (length prefix says 32)
        (a) => Effect.andThen(negotiate(a, Noise.PROTOCOL), a.send(Uint8Array.of(0, 32), randomBytes(16, 1))),
        // one byte of the length prefix
        (a) => Effect.andThen(negotiate(a, Noise.PROTOCOL), a.send(Uint8Array.of(0))),
        // message 1, then EOF instead of message 3
        (a) => Effect.asVoid(afterMessage1(a)),
        // message 1, read message 2, then half of message 3
        (a) =>
          Effect.gen(function*() {
            const { hs, staticKeyPair } = yield* afterMessage1(a)
            unwrap(hs.readMessage(yield* readNoiseMessage(a)))
            const identity = yield* Keys.generate("Ed25519")
            const m3 = noiseFrame(
              unwrap(hs.writeMessage(handshakePayload({ identity, signedStatic: staticKeyPair.publicRaw })))
            )
            yield* a.send(m3.subarray(0, m3.byteLength >> 1))
          })
      ]
      yield* Effect.forEach(cuts, (cut) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          yield* cut(attacker)
          yield* attacker.end
          const closed = yield* expectClosed(attacker, PROMPT)
          expect(closed.elapsed).toBeLessThan(2000)
        }), { concurrency: "unbounded" })
      const messages = yield* expectUpgradeFailures(node, cuts.length, "Security")
      for (const m of messages) expect(m).toContain("Closed")
      yield* expectHealthy(node, 0)
    }))
})

describe("bad input: Noise handshake (outbound)", () => {
  /** A listener that plays a Noise responder authenticating as `identity` (optionally with a bad signature). */
  const fakeResponder = (identity: Keys.PrivateKey, options: { readonly badSignature?: boolean } = {}) =>
    listenOnce((attacker) =>
      Effect.gen(function*() {
        yield* negotiateResponder(attacker, Noise.PROTOCOL)
        const staticKeyPair = X25519.generate()
        const hs = HandshakeState.make({ initiator: false, staticKeyPair })
        unwrap(hs.readMessage(yield* readNoiseMessage(attacker)))
        const signedStatic = options.badSignature === true ? X25519.generate().publicRaw : staticKeyPair.publicRaw
        const payload = handshakePayload({ identity, signedStatic, muxers: [Yamux.PROTOCOL] })
        yield* attacker.send(noiseFrame(unwrap(hs.writeMessage(payload))))
      })
    )

  it.live("noise-libp2p §SecureOutbound: a remote that authenticates as another peer than dialed fails the dial with PeerIdMismatch", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const events = yield* recordEvents(node)
      const impostor = yield* Keys.generate("Ed25519")
      const expected = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const fake = yield* fakeResponder(impostor)
      const target = Multiaddr.encapsulate(fake.addr, ma(`/p2p/${PeerId.toString(expected)}`))
      const err = yield* Effect.flip(node.host.dial(target))
      expect(chain(err)).toEqual(["DialError", "UpgradeError", "PeerIdMismatch", "SecurityError", "PeerIdMismatch"])
      expect(err.message).toContain(PeerId.toString(PeerId.fromPrivateKey(impostor)))
      // the node hung up on the impostor
      const attacker = yield* fake.served
      yield* expectClosed(attacker, PROMPT)
      expect(node.host.connections()).toHaveLength(0)
      expect(eventsFor(events, "ConnectionOpen", PeerId.fromPrivateKey(impostor))).toBe(0)
      // the failed dial is not remembered as pending: a new dial to the same peer fails fast
      const again = yield* Effect.flip(node.host.dial(target))
      expect(chain(again)).not.toContain("PeerIdMismatch")
      yield* expectHealthy(node, 0)
    }))

  it.live("noise-libp2p §Static Key Authentication: a responder whose signature does not verify fails the dial (Upgrade), the socket is closed", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const identity = yield* Keys.generate("Ed25519")
      const fake = yield* fakeResponder(identity, { badSignature: true })
      const target = Multiaddr.encapsulate(fake.addr, ma(`/p2p/${PeerId.toString(PeerId.fromPrivateKey(identity))}`))
      const err = yield* Effect.flip(node.host.dial(target))
      expect(chain(err)).toEqual(["DialError", "UpgradeError", "Security", "SecurityError", "InvalidSignature"])
      yield* expectClosed(yield* fake.served, PROMPT)
      expect(node.host.connections()).toHaveLength(0)
      yield* expectHealthy(node, 0)
    }))
})

describe("bad input: a remote that misbehaves before Noise (outbound)", () => {
  it.live("connections spec §Upgrading: a remote that accepts and never answers fails the dial at the upgrade deadline; concurrent dials share it", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "1 second" })
      const fake = yield* listenOnce(() => Effect.never)
      const peer = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const target = Multiaddr.encapsulate(fake.addr, ma(`/p2p/${PeerId.toString(peer)}`))
      const [a, b] = yield* Effect.all([Effect.flip(node.host.dial(target)), Effect.flip(node.host.dial(target))], {
        concurrency: "unbounded"
      })
      expect(chain(a)).toEqual(["DialError", "UpgradeError", "Timeout"])
      expect(b).toBe(a)
      yield* expectClosed(yield* fake.served, "2 seconds")
      expect(node.host.connections()).toHaveLength(0)
      yield* expectHealthy(node, 0)
    }))

  it.live("multistream-select §Protocol: a remote that refuses /noise, or answers garbage, fails the dial at once", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const answers: ReadonlyArray<Uint8Array> = [
        Buffer.concat([Multistream.HEADER_FRAME, Multistream.NA_FRAME]), // na
        Buffer.concat([Multistream.HEADER_FRAME, msMessage("/tls/1.0.0")]), // another protocol than proposed
        randomBytes(100, 1), // garbage
        Varint.encode(1 << 20) // an over-long header
      ]
      for (const answer of answers) {
        const fake = yield* listenOnce((a) => Effect.andThen(a.read(1), a.send(answer)))
        const err = yield* Effect.flip(node.host.dial(fake.addr))
        expect(chain(err).slice(0, 4)).toEqual(["DialError", "UpgradeError", "SecurityNegotiation", "MultistreamError"])
        yield* expectClosed(yield* fake.served, PROMPT)
      }
      expect(node.host.connections()).toHaveLength(0)
      yield* expectHealthy(node, 0)
    }))
})

describe("bad input: Noise transport", () => {
  /** A complete handshake; waits until the node registered the connection. Returns the session and the attacker's peer id. */
  const established = (node: WatchedNode) =>
    Effect.gen(function*() {
      const identity = yield* Keys.generate("Ed25519")
      const peer = PeerId.fromPrivateKey(identity)
      const attacker = yield* connect(node.addr)
      const session = yield* noiseInitiator(attacker, { identity })
      const up = yield* eventually(Effect.sync(() => node.host.connections(peer).length === 1))
      expect(up).toBe(true)
      return { session, attacker, peer }
    })

  const ping = yamuxFrame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 7)

  it.live("noise-libp2p §Encryption and I/O: a tampered transport message (ciphertext or tag bit flipped) closes the connection", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const events = yield* recordEvents(node)
      const tampers: ReadonlyArray<(frame: Uint8Array) => void> = [
        (f) => void (f[2] = f[2]! ^ 0x01), // first ciphertext byte
        (f) => void (f[f.length - 1] = f[f.length - 1]! ^ 0x80) // last tag byte
      ]
      let baseline = 0
      for (const tamper of tampers) {
        const { attacker, peer, session } = yield* established(node)
        // one good message first: the session works
        yield* session.send(ping)
        const frame = session.encrypt(ping)
        tamper(frame)
        yield* attacker.send(frame)
        yield* expectClosed(attacker, PROMPT)
        const gone = yield* eventually(Effect.sync(() => node.host.connections(peer).length === 0))
        expect(gone).toBe(true)
        yield* eventually(Effect.sync(() => eventsFor(events, "ConnectionClose", peer) === 1))
        expect(eventsFor(events, "ConnectionClose", peer)).toBe(1)
        expect(eventsFor(events, "PeerDisconnect", peer)).toBe(1)
        baseline = yield* expectHealthy(node, baseline)
      }
    }))

  it.live("noise-libp2p §Wire Format: a transport message shorter than its tag, or cut by EOF, closes the connection", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "10 seconds" })
      const bads: ReadonlyArray<
        (session: { readonly encrypt: (p: Uint8Array) => Uint8Array }, a: Attacker) => Effect.Effect<void>
      > = [
        (_, a) => a.send(noiseFrame(randomBytes(10, 1))), // 10 bytes < 16-byte tag
        (_, a) => a.send(noiseFrame(new Uint8Array(0))), // empty
        (s, a) => Effect.andThen(a.send(s.encrypt(ping).subarray(0, 9)), a.end), // half a message, then EOF
        (_, a) => a.send(noiseFrame(randomBytes(65535, 2))) // a maximum-length forgery
      ]
      let baseline = 0
      for (const bad of bads) {
        const { attacker, peer, session } = yield* established(node)
        yield* bad(session, attacker)
        yield* expectClosed(attacker, PROMPT)
        expect(yield* eventually(Effect.sync(() => node.host.connections(peer).length === 0))).toBe(true)
        baseline = yield* expectHealthy(node, baseline)
      }
    }))
})
