/**
 * `/plaintext/2.0.0` (plaintext/README.md) against js-libp2p's `@libp2p/plaintext` in a
 * separate process, both directions, with Ed25519, RSA and secp256k1 identities on our side
 * and on theirs: the Exchange carries each side's key and id (§Protocol), each side derives
 * the other's peer id from it, then ping and identify run over the unencrypted connection.
 * Also: plaintext is never offered unless named (not in the default preference list).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as Nodes from "../../layers/Node.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Plaintext from "../../src/security/Plaintext.ts"
import { ma } from "../support/multiaddr.ts"
import { buildNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const ourNode = (key: Keys.PrivateKey) =>
  buildNode(Nodes.Default({ security: ["plaintext"], privateKey: key, listen: [ma("/ip4/127.0.0.1/tcp/0")] }))

const idOf = (text: string) => {
  const r = PeerId.fromString(text)
  if (r._tag === "Failure") throw new Error(`bad peer id ${text}`)
  return r.success
}

const KEYS: ReadonlyArray<readonly [Keys.KeyType, Keys.KeyType]> = [
  ["Ed25519", "RSA"],
  ["RSA", "Secp256k1"],
  ["Secp256k1", "Ed25519"]
]

describe("interop with js-libp2p @libp2p/plaintext (/plaintext/2.0.0)", () => {
  for (const [ourType, jsType] of KEYS) {
    it.live(
      `plaintext §Protocol: we (${ourType}) dial js (${jsType}) and js dials us; ids from the Exchange, ping, identify`,
      () =>
        Effect.gen(function*() {
          const jsKey = yield* Keys.generate(jsType, { bits: 2048 })
          const [js, ours] = yield* Effect.all([
            JsPeer.start({ encrypters: ["plaintext"], privateKey: Keys.privateKeyToProtobuf(jsKey) }),
            Effect.flatMap(Keys.generate(ourType, { bits: 2048 }), ourNode)
          ], { concurrency: 2 })
          expect(js.peerId).toBe(PeerId.toString(PeerId.fromPrivateKey(jsKey)))
          const conn = yield* ours.host.dial(ma(js.addr))
          expect(conn.security).toBe(Plaintext.PROTOCOL)
          expect(PeerId.equals(conn.remotePeer, idOf(js.peerId))).toBe(true)
          expect(yield* ours.ping.ping(idOf(js.peerId), { count: 2 })).toHaveLength(2)
          const id = yield* ours.identify.identify(conn)
          expect(id.agentVersion?.startsWith("js-libp2p/")).toBe(true)
          yield* ours.host.hangUp(idOf(js.peerId))
          const ourId = PeerId.toString(ours.host.peerId)
          // js has seen the close (else it may reuse its closing connection)
          yield* js.connections.pipe(
            Effect.flatMap((c) =>
              c.connections.some((x) => x.peerId === ourId) ? Effect.fail("js still connected") : Effect.void
            ),
            Effect.retry(Schedule.spaced("100 millis")),
            Effect.timeout("10 seconds")
          )

          // js dials us
          const rtts = yield* js.ping({ addr: ours.addr.toString() }, { count: 2 })
          expect(rtts.rtts).toHaveLength(2)
          const jsConns = yield* js.connections
          expect(jsConns.connections.filter((c) => c.peerId === ourId).map((c) => c.encryption)).toContain(
            Plaintext.PROTOCOL
          )
        }),
      60_000
    )
  }

  it.live(
    "plaintext is not offered by default: a default node cannot reach a plaintext-only js peer",
    () =>
      Effect.gen(function*() {
        const js = yield* JsPeer.start({ encrypters: ["plaintext"] })
        const ours = yield* buildNode(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] }))
        const exit = yield* Effect.exit(ours.host.dial(ma(js.addr)))
        expect(exit._tag).toBe("Failure")
      }),
    60_000
  )
})
