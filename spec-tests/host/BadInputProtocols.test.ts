/**
 * Bad behaviour above the muxer, at node level over TCP: a peer that answers
 * our identify request with an over-long message (identify spec §identify:
 * the message is length-prefixed; ARCHITECTURE.md §3 "identify ≤ 8 KiB"), and
 * a peer that never answers an identify push (identify spec §identify/push).
 * The offending stream is reset or abandoned; the connection and the node
 * carry on (ARCHITECTURE.md §5).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import {
  connect,
  eventually,
  expectHealthy,
  msMessage,
  noiseInitiator,
  plainReader,
  watchedNode,
  yamuxFrame,
  yamuxReader
} from "../support/attacker.ts"
import { tcpNode } from "../support/node.ts"

const IDENTIFY = "/ipfs/id/1.0.0"

describe("bad input: protocols on an established connection", () => {
  it.live("identify spec §identify: an identify answer over the size limit resets that stream only; the connection stays", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      const identity = yield* Keys.generate("Ed25519")
      const peer = PeerId.fromPrivateKey(identity)
      const attacker = yield* connect(node.addr)
      const session = yield* noiseInitiator(attacker, { identity })
      const frames = yamuxReader(plainReader(session))
      // the node identifies every new connection: its first stream (SYN) is the identify request
      let sid = 0
      while (sid === 0) {
        const f = yield* frames.next
        if ((f.header.flags & Frame.FLAG_SYN) !== 0 && f.header.streamId !== 0) sid = f.header.streamId
      }
      // answer: header, the echo, then a length prefix of 1 MiB and some of it
      const answer = Buffer.concat([
        Multistream.HEADER_FRAME,
        msMessage(IDENTIFY),
        Varint.encode(1024 * 1024),
        new Uint8Array(16 * 1024).fill(0x0a)
      ])
      yield* session.send(yamuxFrame(Frame.TYPE_DATA, Frame.FLAG_ACK, sid, answer.byteLength, answer))
      // the node resets that stream …
      let reset = false
      while (!reset) {
        const f = yield* frames.next
        reset = f.header.streamId === sid && (f.header.flags & Frame.FLAG_RST) !== 0
      }
      expect(reset).toBe(true)
      // … and the connection is still up: a yamux ping is answered, the host still lists it
      yield* session.send(yamuxFrame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 4242))
      let pong = false
      while (!pong) {
        const f = yield* frames.next
        pong = f.header.type === Frame.TYPE_PING && (f.header.flags & Frame.FLAG_ACK) !== 0 && f.header.length === 4242
      }
      expect(node.host.connections(peer)).toHaveLength(1)
      // the node learnt nothing from the bad answer
      expect(node.peerstore.get(peer)?.protocols ?? []).toEqual([])
      attacker.socket.destroy()
      expect(yield* eventually(Effect.sync(() => node.host.connections(peer).length === 0))).toBe(true)
      yield* expectHealthy(node, 0)
    }))

  it.live("identify spec §identify/push: a peer that never answers a push does not stall later pushes to other peers", () =>
    Effect.gen(function*() {
      const node = yield* watchedNode()
      // a peer that completes the upgrade, then answers yamux pings (so the keep-alive keeps it) and nothing else
      const identity = yield* Keys.generate("Ed25519")
      const attacker = yield* connect(node.addr)
      const session = yield* noiseInitiator(attacker, { identity })
      const frames = yamuxReader(plainReader(session))
      yield* Effect.forkScoped(Effect.ignore(Effect.forever(Effect.gen(function*() {
        const f = yield* frames.next
        if (f.header.type === Frame.TYPE_PING && (f.header.flags & Frame.FLAG_SYN) !== 0) {
          yield* session.send(yamuxFrame(Frame.TYPE_PING, Frame.FLAG_ACK, 0, f.header.length))
        }
      }))))
      expect(yield* eventually(Effect.sync(() => node.host.connections(PeerId.fromPrivateKey(identity)).length === 1)))
        .toBe(true)
      // a well-behaved peer
      const good = yield* tcpNode()
      yield* good.ping.ping(node.addr)
      const learnt = (protocol: string) =>
        Effect.sync(() => good.peerstore.get(node.host.peerId)?.protocols.includes(protocol) === true)
      yield* node.registrar.handle("/test/one/1.0.0", () => Effect.void)
      expect(yield* eventually(learnt("/test/one/1.0.0"), "5 seconds")).toBe(true)
      // the push of this change waits for the previous one, which the silent peer never answers:
      // it must be abandoned after the identify timeout (10 s), not wait for ever
      yield* node.registrar.handle("/test/two/1.0.0", () => Effect.void)
      expect(yield* eventually(learnt("/test/two/1.0.0"), "15 seconds")).toBe(true)
    }))
})
