/**
 * AutoNAT against bad input (autonat-v2.md §RPC Messages, §Amplification
 * Attack Prevention; autonat-v1.md §AutoNAT Protocol): malformed, oversized
 * and wrong-type messages end in a typed error and a reset stream on either
 * side, third-party addresses are never dialed for a requester that does not
 * pay, and the server's bookkeeping does not leak (with one request allowed at
 * a time, a good request still passes after each bad one).
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Option, Result } from "effect"
import * as Connection from "../../../src/connection/Connection.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as MultiaddrNet from "../../../src/core/MultiaddrNet.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Varint from "../../../src/core/Varint.ts"
import * as AutoNat from "../../../src/protocols/autonat/AutoNat.ts"
import * as RelayClient from "../../../src/protocols/relay/RelayClient.ts"
import * as Memory from "../../../src/transport/Memory.ts"
import { ma } from "../../support/multiaddr.ts"
import { tcpNode, type TestNode } from "../../support/node.ts"
import { relayNode } from "../relay/support.ts"
import { type AutoNatNode, autonatNode, canary, connect, rawMessages } from "./support.ts"

const bare = (a: Multiaddr.Multiaddr) => Multiaddr.decapsulateCode(a, Multiaddr.codes.p2p)
const reasonOf = (exit: Exit.Exit<unknown, AutoNat.AutoNatError>) =>
  Exit.isFailure(exit)
    ? Option.getOrElse(Option.map(Exit.findErrorOption(exit), (e) => e.reason._tag), () => "defect")
    : "success"

/** Open a dial-request stream from `from` to `to`, write `frames` raw, read what comes back until the end. */
const exchangeRaw = (from: TestNode, to: Multiaddr.Multiaddr, protocol: string, frames: ReadonlyArray<Uint8Array>) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* from.host.newStream(to, [protocol], { lazy: false })
    yield* stream.write(frames)
    const got: Array<Uint8Array> = []
    while (true) {
      const r = yield* Effect.result(stream.read)
      if (Result.isFailure(r)) return { got, reset: true }
      if (r.success.length === 0) return { got, reset: false }
      got.push(...r.success)
    }
  }))

/** A good request: our own address, answered OK. */
const goodRequest = (client: AutoNatNode, server: AutoNatNode) =>
  Effect.map(client.autonat.check(server.host.peerId, bare(client.addr)), (r) => r.outcome)

const frame = (m: AutoNat.Message) => LengthPrefixed.encode(AutoNat.Message.encode(m))

describe("AutoNAT server: bad requests", () => {
  it.live(
    "autonat-v2 §RPC Messages: oversized, garbage and wrong-type messages reset the stream; nothing leaks",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false, maxConcurrentRequests: 1 })
        const client = yield* autonatNode({ allowPrivateAddrs: true, server: false })
        yield* connect(client, server)
        const attacker = yield* tcpNode()
        const bad: ReadonlyArray<ReadonlyArray<Uint8Array>> = [
          [Varint.encode(100_000), new Uint8Array(1000)], // over MAX_MESSAGE_SIZE
          [LengthPrefixed.encode(new Uint8Array([0xff, 0xff, 0xff, 0xff]))], // not protobuf
          [frame({ dialResponse: { status: 200, addrIdx: 0, dialStatus: 200 } })], // not a DialRequest
          [frame({ dialDataResponse: { data: new Uint8Array(10) } })],
          [LengthPrefixed.encode(new Uint8Array(0))], // an empty Message
          [new Uint8Array([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])] // a broken varint
        ]
        for (const frames of bad) {
          const r = yield* exchangeRaw(attacker, server.addr, AutoNat.PROTOCOL, frames)
          expect(r.got).toEqual([])
          expect(r.reset).toBe(true)
          // one request at a time: had the bad one leaked its slot, this would be rejected
          expect(yield* goodRequest(client, server)).toBe("public")
        }
      }),
    60_000
  )

  it.live(
    "autonat-v2 §AutoNAT V2 Protocol: requests the server will not dial get E_DIAL_REFUSED (no addrs, garbage, another peer's id, relayed, UDP) [autonat-v2:requirements-for-responsestatus:1] [autonat-v2:autonat-v2-protocol:8]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false })
        const attacker = yield* tcpNode()
        const other = PeerId.toString(server.host.peerId)
        const requests: ReadonlyArray<ReadonlyArray<Uint8Array>> = [
          [],
          Array.from({ length: 1000 }, () => new Uint8Array([0xff, 0x01])),
          [Multiaddr.toBytes(ma(`/ip4/127.0.0.1/tcp/4001/p2p/${other}`))],
          [Multiaddr.toBytes(ma(`/ip4/127.0.0.1/tcp/4001/p2p/${other}/p2p-circuit`))],
          [Multiaddr.toBytes(ma("/ip4/127.0.0.1/udp/4001/quic-v1"))],
          [Multiaddr.toBytes(ma("/ip4/0.0.0.0/tcp/4001"))]
        ]
        for (const addrs of requests) {
          const r = yield* exchangeRaw(attacker, server.addr, AutoNat.PROTOCOL, [
            frame({ dialRequest: { addrs, nonce: 7n } })
          ])
          const answer = AutoNat.Message.decode(
            LengthPrefixed.decode(concat(r.got), AutoNat.MAX_MESSAGE_SIZE).pipe(Result.getOrThrow).message
          )
          expect(Result.getOrThrow(answer).dialResponse?.status).toBe(AutoNat.ResponseStatus.E_DIAL_REFUSED)
          // and the server closed the stream after its response (no reset)
          expect(r.reset).toBe(false)
        }
      }),
    60_000
  )

  it.live(
    "autonat-v2 §AutoNAT V2 Protocol: the server dials the first address it is willing to dial and no other [autonat-v2:autonat-v2-protocol:3] [autonat-v2:autonat-v2-protocol:4]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false })
        const attacker = yield* tcpNode()
        // two plain TCP listeners on the requester's IP (no dial data needed), after one the server will not dial
        const first = yield* canary("127.0.0.1")
        const second = yield* canary("127.0.0.1")
        const addrs = [
          ma("/ip4/127.0.0.1/udp/4001/quic-v1"),
          ma(`/ip4/127.0.0.1/tcp/${first.port}`),
          ma(`/ip4/127.0.0.1/tcp/${second.port}`)
        ].map(Multiaddr.toBytes)
        const r = yield* exchangeRaw(attacker, server.addr, AutoNat.PROTOCOL, [
          frame({ dialRequest: { addrs, nonce: 9n } })
        ])
        const answer = AutoNat.Message.decode(
          LengthPrefixed.decode(concat(r.got), AutoNat.MAX_MESSAGE_SIZE).pipe(Result.getOrThrow).message
        )
        // not a libp2p peer: the dial fails, but it was made to address 1 only
        expect(Result.getOrThrow(answer).dialResponse).toEqual({
          status: AutoNat.ResponseStatus.OK,
          addrIdx: 1,
          dialStatus: AutoNat.DialStatus.E_DIAL_ERROR
        })
        expect(first.connections()).toBeGreaterThanOrEqual(1)
        expect(second.connections()).toBe(0)
      }),
    60_000
  )

  it.live(
    "autonat-v2 §Amplification Attack Prevention: another message instead of the dial data resets the stream, the third party is never dialed",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false })
        const attacker = yield* tcpNode()
        const victim = yield* canary("127.0.0.2")
        const target = Multiaddr.toBytes(ma(`/ip4/127.0.0.2/tcp/${victim.port}`))
        yield* Effect.scoped(Effect.gen(function*() {
          const io = rawMessages(yield* attacker.host.newStream(server.addr, [AutoNat.PROTOCOL], { lazy: false }))
          yield* io.send({ dialRequest: { addrs: [target], nonce: 1n } })
          expect((yield* io.next)?.dialDataRequest).toBeDefined()
          yield* io.send({ dialRequest: { addrs: [target], nonce: 2n } })
          expect(yield* io.next).toBeUndefined()
        }))
        // a data chunk over the size limit
        yield* Effect.scoped(Effect.gen(function*() {
          const io = rawMessages(yield* attacker.host.newStream(server.addr, [AutoNat.PROTOCOL], { lazy: false }))
          yield* io.send({ dialRequest: { addrs: [target], nonce: 3n } })
          expect((yield* io.next)?.dialDataRequest).toBeDefined()
          yield* io.sendRaw(Varint.encode(200_000), new Uint8Array(8192))
          expect(yield* io.next).toBeUndefined()
        }))
        expect(victim.connections()).toBe(0)
      }),
    60_000
  )

  it.live(
    "autonat-v1 §AutoNAT Protocol: dials only the observed IP; a third-party IP is E_DIAL_REFUSED and never dialed; garbage resets the stream [autonat-v1:autonat-protocol:4] [autonat-v1:autonat-protocol:6]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false })
        const requester = yield* tcpNode()
        const victim = yield* canary("127.0.0.2")
        const v1 = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) =>
          LengthPrefixed.encode(AutoNat.V1Message.encode({
            type: AutoNat.V1Type.DIAL,
            dial: { peer: { id: PeerId.toBytes(requester.host.peerId), addrs: addrs.map(Multiaddr.toBytes) } }
          }))
        const answerOf = (got: ReadonlyArray<Uint8Array>) =>
          Result.getOrThrow(
            AutoNat.V1Message.decode(
              Result.getOrThrow(LengthPrefixed.decode(concat(got), AutoNat.MAX_MESSAGE_SIZE)).message
            )
          )
            .dialResponse
        const ok = yield* exchangeRaw(requester, server.addr, AutoNat.V1_PROTOCOL, [v1([bare(requester.addr)])])
        expect(answerOf(ok.got)?.status).toBe(AutoNat.V1Status.OK)
        expect(Multiaddr.toString(Result.getOrThrow(Multiaddr.fromBytes(answerOf(ok.got)!.addr!)))).toBe(
          Multiaddr.toString(bare(requester.addr))
        )
        const third = yield* exchangeRaw(requester, server.addr, AutoNat.V1_PROTOCOL, [
          v1([ma(`/ip4/127.0.0.2/tcp/${victim.port}`)])
        ])
        expect(answerOf(third.got)?.status).toBe(AutoNat.V1Status.E_DIAL_REFUSED)
        expect(victim.connections()).toBe(0)
        const garbage = yield* exchangeRaw(requester, server.addr, AutoNat.V1_PROTOCOL, [
          LengthPrefixed.encode(new Uint8Array([0x08, 0x05, 0xff]))
        ])
        expect(garbage.reset).toBe(true)
      }),
    60_000
  )
})

const concat = (chunks: ReadonlyArray<Uint8Array>) => {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0))
  let o = 0
  for (const c of chunks) {
    out.set(c, o)
    o += c.byteLength
  }
  return out
}

/** A fake server answering every dial request with `reply` (raw frames), then closing. */
const fakeServer = (reply: (req: AutoNat.Message) => ReadonlyArray<Uint8Array>) =>
  Effect.gen(function*() {
    const node = yield* tcpNode()
    yield* node.registrar.handle(AutoNat.PROTOCOL, (stream: Connection.Stream) =>
      Effect.gen(function*() {
        const io = rawMessages(stream)
        const req = yield* io.next
        if (req === undefined) return
        yield* stream.write(reply(req))
        yield* stream.closeWrite
        yield* Effect.ignore(stream.read)
      }))
    return node
  })

describe("AutoNAT client: bad answers", () => {
  it.live(
    "autonat-v1 §AutoNAT Protocol: a dial request over a relayed connection is refused and nothing is dialed [autonat-v1:autonat-protocol:5]",
    () =>
      Effect.gen(function*() {
        const relay = yield* relayNode({ server: {}, tcp: true })
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false })
        const reservation = yield* Context.get(server.context, RelayClient.RelayClient).reserve(relay.addr)
        const requester = yield* relayNode({ tcp: true })
        const canaryPeer = yield* canary("127.0.0.1")
        const conn = yield* requester.host.dial(reservation.addrs[0]!)
        expect(MultiaddrNet.isRelayed(conn.remoteAddr)).toBe(true)
        const request = LengthPrefixed.encode(AutoNat.V1Message.encode({
          type: AutoNat.V1Type.DIAL,
          dial: {
            peer: {
              id: PeerId.toBytes(requester.host.peerId),
              addrs: [Multiaddr.toBytes(ma(`/ip4/127.0.0.1/tcp/${canaryPeer.port}`))]
            }
          }
        }))
        const got = yield* Effect.scoped(Effect.gen(function*() {
          const stream = yield* conn.newStream([AutoNat.V1_PROTOCOL], { lazy: false })
          yield* stream.write([request])
          const chunks: Array<Uint8Array> = []
          while (true) {
            const r = yield* Effect.result(stream.read)
            if (Result.isFailure(r) || r.success.length === 0) return chunks
            chunks.push(...r.success)
          }
        }))
        const answer = Result.getOrThrow(
          AutoNat.V1Message.decode(
            Result.getOrThrow(LengthPrefixed.decode(concat(got), AutoNat.MAX_MESSAGE_SIZE)).message
          )
        )
        expect(answer.dialResponse?.status).toBe(AutoNat.V1Status.E_DIAL_REFUSED)
        expect(canaryPeer.connections()).toBe(0)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )

  it.live(
    "autonat-v2 §Requirements for ResponseStatus: garbage, unknown statuses, bad indexes and greedy data requests are typed errors [autonat-v2:requirements-for-responsestatus:2]",
    () =>
      Effect.gen(function*() {
        const client = yield* autonatNode({ allowPrivateAddrs: true, server: false, maxDialDataBytes: 50_000 })
        const cases: ReadonlyArray<readonly [ReadonlyArray<Uint8Array>, string]> = [
          [[LengthPrefixed.encode(new Uint8Array([0xff, 0xff]))], "Malformed"],
          [[Varint.encode(100_000)], "Malformed"],
          [[frame({ dialRequest: { addrs: [], nonce: 1n } })], "Malformed"],
          [[frame({ dialResponse: { status: 42, addrIdx: 0, dialStatus: 200 } })], "ServerError"],
          [[frame({ dialResponse: { status: 0, addrIdx: 0, dialStatus: 0 } })], "ServerError"],
          [[frame({ dialResponse: { status: 100, addrIdx: 0, dialStatus: 0 } })], "Rejected"],
          [[frame({ dialResponse: { status: 200, addrIdx: 3, dialStatus: 200 } })], "Malformed"],
          [[frame({ dialResponse: { status: 200, addrIdx: 0, dialStatus: 7 } })], "Malformed"],
          [[frame({ dialDataRequest: { addrIdx: 0, numBytes: 10_000_000n } })], "DialDataRefused"],
          [[frame({ dialDataRequest: { addrIdx: 5, numBytes: 10n } })], "DialDataRefused"],
          [[], "Malformed"] // closed without an answer
        ]
        for (const [reply, reason] of cases) {
          const server = yield* fakeServer(() => reply)
          yield* connect(client, server)
          const exit = yield* Effect.exit(client.autonat.check(server.host.peerId, bare(client.addr)))
          expect([reply.length, reasonOf(exit)]).toEqual([reply.length, reason])
        }
        // OK without our nonce ever arriving
        const liar = yield* fakeServer(() => [frame({ dialResponse: { status: 200, addrIdx: 0, dialStatus: 200 } })])
        yield* connect(client, liar)
        expect(reasonOf(yield* Effect.exit(client.autonat.check(liar.host.peerId, bare(client.addr))))).toBe(
          "NoDialBack"
        )
      }),
    60_000
  )

  it.live(
    "autonat-v2 §RPC Messages: the dial-back handler resets garbage and unknown nonces without answering",
    () =>
      Effect.gen(function*() {
        const client = yield* autonatNode({ allowPrivateAddrs: true, server: false })
        const stranger = yield* tcpNode()
        for (
          const frames of [
            [LengthPrefixed.encode(new Uint8Array([0xff, 0xff]))],
            [LengthPrefixed.encode(AutoNat.DialBack.encode({ nonce: 12345n }))],
            [Varint.encode(50_000)]
          ]
        ) {
          const r = yield* exchangeRaw(stranger, client.addr, AutoNat.DIAL_BACK_PROTOCOL, frames)
          expect(r).toEqual({ got: [], reset: true })
        }
      }),
    60_000
  )
})
