/**
 * Full-process interop, keys: a private key we generate and serialize as the peer-ids spec's
 * protobuf `PrivateKey` (Keys.privateKeyToProtobuf) is handed to a js-libp2p v3 node in a
 * separate process (the same bytes js's `privateKeyFromProtobuf` reads). Spec: peer-ids
 * §Keys (key types and their protobuf encodings) and §Peer Ids (identity multihash for
 * keys of at most 42 bytes, SHA-256 otherwise — RSA here), plus noise §The libp2p Handshake
 * Payload (the key signs the handshake, so dialing `/p2p/<our computed id>` only succeeds if
 * js really runs with that key).
 *
 * ECDSA is left out: js-libp2p's ECDSA keys do not follow the spec (see
 * spec-tests/core/KeysInterop.test.ts, where the deviation is asserted).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { chain } from "../support/errors.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const types = ["Ed25519", "Secp256k1", "RSA"] as const

describe.concurrent("interop with js-libp2p (separate process): keys we write", () => {
  for (const type of types) {
    it.live(
      `peer-ids spec §Keys, §Peer Ids: a ${
        type === "RSA" ? "RSA-2048" : type
      } key we write gives js the peer id we compute, and js authenticates with it`,
      () =>
        Effect.gen(function*() {
          const [ours, key] = yield* Effect.all([tcpNode(), Keys.generate(type, { bits: 2048 })], { concurrency: 2 })
          const bytes = Keys.privateKeyToProtobuf(key)
          // the protobuf's KeyType field is ours
          expect(bytes[0]).toBe(0x08)
          expect(bytes[1]).toBe(Keys.KeyTypeCode[type])
          const js = yield* JsPeer.start({ privateKey: bytes })
          const expected = PeerId.toString(PeerId.fromPrivateKey(key))
          expect(js.peerId).toBe(expected)
          // RSA ids hash the key (Qm…), Ed25519 and secp256k1 inline it (12D3Koo… / 16Uiu2…)
          expect(js.peerId.slice(0, 2)).toBe(type === "RSA" ? "Qm" : type === "Ed25519" ? "12" : "16")
          // dial /p2p/<our id for the key>: Noise checks js's handshake signature against it
          const conn = yield* ours.host.dial(ma(js.addr))
          expect(PeerId.toString(conn.remotePeer)).toBe(expected)
          expect(Keys.equals(conn.remotePublicKey, key.publicKey)).toBe(true)
          // identify carries the same public key, and a record signed with it that we verified
          const id = yield* ours.identify.identify(conn)
          expect(id.publicKey !== undefined && Keys.equals(id.publicKey, key.publicKey)).toBe(true)
          expect(id.signedPeerRecord).toBeDefined()
          // js accepts our record on the same connection
          const back = yield* js.identify(PeerId.toString(ours.host.peerId))
          expect(back.peerRecordVerified).toBe(true)
          // a wrong /p2p id is refused (the key really is checked)
          const wrong = PeerId.toString(PeerId.fromPrivateKey(yield* Keys.generate("Ed25519")))
          const other = yield* tcpNode()
          const addr = ma(js.addr.replace(js.peerId, wrong))
          expect(Multiaddr.getPeerId(addr)).toBe(wrong)
          const err = yield* Effect.flip(other.host.dial(addr))
          expect(chain(err)).toEqual(["DialError", "UpgradeError", "PeerIdMismatch", "SecurityError", "PeerIdMismatch"])
        })
    )
  }
})
