/**
 * Bad input on the hop and stop protocols (relay/circuit-v2.md §Protobuf,
 * §Hop Protocol, §Stop Protocol, §Reservation Vouchers): forged vouchers,
 * messages of the wrong type at each step, oversized and malformed messages.
 * Each ends with the spec's status answered and a typed `RelayError` on our
 * side; the relay keeps serving.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import type * as Connection from "../../../src/connection/Connection.ts"
import * as Keys from "../../../src/core/Keys.ts"
import * as Reader from "../../../src/core/Reader.ts"
import * as Varint from "../../../src/core/Varint.ts"
import * as Circuit from "../../../src/protocols/relay/circuit.ts"
import * as Messages from "../../../src/protocols/relay/messages.ts"
import * as Voucher from "../../../src/protocols/relay/Voucher.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { type RelayNode, relayNode } from "./support.ts"

/** Open `protocol` on `from` → `to`, write `frames` as they are, read one reply with `codec`. */
const exchange = <A>(
  from: RelayNode,
  to: RelayNode,
  protocol: string,
  frames: ReadonlyArray<Uint8Array>,
  codec: typeof Messages.HopMessage | typeof Messages.StopMessage
) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* from.host.newStream(to.addr, [protocol])
    yield* stream.write(frames)
    return (yield* Circuit.readMessage(Reader.make(stream), codec, "10 seconds")) as A
  }))

const hopFrame = (m: Messages.HopMessage) => {
  const b = Messages.HopMessage.encode(m)
  return [Varint.encode(b.length), b]
}
const stopFrame = (m: Messages.StopMessage) => {
  const b = Messages.StopMessage.encode(m)
  return [Varint.encode(b.length), b]
}

/** A node that answers every hop stream with `answer` (a fake relay). */
const fakeRelay = (answer: (conn: Connection.Connection, self: RelayNode) => Messages.HopMessage) =>
  Effect.gen(function*() {
    const node = yield* relayNode()
    yield* node.registrar.handle(Messages.HOP_PROTOCOL, (stream, conn) =>
      Effect.gen(function*() {
        yield* Circuit.readMessage(Reader.make(stream), Messages.HopMessage, "10 seconds")
        yield* Circuit.writeMessage(stream, Messages.HopMessage, answer(conn, node))
        yield* Circuit.finish(stream, "10 seconds")
      }))
    return node
  })

/** A relay that grants a reservation expiring at 4e9 with the voucher `sign` makes. */
const voucherRelay = (sign: (conn: Connection.Connection, self: RelayNode) => Uint8Array) =>
  fakeRelay((conn, self) => ({
    type: Messages.HopType.STATUS,
    status: Messages.Status.OK,
    reservation: { expire: 4_000_000_000n, addrs: [], voucher: sign(conn, self) }
  }))

const otherKey = Result.getOrThrow(Keys.ed25519FromSeed(new Uint8Array(32).fill(7)))

describe("circuit relay v2: bad input", () => {
  it.effect("circuit-v2 §Reservation Vouchers: a voucher signed by another key is refused (InvalidVoucher)", () =>
    Effect.gen(function*() {
      const client = yield* relayNode()
      // names the right relay and peer, but the relay did not sign it
      const relay = yield* voucherRelay((conn, self) =>
        Result.getOrThrow(
          Voucher.seal(otherKey, { relay: self.host.peerId, peer: conn.remotePeer, expiration: 4_000_000_000n })
        )
      )
      const e = yield* Effect.flip(client.client.reserve(relay.addr))
      expect(e.reason).toBe("InvalidVoucher")
      expect(client.client.reservations().length).toBe(0)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation Vouchers: a voucher for another peer or another expiry is refused", () =>
    Effect.gen(function*() {
      const client = yield* relayNode()
      const forPeer = (peerIsRelay: boolean) =>
        voucherRelay((conn, self) =>
          Result.getOrThrow(
            Voucher.seal(self.identity.privateKey, {
              relay: self.host.peerId,
              peer: peerIsRelay ? self.host.peerId : conn.remotePeer,
              expiration: peerIsRelay ? 4_000_000_000n : 4_000_000_001n
            })
          )
        )
      const wrongPeer = yield* Effect.flip(client.client.reserve((yield* forPeer(true)).addr))
      expect([wrongPeer.reason, wrongPeer.message]).toEqual(["InvalidVoucher", "relay: voucher for another peer"])
      const wrongExpiry = yield* Effect.flip(client.client.reserve((yield* forPeer(false)).addr))
      expect(wrongExpiry.reason).toBe("InvalidVoucher")
      expect(wrongExpiry.message).toContain("expiration")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Reservation: a RESERVE answered with a CONNECT is UnexpectedMessage; a refusal keeps its status", () =>
    Effect.gen(function*() {
      const client = yield* relayNode()
      const weird = yield* fakeRelay(() => ({ type: Messages.HopType.CONNECT }))
      expect((yield* Effect.flip(client.client.reserve(weird.addr))).reason).toBe("UnexpectedMessage")
      const refusing = yield* fakeRelay(() => ({
        type: Messages.HopType.STATUS,
        status: Messages.Status.PERMISSION_DENIED
      }))
      const e = yield* Effect.flip(client.client.reserve(refusing.addr))
      expect([e.reason, e.status]).toEqual(["Refused", "PERMISSION_DENIED"])
      const noReservation = yield* fakeRelay(() => ({ type: Messages.HopType.STATUS, status: Messages.Status.OK }))
      expect((yield* Effect.flip(client.client.reserve(noReservation.addr))).reason).toBe("Malformed")
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Hop Protocol: STATUS, an unknown type, a missing type, garbage and oversized messages are refused by the relay, which keeps serving", () =>
    Effect.gen(function*() {
      const relay = yield* relayNode({ server: {} })
      const peer = yield* relayNode()
      const hop = (frames: ReadonlyArray<Uint8Array>) =>
        exchange<Messages.HopMessage>(peer, relay, Messages.HOP_PROTOCOL, frames, Messages.HopMessage)
      expect((yield* hop(hopFrame({ type: Messages.HopType.STATUS, status: 100 }))).status).toBe(
        Messages.Status.UNEXPECTED_MESSAGE
      )
      expect((yield* hop(hopFrame({ type: 7 }))).status).toBe(Messages.Status.UNEXPECTED_MESSAGE)
      expect((yield* hop(hopFrame({}))).status).toBe(Messages.Status.MALFORMED_MESSAGE)
      expect((yield* hop([Uint8Array.of(3, 0x0a, 0xff, 0xff)])).status).toBe(Messages.Status.MALFORMED_MESSAGE)
      // a length prefix over 4 KiB is refused before the body is read
      expect((yield* hop([Varint.encode(1 << 20)])).status).toBe(Messages.Status.MALFORMED_MESSAGE)
      // CONNECT without a peer id
      expect((yield* hop(hopFrame({ type: Messages.HopType.CONNECT }))).status).toBe(Messages.Status.MALFORMED_MESSAGE)
      // CONNECT to a peer without a reservation
      expect(
        (yield* hop(hopFrame({ type: Messages.HopType.CONNECT, peer: Messages.peerOf(peer.host.peerId) }))).status
      ).toBe(Messages.Status.NO_RESERVATION)
      // the relay still serves reservations
      yield* peer.client.reserve(relay.addr)
      expect(relay.server!.reservations().length).toBe(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Stop Protocol: a STATUS, a CONNECT without peer and garbage on stop are refused by the client", () =>
    Effect.gen(function*() {
      const client = yield* relayNode()
      const other = yield* relayNode()
      const stop = (frames: ReadonlyArray<Uint8Array>) =>
        exchange<Messages.StopMessage>(other, client, Messages.STOP_PROTOCOL, frames, Messages.StopMessage)
      expect((yield* stop(stopFrame({ type: Messages.StopType.STATUS, status: 100 }))).status).toBe(
        Messages.Status.UNEXPECTED_MESSAGE
      )
      expect((yield* stop(stopFrame({ type: Messages.StopType.CONNECT }))).status).toBe(
        Messages.Status.MALFORMED_MESSAGE
      )
      expect((yield* stop([Uint8Array.of(2, 0x12, 0xff)])).status).toBe(Messages.Status.MALFORMED_MESSAGE)
      expect((yield* stop([Varint.encode(5000)])).status).toBe(Messages.Status.MALFORMED_MESSAGE)
      // nothing became a connection
      expect(client.host.connections().every((c) => !c.remoteAddr.toString().includes("p2p-circuit"))).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.effect("circuit-v2 §Connection Initiation: a CONNECT answered with the wrong type or a refusal fails the dial with a typed error", () =>
    Effect.gen(function*() {
      const dialer = yield* relayNode()
      const target = yield* relayNode()
      const through = (relay: RelayNode) =>
        Effect.flip(dialer.host.dial(ma(`${relay.addr.toString()}/p2p-circuit/p2p/${target.host.peerId.toString()}`)))
      const weird = yield* fakeRelay(() => ({ type: Messages.HopType.RESERVE }))
      expect(JSON.stringify(yield* through(weird))).toContain("UnexpectedMessage")
      const refusing = yield* fakeRelay(() => ({
        type: Messages.HopType.STATUS,
        status: Messages.Status.NO_RESERVATION
      }))
      const e = yield* through(refusing)
      expect(e.reason._tag).toBe("TransportError")
      expect(JSON.stringify(e)).toContain("\"status\":\"NO_RESERVATION\"")
      expect(dialer.host.connections(target.host.peerId)).toEqual([])
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
