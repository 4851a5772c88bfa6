/**
 * DCUtR's state machine (relay/DCUtR.md §The Protocol, §RPC messages) on a
 * `Duplex.pair` under TestClock: the initiator (`B`) and the responder (`A`)
 * against a hand-driven peer and against each other, the RTT/2 wait, and bad
 * input (wrong message types, oversized messages, thousands of addresses,
 * private and relay addresses, silence) as typed `DcutrError`s.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as Protobuf from "../../../src/core/Protobuf.ts"
import * as Dcutr from "../../../src/protocols/dcutr/Dcutr.ts"
import * as Messages from "../../../src/protocols/dcutr/messages.ts"
import { ma } from "../../support/multiaddr.ts"
import { fromHex, readJson, toHex } from "../../support/vectors.ts"

const B_ADDRS = [ma("/ip4/1.2.3.4/tcp/4001")]
const A_ADDRS = [ma("/ip4/5.6.7.8/tcp/4002"), ma("/ip6/2606:4700::1/tcp/4002")]

/** A round whose dial records the addresses and the clock, and returns them. */
const recordingRound = (ours: ReadonlyArray<Multiaddr.Multiaddr>) =>
  Effect.gen(function*() {
    const dialed = yield* Deferred.make<ReadonlyArray<string>>()
    const round: Dcutr.Round<ReadonlyArray<string>> = {
      ours,
      usable: (addrs) => Dcutr.usableAddrs(addrs, { max: Dcutr.MAX_DIALS }),
      dial: (addrs) => {
        const names = addrs.map(String)
        return Effect.as(Deferred.succeed(dialed, names), names)
      },
      timeout: Duration.seconds(10)
    }
    return { round, dialed }
  })

/** One side on a fresh pair, forked; the test drives the other end (`remote`, `peer` its messages). */
const start = (side: "initiate" | "respond", ours: ReadonlyArray<Multiaddr.Multiaddr>) =>
  Effect.gen(function*() {
    const [mine, remote] = yield* Duplex.pair()
    const { dialed, round } = yield* recordingRound(ours)
    const fiber = yield* Effect.forkChild(
      side === "initiate" ? Dcutr.initiate(mine, round) : Dcutr.respond(mine, round)
    )
    return { fiber, dialed, remote, peer: LengthPrefixed.messages(remote, { maxLength: 4096 }) }
  })

const write = (d: Duplex.Duplex, msg: Messages.HolePunch) => LengthPrefixed.write(d, Messages.encode(msg))

const readMsg = (reader: LengthPrefixed.Messages) =>
  Effect.flatMap(reader.readOne, (bytes) => Effect.fromResult(Result.mapError(Messages.decode(bytes), String)))

/** The error a failed fiber ended with (a DcutrError, never a defect). */
const failureOf = <A>(exit: Exit.Exit<A, Dcutr.DcutrError>): Dcutr.DcutrError => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const err = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (err === undefined || err._tag !== "Fail") throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return err.error
}

const rawHolePunch = Protobuf.define(`
syntax = "proto2";
message HolePunch { optional int32 type = 1; repeated bytes ObsAddrs = 2; }`).codec<
  { readonly type?: number; readonly ObsAddrs: ReadonlyArray<Uint8Array> }
>("HolePunch")

describe("DCUtR", () => {
  it.effect("DCUtR §The Protocol steps 2, 4, 5: B sends CONNECT, measures the RTT, SYNCs and dials after RTT/2", () =>
    Effect.gen(function*() {
      const { fiber, dialed, remote: a, peer } = yield* start("initiate", B_ADDRS)
      const connect = yield* readMsg(peer)
      expect(connect.type).toBe(Messages.CONNECT)
      expect(connect.addrs.map(String)).toEqual(B_ADDRS.map(String))
      yield* TestClock.adjust(Duration.millis(200)) // the relayed round trip
      yield* write(a, { type: Messages.CONNECT, addrs: A_ADDRS })
      const sync = yield* readMsg(peer)
      expect(sync.type).toBe(Messages.SYNC)
      yield* TestClock.adjust(Duration.millis(99))
      expect(yield* Deferred.isDone(dialed)).toBe(false)
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* Fiber.join(fiber)).toEqual(A_ADDRS.map(String))
    }))

  it.effect("DCUtR §The Protocol steps 3, 5: A answers CONNECT with its addresses and dials at once on SYNC", () =>
    Effect.gen(function*() {
      const { fiber, dialed, remote: b, peer } = yield* start("respond", A_ADDRS)
      yield* write(b, { type: Messages.CONNECT, addrs: B_ADDRS })
      const connect = yield* readMsg(peer)
      expect(connect.type).toBe(Messages.CONNECT)
      expect(connect.addrs.map(String)).toEqual(A_ADDRS.map(String))
      expect(yield* Deferred.isDone(dialed)).toBe(false)
      yield* write(b, { type: Messages.SYNC, addrs: [] })
      // no clock time passes: A dials as soon as SYNC arrives
      expect(yield* Fiber.join(fiber)).toEqual(B_ADDRS.map(String))
    }))

  it.effect("DCUtR §The Protocol: initiator and responder against each other each dial the other's addresses", () =>
    Effect.gen(function*() {
      const [b, a] = yield* Duplex.pair()
      const bSide = yield* recordingRound(B_ADDRS)
      const aSide = yield* recordingRound(A_ADDRS)
      const [toA, toB] = yield* Effect.all([Dcutr.initiate(b, bSide.round), Dcutr.respond(a, aSide.round)], {
        concurrency: 2
      })
      expect(toA).toEqual(A_ADDRS.map(String))
      expect(toB).toEqual(B_ADDRS.map(String))
    }))

  it.effect("DCUtR §The Protocol: private, loopback, relay and non-TCP addresses are not dialed; /p2p is dropped", () =>
    Effect.sync(() => {
      const kept = Dcutr.usableAddrs([
        ma("/ip4/10.0.0.1/tcp/1"),
        ma("/ip4/127.0.0.1/tcp/1"),
        ma("/ip4/192.168.1.2/tcp/1"),
        ma("/ip4/1.2.3.4/udp/1/quic-v1"),
        ma("/ip4/1.2.3.4/tcp/1/ws"),
        ma("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit"),
        ma("/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"),
        ma("/ip4/1.2.3.4/tcp/4001"),
        ma("/ip4/203.0.113.2/tcp/4001")
      ], { max: 8 })
      expect(kept.map(String)).toEqual(["/ip4/1.2.3.4/tcp/4001"])
      const cidr = Result.getOrThrow(MultiaddrNet.parseCidr("203.0.113.0/24"))
      const widened = Dcutr.usableAddrs([ma("/ip4/203.0.113.2/tcp/4001")], { max: 8, publicCidrs: [cidr] })
      expect(widened.map(String)).toEqual(["/ip4/203.0.113.2/tcp/4001"])
      const many = Array.from({ length: 50 }, (_, i) => ma(`/ip4/1.2.3.${i}/tcp/4001`))
      expect(Dcutr.usableAddrs(many, { max: Dcutr.MAX_DIALS })).toHaveLength(Dcutr.MAX_DIALS)
    }))

  it.effect("DCUtR §The Protocol: only private addresses from the remote → NoAddresses, nothing dialed, stream reset", () =>
    Effect.gen(function*() {
      const { fiber, dialed, remote: a } = yield* start("initiate", B_ADDRS)
      yield* readMsg(LengthPrefixed.messages(a, { maxLength: 4096 }))
      yield* write(a, { type: Messages.CONNECT, addrs: [ma("/ip4/10.0.0.1/tcp/1"), ma("/ip4/192.168.0.1/tcp/1")] })
      const err = failureOf(yield* Fiber.await(fiber))
      expect(err.reason).toBe("NoAddresses")
      expect(yield* Deferred.isDone(dialed)).toBe(false)
      expect(Exit.isFailure(yield* Effect.exit(a.read))).toBe(true)
    }))

  it.effect("DCUtR §The Protocol: no public address of our own → NoAddresses before anything is sent", () =>
    Effect.gen(function*() {
      const [b] = yield* Duplex.pair()
      const { round } = yield* recordingRound([])
      const err = failureOf(yield* Effect.exit(Dcutr.initiate(b, round)))
      expect(err.reason).toBe("NoAddresses")
    }))

  it.effect("DCUtR §The Protocol: SYNC where CONNECT belongs → UnexpectedMessage (both sides)", () =>
    Effect.gen(function*() {
      const [b, a] = yield* Duplex.pair()
      const responder = yield* recordingRound(A_ADDRS)
      const fiberA = yield* Effect.forkChild(Dcutr.respond(a, responder.round))
      yield* write(b, { type: Messages.SYNC, addrs: [] })
      expect(failureOf(yield* Fiber.await(fiberA)).reason).toBe("UnexpectedMessage")

      const [b2, a2] = yield* Duplex.pair()
      const initiator = yield* recordingRound(B_ADDRS)
      const fiberB = yield* Effect.forkChild(Dcutr.initiate(b2, initiator.round))
      yield* readMsg(LengthPrefixed.messages(a2, { maxLength: 4096 }))
      yield* write(a2, { type: Messages.SYNC, addrs: [] })
      expect(failureOf(yield* Fiber.await(fiberB)).reason).toBe("UnexpectedMessage")
      expect(yield* Deferred.isDone(initiator.dialed)).toBe(false)
    }))

  it.effect("DCUtR §The Protocol: CONNECT again where SYNC belongs → UnexpectedMessage, A does not dial", () =>
    Effect.gen(function*() {
      const { fiber, dialed, remote: b, peer } = yield* start("respond", A_ADDRS)
      yield* write(b, { type: Messages.CONNECT, addrs: B_ADDRS })
      yield* readMsg(peer)
      yield* write(b, { type: Messages.CONNECT, addrs: B_ADDRS })
      expect(failureOf(yield* Fiber.await(fiber)).reason).toBe("UnexpectedMessage")
      expect(yield* Deferred.isDone(dialed)).toBe(false)
    }))

  it.effect("DCUtR §RPC messages: an unknown type, a missing type and garbage → Malformed", () =>
    Effect.gen(function*() {
      const payloads = [
        rawHolePunch.encode({ type: 200, ObsAddrs: [] }),
        rawHolePunch.encode({ ObsAddrs: [Multiaddr.toBytes(B_ADDRS[0]!)] }),
        new Uint8Array([0xff, 0xff, 0xff, 0x01, 0x02])
      ]
      for (const payload of payloads) {
        const [a, b] = yield* Duplex.pair()
        const { round } = yield* recordingRound(A_ADDRS)
        const fiber = yield* Effect.forkChild(Dcutr.respond(a, round))
        yield* LengthPrefixed.write(b, payload)
        expect(failureOf(yield* Fiber.await(fiber)).reason).toBe("Malformed")
      }
    }))

  it.effect("DCUtR §RPC messages: a message over 4 KiB (10,000 addresses) → TooLarge, read no further [dcutr:rpc-messages:1]", () =>
    Effect.gen(function*() {
      const { fiber, dialed, remote: b } = yield* start("respond", A_ADDRS)
      const addrs = Array.from(
        { length: 10_000 },
        (_, i) => ma(`/ip4/1.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/tcp/1`)
      )
      const big = Messages.encode({ type: Messages.CONNECT, addrs })
      expect(big.byteLength).toBeGreaterThan(Messages.MAX_MESSAGE_SIZE)
      yield* Effect.forkChild(Effect.ignore(LengthPrefixed.write(b, big)))
      expect(failureOf(yield* Fiber.await(fiber)).reason).toBe("TooLarge")
      expect(yield* Deferred.isDone(dialed)).toBe(false)
    }))

  it.effect("DCUtR §RPC messages: more than 64 addresses inside 4 KiB → TooManyAddresses", () =>
    Effect.gen(function*() {
      const { fiber, remote: b } = yield* start("respond", A_ADDRS)
      const payload = rawHolePunch.encode({
        type: Messages.CONNECT,
        ObsAddrs: Array.from({ length: 1000 }, () => new Uint8Array(0))
      })
      expect(payload.byteLength).toBeLessThanOrEqual(Messages.MAX_MESSAGE_SIZE)
      yield* LengthPrefixed.write(b, payload)
      const err = failureOf(yield* Fiber.await(fiber))
      expect(err.reason).toBe("TooManyAddresses")
    }))

  it.effect("DCUtR §RPC messages: addresses that are not multiaddrs are skipped, the valid ones kept", () =>
    Effect.sync(() => {
      const bytes = rawHolePunch.encode({
        type: Messages.CONNECT,
        ObsAddrs: [new Uint8Array([0xff, 0xff]), Multiaddr.toBytes(B_ADDRS[0]!), new Uint8Array(0)]
      })
      const msg = Result.getOrThrow(Messages.decode(bytes))
      expect(msg.addrs.map(String)).toEqual(B_ADDRS.map(String))
    }))

  it.effect("DCUtR §The Protocol: a peer that never answers → Timeout after streamTimeout", () =>
    Effect.gen(function*() {
      const [b] = yield* Duplex.pair()
      const { round } = yield* recordingRound(B_ADDRS)
      const fiber = yield* Effect.forkChild(Dcutr.initiate(b, round))
      yield* TestClock.adjust(Duration.seconds(9))
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(Duration.seconds(1))
      expect(failureOf(yield* Fiber.await(fiber)).reason).toBe("Timeout")
    }))

  it.effect("DCUtR §The Protocol: a stream that ends before CONNECT → Stream", () =>
    Effect.gen(function*() {
      const { fiber, remote: b } = yield* start("respond", A_ADDRS)
      yield* b.closeWrite
      expect(failureOf(yield* Fiber.await(fiber)).reason).toBe("Stream")
    }))
})

interface JsVector {
  readonly name: string
  readonly type: "CONNECT" | "SYNC"
  readonly addrs: ReadonlyArray<string>
  readonly hex: string
}

describe("DCUtR messages against js-libp2p", () => {
  for (const v of readJson<ReadonlyArray<JsVector>>("interop/dcutr-js-holepunch.json")) {
    it(`DCUtR §RPC messages: js-libp2p's ${v.name} decodes, and ours encodes to the same bytes`, () => {
      const type = v.type === "CONNECT" ? Messages.CONNECT : Messages.SYNC
      const msg = Result.getOrThrow(Messages.decode(fromHex(v.hex)))
      expect(msg.type).toBe(type)
      expect(msg.addrs.map(String)).toEqual(v.addrs)
      expect(toHex(Messages.encode({ type, addrs: v.addrs.map(ma) }))).toBe(v.hex)
    })
  }
})
