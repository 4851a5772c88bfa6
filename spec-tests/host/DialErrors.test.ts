/**
 * A caller of `host.dial` can tell why a dial failed by tag, through the
 * chain of errors (STYLE §7: errors keep their cause): `DialError.reason` is
 * the lower layer's own error — `TransportError`, `UpgradeError` (whose
 * `cause` is the secure channel's `SecurityError`), `LimitExceeded` — and the
 * transport error keeps the socket's system error. No message is parsed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Net from "node:net"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { chain } from "../support/errors.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"

/** A TCP port nothing listens on (bound, then closed). */
const closedPort = Effect.callback<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("host.dial: the lower error is kept and matched by tag", () => {
  it.live("a refused TCP dial is reason TransportError Refused, with the socket's ECONNREFUSED as its cause", () =>
    Effect.gen(function*() {
      const node = yield* tcpNode()
      const port = yield* closedPort
      const target = ma(`/ip4/127.0.0.1/tcp/${port}`)
      const refused = yield* node.host.dial(target).pipe(
        Effect.catchReason("DialError", "TransportError", (e) =>
          Effect.succeed({
            reason: e.reason,
            address: e.address,
            code: typeof e.cause === "object" && e.cause !== null && "code" in e.cause ? e.cause.code : undefined
          })),
        Effect.orElseSucceed(() => undefined)
      )
      expect(refused).toEqual({ reason: "Refused", address: Multiaddr.toString(target), code: "ECONNREFUSED" })
      // the message names the kind once, then the transport's own message
      const err = yield* Effect.flip(node.host.dial(target, { force: true }))
      expect(err.message).toMatch(/^Refused: tcp: dial \/ip4\/127\.0\.0\.1\/tcp\/\d+: /)
      expect(err.message.match(/Refused/g)).toHaveLength(1)
    }))

  it.live("Noise: a remote that is not the dialed peer is reason UpgradeError PeerIdMismatch, caused by the Noise SecurityError", () =>
    Effect.gen(function*() {
      const a = yield* tcpNode()
      const b = yield* tcpNode()
      const other = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const wrong = Multiaddr.encapsulate(
        Multiaddr.decapsulateCode(b.addr, Multiaddr.codes.p2p),
        ma(`/p2p/${PeerId.toString(other)}`)
      )
      const security = yield* a.host.dial(wrong).pipe(
        Effect.catchReason("DialError", "UpgradeError", (e) =>
          Effect.succeed(
            e.cause?._tag === "SecurityError" ? { upgrade: e.reason, security: e.cause.reason } : undefined
          )),
        Effect.orElseSucceed(() => undefined)
      )
      expect(security).toEqual({ upgrade: "PeerIdMismatch", security: "PeerIdMismatch" })
      // the CLI's message says PeerIdMismatch once (it used to say it three times)
      const err = yield* Effect.flip(a.host.dial(wrong, { force: true }))
      expect(err.message.match(/PeerIdMismatch/g)).toHaveLength(1)
      expect(err.message).toContain(PeerId.toString(b.host.peerId))
    }))

  it.live("resource manager: a peer past its connection limit is reason LimitExceeded with scope peer", () =>
    Effect.gen(function*() {
      const server = yield* tcpNode()
      const client = yield* tcpNode({ resources: { peer: { connectionsOutbound: 0 } } })
      const limit = yield* client.host.dial(server.addr).pipe(
        Effect.catchReason(
          "DialError",
          "LimitExceeded",
          (e) => Effect.succeed({ scope: e.scope, resource: e.resource, limit: e.limit })
        ),
        Effect.orElseSucceed(() => undefined)
      )
      expect(limit).toEqual({ scope: "peer", resource: "connectionsOutbound", limit: 0 })
      expect(client.host.connections()).toHaveLength(0)
    }))

  it.live("resource manager: the system connection limit refuses before the transport dial, reason LimitExceeded with scope system", () =>
    Effect.gen(function*() {
      const server = yield* tcpNode()
      const client = yield* tcpNode({ resources: { system: { connectionsOutbound: 0 } } })
      const err = yield* Effect.flip(client.host.dial(server.addr))
      expect(chain(err)).toEqual(["DialError", "LimitExceeded"])
      expect(err.reason._tag === "LimitExceeded" && [err.reason.scope, err.reason.resource]).toEqual([
        "system",
        "connectionsOutbound"
      ])
      expect(server.host.connections()).toHaveLength(0)
    }))
})

describe("host.listen: the transport's error is kept", () => {
  it.live("listening on an address in use is ListenError Transport, caused by the TransportError AddressInUse", () =>
    Effect.gen(function*() {
      const a = yield* tcpNode()
      const b = yield* tcpNode()
      const taken = Multiaddr.decapsulateCode(a.addr, Multiaddr.codes.p2p)
      const err = yield* Effect.flip(b.host.listen([taken]))
      expect(chain(err)).toEqual(["ListenError", "Transport", "TransportError", "AddressInUse"])
      expect(err.cause?.address).toBe(Multiaddr.toString(taken))
    }))
})
