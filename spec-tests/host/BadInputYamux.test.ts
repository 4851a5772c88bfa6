/**
 * Bad yamux frames after a valid Noise handshake, at node level over TCP
 * (yamux spec §Framing, §Flow Control, §StreamID Field, §Session termination;
 * ARCHITECTURE.md §5). The attacker completes multistream-select and the Noise
 * handshake with our own codec modules, agrees on `/yamux/1.0.0` (in the
 * handshake, or by multistream-select inside the Noise session), then sends
 * one bad frame. Our node must answer with GoAway (protocol error, code 1),
 * close the connection, remove it from `host.connections()` and publish
 * `ConnectionClose` / `PeerDisconnect`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import {
  connect,
  eventsFor,
  eventually,
  expectClosed,
  expectHealthy,
  expectResourcesBack,
  msMessage,
  negotiateSecure,
  noiseInitiator,
  plainReader,
  recordEvents,
  type SecureSession,
  settledResources,
  type WatchedNode,
  watchedNode,
  yamuxFrame,
  yamuxReader
} from "../support/attacker.ts"

const PROMPT = "3 seconds"

/**
 * A yamux session with the node, the attacker being the client (odd stream
 * ids); returns once the node has registered the connection.
 */
const yamuxSession = (node: WatchedNode, options: { readonly earlyMuxer: boolean }) =>
  Effect.gen(function*() {
    const identity = yield* Keys.generate("Ed25519")
    const peer = PeerId.fromPrivateKey(identity)
    const attacker = yield* connect(node.addr)
    const session = yield* noiseInitiator(attacker, { identity, muxers: options.earlyMuxer ? [Yamux.PROTOCOL] : [] })
    const plain = plainReader(session)
    if (!options.earlyMuxer) yield* negotiateSecure(session, plain, Yamux.PROTOCOL)
    const up = yield* eventually(Effect.sync(() => node.host.connections(peer).length === 1))
    expect(up).toBe(true)
    return { attacker, session, peer, frames: yamuxReader(plain) }
  })

/**
 * Run `attack` on a fresh yamux session: the node answers GoAway(protocol
 * error), closes the connection promptly and forgets it.
 */
const expectProtocolError = (
  node: WatchedNode,
  events: ReadonlyArray<import("../../src/host/Host.ts").HostEvent>,
  attack: (session: SecureSession) => Effect.Effect<void>,
  options: { readonly earlyMuxer: boolean } = { earlyMuxer: true }
) =>
  Effect.gen(function*() {
    const { attacker, frames, peer, session } = yield* yamuxSession(node, options)
    yield* attack(session)
    const [goAway, closed] = yield* Effect.all([frames.untilGoAway, expectClosed(attacker, PROMPT)], {
      concurrency: "unbounded"
    })
    expect(goAway).toBe(Frame.GO_AWAY_PROTOCOL_ERROR)
    expect(closed.elapsed).toBeLessThan(2000)
    expect(yield* eventually(Effect.sync(() => node.host.connections(peer).length === 0))).toBe(true)
    yield* eventually(Effect.sync(() => eventsFor(events, "PeerDisconnect", peer) === 1))
    expect(eventsFor(events, "ConnectionOpen", peer)).toBe(1)
    expect(eventsFor(events, "ConnectionClose", peer)).toBe(1)
    expect(eventsFor(events, "PeerDisconnect", peer)).toBe(1)
  })

const { FLAG_ACK, FLAG_FIN, FLAG_SYN, TYPE_DATA, TYPE_GO_AWAY, TYPE_PING, TYPE_WINDOW_UPDATE } = Frame

describe("bad input: yamux after a valid Noise handshake", () => {
  it.live("yamux §Flow Control: a data frame beyond the stream's window ends the session with GoAway(protocol error)", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const events = yield* recordEvents(node)
      // SYN, then 256 KiB + 1 bytes with the 256 KiB initial window
      const payload = new Uint8Array(Frame.INITIAL_WINDOW + 1).fill(0x5a)
      yield* expectProtocolError(node, events, (s) =>
        Effect.andThen(
          s.send(yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0)),
          s.send(yamuxFrame(TYPE_DATA, 0, 1, payload.byteLength, payload))
        ))
      // the same with the SYN on the data frame itself
      yield* expectProtocolError(
        node,
        events,
        (s) => s.send(yamuxFrame(TYPE_DATA, FLAG_SYN, 1, payload.byteLength, payload))
      )
      // (An overflow spread over two frames that each fit is not tested here: the node credits the window
      // as its stream handler consumes the first frame, so whether the second one overflows is a race.)
      yield* expectHealthy(node, 0)
    }))

  it.live("yamux §StreamID Field: frames naming a stream that was never opened end the session with GoAway(protocol error)", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const events = yield* recordEvents(node)
      const attacks: ReadonlyArray<(s: SecureSession) => Effect.Effect<void>> = [
        // a window update for an odd (our side's) stream never opened
        (s) => s.send(yamuxFrame(TYPE_WINDOW_UPDATE, 0, 101, 1024)),
        // data without SYN on a stream never opened
        (s) => s.send(yamuxFrame(TYPE_DATA, 0, 103, 4, Uint8Array.of(1, 2, 3, 4))),
        // a stream id of the node's parity it never opened
        (s) => s.send(yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_ACK, 1000, 0)),
        // a SYN with the node's parity
        (s) => s.send(yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_SYN, 2000, 0)),
        // stream 0 carries no data
        (s) => s.send(yamuxFrame(TYPE_DATA, FLAG_SYN, 0, 1, Uint8Array.of(0)))
      ]
      const before = yield* settledResources
      for (const attack of attacks) yield* expectProtocolError(node, events, attack)
      // no socket or timer (keep-alive, identify, stream negotiation) of those sessions is left behind
      yield* expectResourcesBack(before)
      yield* expectHealthy(node, 0)
    }))

  it.live("yamux §Framing: a bad version byte or an unknown frame type ends the session with GoAway(protocol error)", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const events = yield* recordEvents(node)
      const withByte = (at: number, value: number) => {
        const f = yamuxFrame(TYPE_PING, FLAG_SYN, 0, 1)
        f[at] = value
        return f
      }
      for (const bad of [withByte(0, 1), withByte(0, 0xff), withByte(1, 4), withByte(1, 0xff)]) {
        yield* expectProtocolError(node, events, (s) => s.send(bad))
      }
      // a bad version after a valid frame in the same message, and in the muxer negotiated by multistream-select
      yield* expectProtocolError(
        node,
        events,
        (s) => s.send(Buffer.concat([yamuxFrame(TYPE_PING, FLAG_SYN, 0, 2), withByte(0, 2)])),
        { earlyMuxer: false }
      )
      yield* expectHealthy(node, 0)
    }))

  it.live("yamux §Framing: a data frame length over every window we grant ends the session at its header", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const events = yield* recordEvents(node)
      // only the header: the node must not wait for (or buffer) 16 MiB + 1 or 4 GiB of payload
      for (const length of [Yamux.defaults.maxStreamWindow + 1, Frame.MAX_UINT32]) {
        yield* expectProtocolError(node, events, (s) => s.send(yamuxFrame(TYPE_DATA, FLAG_SYN, 1, length)))
      }
      yield* expectHealthy(node, 0)
    }))

  it.live("yamux §Closing: data after FIN, a SYN reusing an open id, pings and GoAways on a stream end the session", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const events = yield* recordEvents(node)
      const attacks: ReadonlyArray<(s: SecureSession) => Effect.Effect<void>> = [
        (s) =>
          s.send(Buffer.concat([
            yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_SYN | FLAG_FIN, 1, 0),
            yamuxFrame(TYPE_DATA, 0, 1, 3, Uint8Array.of(1, 2, 3))
          ])),
        (s) =>
          s.send(
            Buffer.concat([
              yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0),
              yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_SYN, 1, 0)
            ])
          ),
        (s) => s.send(yamuxFrame(TYPE_PING, FLAG_SYN, 5, 1)),
        (s) => s.send(yamuxFrame(TYPE_GO_AWAY, 0, 7, 0)),
        (s) => s.send(yamuxFrame(TYPE_PING, 0, 0, 1)) // neither SYN nor ACK
      ]
      for (const attack of attacks) yield* expectProtocolError(node, events, attack)
      yield* expectHealthy(node, 0)
    }))

  it.live("yamux §ACK backlog: a flood of 3,000 new streams is bounded by the inbound stream limit; the node stays healthy", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const { attacker, peer, session } = yield* yamuxSession(node, { earlyMuxer: true })
      const syns = Buffer.concat(
        Array.from({ length: 3000 }, (_, i) => yamuxFrame(TYPE_WINDOW_UPDATE, FLAG_SYN, 2 * i + 1, 0))
      )
      yield* session.send(syns)
      // the node holds at most its inbound limit of streams (refusing the rest with RST) or ends the session
      let most = 0
      for (let i = 0; i < 50; i++) {
        const conn = node.host.connections(peer)[0]
        if (conn === undefined) break
        most = Math.max(most, conn.streamCount())
        yield* Effect.sleep("10 millis")
      }
      expect(most).toBeLessThanOrEqual(Yamux.defaults.maxInboundStreams)
      attacker.socket.destroy()
      expect(yield* eventually(Effect.sync(() => node.host.connections(peer).length === 0))).toBe(true)
      yield* expectHealthy(node, 0)
    }))

  it.live("connections spec §Upgrading: muxer negotiation inside Noise: garbage or endless unknown muxers fail it (MuxerNegotiation, the latter at the 32-proposal bound), silence hits the deadline", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode({ upgradeTimeout: "1 second" })
      const identity = yield* Keys.generate("Ed25519")
      const attacks: ReadonlyArray<readonly [(s: SecureSession) => Effect.Effect<void>, string]> = [
        [
          (s) => s.send(Buffer.concat([Multistream.HEADER_FRAME, Uint8Array.of(4), Buffer.from("abcd")])),
          "MuxerNegotiation"
        ],
        [(s) => s.send(msMessage("/yamux/1.0.0")), "MuxerNegotiation"], // a proposal without the header
        [() => Effect.void, "Timeout"],
        [
          (s) =>
            s.send(
              Buffer.concat([
                Multistream.HEADER_FRAME,
                ...Array.from({ length: 500 }, (_, i) => msMessage(`/mplex/${i}`))
              ])
            ),
          "MuxerNegotiation"
        ]
      ]
      yield* Effect.forEach(attacks, ([attack]) =>
        Effect.gen(function*() {
          const attacker = yield* connect(node.addr)
          // no muxer offered in the handshake: it has to be negotiated inside the Noise session
          const session = yield* noiseInitiator(attacker, { identity, muxers: [] })
          yield* attack(session)
          yield* expectClosed(attacker, "4 seconds")
        }), { concurrency: "unbounded" })
      const upgrades = () => node.failures().filter((f) => f.tag === "UpgradeError")
      yield* eventually(Effect.sync(() => upgrades().length >= attacks.length))
      expect(upgrades().map((f) => f.reason).sort()).toEqual(attacks.map(([, r]) => r).sort())
      expect(node.host.connections()).toHaveLength(0)
      yield* expectHealthy(node, 0)
    }))
})
