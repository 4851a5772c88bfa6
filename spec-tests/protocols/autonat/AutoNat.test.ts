/**
 * AutoNAT v2 between our nodes on 127.0.0.1 (libp2p specs autonat/autonat-v2.md):
 * reachability of an address, the nonce check, the amplification protection,
 * the server's rate limits, and the verdicts in the AddressManager.
 * Both sides allow loopback addresses (`allowPrivateAddrs`), which a default
 * server refuses (checked too).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option, Stream } from "effect"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as AutoNat from "../../../src/protocols/autonat/AutoNat.ts"
import { ma } from "../../support/multiaddr.ts"
import { tcpNode, type TestNode } from "../../support/node.ts"
import { autonatNode, canary, closedPort, connect, rawMessages } from "./support.ts"

const bare = (a: Multiaddr.Multiaddr) => Multiaddr.decapsulateCode(a, Multiaddr.codes.p2p)
const reasonOf = (exit: Exit.Exit<unknown, AutoNat.AutoNatError>) =>
  Exit.isFailure(exit)
    ? Option.map(Exit.findErrorOption(exit), (e) => e.reason._tag).pipe(Option.getOrElse(() => "defect"))
    : "success"

const testing = { allowPrivateAddrs: true, minConfidence: 1 } as const

/**
 * A scripted AutoNAT v2 server on `server`: reads a DialRequest, dials the first address back from
 * `dialBackFrom` (default `server`) with `nonce(request nonce)`, runs `onDialBack` on the dial-back
 * stream, answers OK/OK, half-closes, then runs `onRequestEnd` on the request stream.
 */
const scriptedServer = (
  server: TestNode,
  options: {
    readonly dialBackFrom?: TestNode
    readonly nonce?: (nonce: bigint) => bigint
    readonly onDialBack?: (stream: Duplex.Duplex) => Effect.Effect<void>
    readonly onRequestEnd?: (stream: Duplex.Duplex) => Effect.Effect<void>
  } = {}
) =>
  server.registrar.handle(AutoNat.PROTOCOL, (stream, conn) =>
    Effect.gen(function*() {
      const io = rawMessages(stream)
      const req = (yield* io.next)?.dialRequest
      if (req === undefined) return
      const addr = Multiaddr.fromBytes(req.addrs[0]!)
      if (addr._tag === "Failure") return
      const from = options.dialBackFrom ?? server
      const back = yield* from.host.dialer.dial({ peer: conn.remotePeer, addrs: [addr.success], force: true })
      yield* Effect.scoped(Effect.gen(function*() {
        const s = yield* back.newStream([AutoNat.DIAL_BACK_PROTOCOL], { lazy: false })
        const body = AutoNat.DialBack.encode({ nonce: options.nonce?.(req.nonce) ?? req.nonce })
        yield* s.write([new Uint8Array([body.length]), body])
        yield* options.onDialBack?.(s) ?? Effect.ignore(s.read)
      }))
      yield* back.close
      yield* io.send({
        dialResponse: { status: AutoNat.ResponseStatus.OK, addrIdx: 0, dialStatus: AutoNat.DialStatus.OK }
      })
      yield* io.closeWrite
      if (options.onRequestEnd !== undefined) yield* options.onRequestEnd(stream)
    }))

describe("AutoNAT v2 ours↔ours", () => {
  it.live(
    "autonat-v2 §AutoNAT V2 Protocol: a reachable address is dialed back with the nonce and confirmed public",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ ...testing, client: false })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, server)
        const before = client.host.connections(server.host.peerId).length
        const verdicts = yield* client.autonat.checkNow
        const own = Multiaddr.toString(bare(client.addr))
        expect(verdicts.map((v) => [Multiaddr.toString(v.addr), v.reachability])).toEqual([[own, "public"]])
        expect(client.autonat.reachability()).toBe("public")
        expect(client.addressManager.reachability()).toBe("public")
        expect(client.addressManager.confirmed().map(Multiaddr.toString)).toEqual([own])
        // the dial back was a separate connection, closed after: the requester's connection is still the one
        expect(client.host.connections(server.host.peerId).length).toBe(before)
      }),
    30_000
  )

  it.live(
    "autonat-v2 §Requirements for DialStatus: an address where nothing listens is E_DIAL_ERROR → private [autonat-v2:requirements-for-responsestatus:1]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ ...testing, client: false })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, server)
        const dead = ma(`/ip4/127.0.0.1/tcp/${yield* closedPort}`)
        const result = yield* client.autonat.check(server.host.peerId, dead)
        expect(result.outcome).toBe("private")
        // as the node's only candidate: the node is private, nothing is confirmed
        yield* client.addressManager.removeListenAddrs(client.addressManager.listenAddrs())
        yield* client.addressManager.addListenAddrs([dead])
        const verdicts = yield* client.autonat.checkNow
        expect(verdicts.map((v) => v.reachability)).toEqual(["private"])
        expect(client.autonat.reachability()).toBe("private")
        expect(client.addressManager.reachability()).toBe("private")
        expect(client.addressManager.confirmed()).toEqual([])
      }),
    30_000
  )

  it.live(
    "autonat-v2 §AutoNAT V2 Protocol: the server SHOULD NOT dial private addresses (default: E_DIAL_REFUSED) [autonat-v2:autonat-v2-protocol:1] [autonat-v2:autonat-v2-protocol:2] [autonat-v2:requirements-for-responsestatus:1]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ client: false })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, server)
        const exit = yield* Effect.exit(client.autonat.check(server.host.peerId, bare(client.addr)))
        expect(reasonOf(exit)).toBe("Refused")
        // and a default client does not even ask about its loopback address
        const shy = yield* autonatNode({ server: false })
        yield* connect(shy, server)
        expect(yield* shy.autonat.checkNow).toEqual([])
      }),
    30_000
  )

  it.live(
    "autonat-v2 §AutoNAT V2 Protocol: the client MUST check the nonce — a dial back with another nonce fails the check [autonat-v2:autonat-v2-protocol:6] [autonat-v2:autonat-v2-protocol:7]",
    () =>
      Effect.gen(function*() {
        // a lying server: dials back with nonce + 1, then reports OK/OK
        const liar = yield* tcpNode()
        yield* scriptedServer(liar, { nonce: (n) => n + 1n })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, liar)
        const exit = yield* Effect.exit(client.autonat.check(liar.host.peerId, bare(client.addr)))
        expect(reasonOf(exit)).toBe("NoDialBack")
        // a round with it records nothing: the address stays unknown, nothing confirmed
        const verdicts = yield* client.autonat.checkNow
        expect(verdicts.map((v) => v.reachability)).toEqual(["unknown"])
        expect(client.addressManager.confirmed()).toEqual([])
      }),
    30_000
  )

  it.live(
    "autonat-v2 §AutoNAT V2 Protocol: the client closes the dial-back stream after its response and the request stream after the server's [autonat-v2:autonat-v2-protocol:5] [autonat-v2:autonat-v2-protocol:9]",
    () =>
      Effect.gen(function*() {
        /** How a stream's reads end: "closed" (EOF) or "reset". */
        const endOf = (stream: Duplex.Duplex) =>
          Effect.gen(function*() {
            while (true) {
              const r = yield* Effect.result(stream.read)
              if (r._tag === "Failure") return "reset"
              if (Duplex.isEOF(r.success)) return "closed"
            }
          })
        const seen: { dialBack?: string; request?: string } = {}
        // a scripted honest server that watches how the client ends each stream
        const server = yield* tcpNode()
        yield* scriptedServer(server, {
          onDialBack: (s) => Effect.map(endOf(s), (end) => void (seen.dialBack = end)),
          onRequestEnd: (s) => Effect.map(endOf(s), (end) => void (seen.request = end))
        })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, server)
        expect((yield* client.autonat.check(server.host.peerId, bare(client.addr))).outcome).toBe("public")
        for (let i = 0; i < 250 && seen.request === undefined; i++) yield* Effect.sleep("20 millis")
        expect(seen).toEqual({ dialBack: "closed", request: "closed" })
      }),
    30_000
  )

  it.live(
    "autonat-v2 §Implementation Suggestions: the client relies on the nonce only — a dial back from another peer id counts [autonat-v2:implementation-suggestions:3]",
    () =>
      Effect.gen(function*() {
        // a server that dials back from a second node (another peer id), with the right nonce
        const server = yield* tcpNode()
        yield* scriptedServer(server, { dialBackFrom: yield* tcpNode() })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, server)
        expect((yield* client.autonat.check(server.host.peerId, bare(client.addr))).outcome).toBe("public")
      }),
    30_000
  )

  it.live(
    "autonat-v2 §Implementation Suggestions: the server's dial back does not leave from its listening port [autonat-v2:implementation-suggestions:2]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ ...testing, client: false })
        const client = yield* autonatNode({ ...testing, server: false })
        yield* connect(client, server)
        const events = yield* client.host.subscribe
        expect((yield* client.autonat.check(server.host.peerId, bare(client.addr))).outcome).toBe("public")
        const dialBack = yield* events.pipe(
          Stream.filter((e) =>
            e._tag === "ConnectionOpen" && e.connection.direction === "inbound"
            && PeerId.equals(e.connection.remotePeer, server.host.peerId)
          ),
          Stream.runHead,
          Effect.timeout("10 seconds")
        )
        const conn = Option.getOrThrow(dialBack)
        if (conn._tag !== "ConnectionOpen") throw new Error("expected a ConnectionOpen")
        const portOf = (a: Multiaddr.Multiaddr) => Multiaddr.components(a)[1]!.value
        expect(portOf(conn.connection.remoteAddr)).not.toBe(portOf(server.addr))
      }),
    30_000
  )

  it.live(
    "autonat-v2 §Implementation Suggestions: minConfidence results decide; one success of three is not enough [autonat-v2:implementation-suggestions:1]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false })
        const client = yield* autonatNode({ allowPrivateAddrs: true, server: false })
        yield* connect(client, server)
        const verdicts = yield* client.autonat.checkNow
        expect(verdicts.map((v) => [v.reachability, v.successes, v.failures])).toEqual([["unknown", 1, 0]])
        expect(client.addressManager.confirmed()).toEqual([])
      }),
    30_000
  )
})

describe("AutoNAT v2 §Amplification Attack Prevention", () => {
  it.live(
    "a request for another IP than the observed one gets a DialDataRequest (30k–100k) and nothing is dialed before the data [autonat-v2:amplification-attack-prevention:1] [autonat-v2:amplification-attack-prevention:2]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ ...testing, client: false })
        const attacker = yield* tcpNode()
        const victim = yield* canary("127.0.0.2")
        const victimAddr = ma(`/ip4/127.0.0.2/tcp/${victim.port}`)

        // 1. asks, then leaves without paying: never dialed
        yield* Effect.scoped(Effect.gen(function*() {
          const io = rawMessages(yield* attacker.host.newStream(server.addr, [AutoNat.PROTOCOL], { lazy: false }))
          yield* io.send({ dialRequest: { addrs: [Multiaddr.toBytes(victimAddr)], nonce: 1n } })
          const ask = (yield* io.next)?.dialDataRequest
          expect(ask?.addrIdx).toBe(0)
          expect(Number(ask?.numBytes)).toBeGreaterThanOrEqual(30_000)
          expect(Number(ask?.numBytes)).toBeLessThanOrEqual(100_000)
          yield* io.closeWrite
          expect(yield* io.next).toBeUndefined() // the server gave up on us
        }))
        expect(victim.connections()).toBe(0)

        // 2. pays part of it, then leaves: never dialed
        yield* Effect.scoped(Effect.gen(function*() {
          const io = rawMessages(yield* attacker.host.newStream(server.addr, [AutoNat.PROTOCOL], { lazy: false }))
          yield* io.send({ dialRequest: { addrs: [Multiaddr.toBytes(victimAddr)], nonce: 2n } })
          expect((yield* io.next)?.dialDataRequest).toBeDefined()
          for (let i = 0; i < 4; i++) yield* io.send({ dialDataResponse: { data: new Uint8Array(4096) } })
          yield* io.closeWrite
          expect(yield* io.next).toBeUndefined()
        }))
        expect(victim.connections()).toBe(0)

        // 3. pays it all: only then is the address dialed (not a libp2p peer: E_DIAL_ERROR)
        yield* Effect.scoped(Effect.gen(function*() {
          const io = rawMessages(yield* attacker.host.newStream(server.addr, [AutoNat.PROTOCOL], { lazy: false }))
          yield* io.send({ dialRequest: { addrs: [Multiaddr.toBytes(victimAddr)], nonce: 3n } })
          const ask = (yield* io.next)?.dialDataRequest
          expect(victim.connections()).toBe(0)
          let sent = 0
          while (sent < Number(ask!.numBytes)) {
            yield* io.send({ dialDataResponse: { data: new Uint8Array(4096) } })
            sent += 4096
          }
          const response = (yield* io.next)?.dialResponse
          expect(response).toEqual({
            status: AutoNat.ResponseStatus.OK,
            addrIdx: 0,
            dialStatus: AutoNat.DialStatus.E_DIAL_ERROR
          })
        }))
        expect(victim.connections()).toBeGreaterThanOrEqual(1)
      }),
    60_000
  )

  it.live(
    "our client pays the dial data when asked, and refuses more than maxDialDataBytes",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ ...testing, client: false })
        const client = yield* autonatNode({ ...testing, server: false }, { listen: [ma("/ip4/0.0.0.0/tcp/0")] })
        yield* connect(client, server)
        // our listener is on every interface: 127.0.0.2 reaches it, but it is not the IP the server observes
        const port = Multiaddr.components(client.addressManager.listenAddrs()[0]!)[1]!.value
        const other = ma(`/ip4/127.0.0.2/tcp/${port}`)
        expect((yield* client.autonat.check(server.host.peerId, other)).outcome).toBe("public")
        const stingy = yield* autonatNode(
          { ...testing, server: false, maxDialDataBytes: 1000 },
          { listen: [ma("/ip4/0.0.0.0/tcp/0")] }
        )
        yield* connect(stingy, server)
        const port2 = Multiaddr.components(stingy.addressManager.listenAddrs()[0]!)[1]!.value
        const exit = yield* Effect.exit(stingy.autonat.check(server.host.peerId, ma(`/ip4/127.0.0.2/tcp/${port2}`)))
        expect(reasonOf(exit)).toBe("DialDataRefused")
      }),
    60_000
  )
})

describe("AutoNAT v2 §Requirements for ResponseStatus: E_REQUEST_REJECTED on rate limits", () => {
  it.live(
    "per peer and over all peers, within the window [autonat-v2:requirements-for-responsestatus:1]",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ ...testing, client: false, maxRequestsPerPeer: 2, maxRequests: 3 })
        const a = yield* autonatNode({ ...testing, server: false })
        const b = yield* autonatNode({ ...testing, server: false })
        yield* connect(a, server)
        yield* connect(b, server)
        const ask = (n: AutoNatNode) => Effect.exit(n.autonat.check(server.host.peerId, bare(n.addr)))
        type AutoNatNode = typeof a
        expect(reasonOf(yield* ask(a))).toBe("success")
        expect(reasonOf(yield* ask(a))).toBe("success")
        expect(reasonOf(yield* ask(a))).toBe("Rejected") // a's two per window
        expect(reasonOf(yield* ask(b))).toBe("success")
        expect(reasonOf(yield* ask(b))).toBe("Rejected") // three over all peers
      }),
    60_000
  )
})
