/**
 * `/plaintext/2.0.0` (plaintext/README.md §Protocol) over an in-memory pair: the Exchange
 * each way, ids derived from the keys, bytes passing unchanged afterwards (also bytes the
 * remote sent right behind its Exchange), and the remote's bad Exchanges refused with typed
 * errors: an id that is not its key's, a wrong expected peer, an oversized or truncated
 * message, garbage.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as LengthPrefixed from "../../src/core/LengthPrefixed.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Protobuf from "../../src/core/Protobuf.ts"
import * as Plaintext from "../../src/security/Plaintext.ts"

const Exchange = Protobuf.define(`
syntax = "proto2";
message Exchange { optional bytes id = 1; optional bytes pubkey = 2; }`).codec<{
  readonly id?: Uint8Array
  readonly pubkey?: Uint8Array
}>("Exchange")

const text = (s: string) => new TextEncoder().encode(s)

/** Run our inbound side against a scripted remote that writes `bytes` first; the outcome. */
const againstRemote = (bytes: Uint8Array, options: { readonly remotePeer?: PeerId.PeerId } = {}) =>
  Effect.gen(function*() {
    const [ours, remote] = yield* Duplex.pair()
    const key = yield* Keys.generate("Ed25519")
    yield* remote.write([bytes])
    return yield* Effect.flip(Plaintext.plaintext.secureOutbound(ours, { localKey: key, ...options }))
  })

describe("plaintext/2.0.0", () => {
  it.effect("§Protocol: each side learns the other's id from its key; then bytes pass unchanged", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const ka = yield* Keys.generate("Secp256k1")
      const kb = yield* Keys.generate("Ed25519")
      const [sa, sb] = yield* Effect.all([
        Plaintext.plaintext.secureOutbound(a, { localKey: ka, remotePeer: PeerId.fromPrivateKey(kb) }),
        Plaintext.plaintext.secureInbound(b, { localKey: kb })
      ], { concurrency: 2 })
      expect(PeerId.equals(sa.remotePeer, PeerId.fromPrivateKey(kb))).toBe(true)
      expect(PeerId.equals(sb.remotePeer, PeerId.fromPrivateKey(ka))).toBe(true)
      expect(Keys.equals(sb.remotePublicKey, ka.publicKey)).toBe(true)
      yield* sa.duplex.write([text("hello")])
      expect(new TextDecoder().decode(Duplex.concat(yield* sb.duplex.read))).toBe("hello")
    }))

  it.effect("§Protocol: bytes the remote sent right behind its Exchange are not lost", () =>
    Effect.gen(function*() {
      const remoteKey = yield* Keys.generate("Ed25519")
      const exchange = Exchange.encode({
        id: PeerId.toBytes(PeerId.fromPrivateKey(remoteKey)),
        pubkey: Keys.publicKeyToProtobuf(remoteKey.publicKey)
      })
      const [ours, remote] = yield* Duplex.pair()
      yield* remote.write([LengthPrefixed.encode(exchange), text("early")])
      const secured = yield* Plaintext.plaintext.secureInbound(ours, { localKey: yield* Keys.generate("Ed25519") })
      expect(new TextDecoder().decode(Duplex.concat(yield* secured.duplex.read))).toBe("early")
    }))

  it.effect("§Protocol: an id that is not the key's, and a peer other than the one dialed, are refused", () =>
    Effect.gen(function*() {
      const k1 = yield* Keys.generate("Ed25519")
      const k2 = yield* Keys.generate("Ed25519")
      const lying = Exchange.encode({
        id: PeerId.toBytes(PeerId.fromPrivateKey(k2)),
        pubkey: Keys.publicKeyToProtobuf(k1.publicKey)
      })
      const e1 = yield* againstRemote(LengthPrefixed.encode(lying))
      expect([e1._tag, e1.reason]).toEqual(["SecurityError", "InvalidPayload"])
      const honest = Exchange.encode({
        id: PeerId.toBytes(PeerId.fromPrivateKey(k1)),
        pubkey: Keys.publicKeyToProtobuf(k1.publicKey)
      })
      const e2 = yield* againstRemote(LengthPrefixed.encode(honest), { remotePeer: PeerId.fromPrivateKey(k2) })
      expect(e2.reason).toBe("PeerIdMismatch")
    }))

  it.effect("bad input: garbage, a missing key, an oversized Exchange, a truncated one", () =>
    Effect.gen(function*() {
      expect((yield* againstRemote(LengthPrefixed.encode(Uint8Array.from([0xff, 0xff, 0xff])))).reason).toBe(
        "InvalidPayload"
      )
      expect((yield* againstRemote(LengthPrefixed.encode(Exchange.encode({ id: new Uint8Array(3) })))).reason).toBe(
        "InvalidPayload"
      )
      const big = LengthPrefixed.encode(new Uint8Array(Plaintext.MAX_EXCHANGE_SIZE + 1))
      expect((yield* againstRemote(big)).reason).toBe("MessageTooLarge")
      // truncated: the remote closes after half a message
      const [ours, remote] = yield* Duplex.pair()
      yield* remote.write([Uint8Array.from([40, 1, 2, 3])])
      yield* remote.closeWrite
      const e = yield* Effect.flip(
        Plaintext.plaintext.secureInbound(ours, { localKey: yield* Keys.generate("Ed25519") })
      )
      expect(e.reason).toBe("Closed")
    }))
})
