/**
 * Fuzz targets: one per decoder of bytes that come from the network
 * (ARCHITECTURE.md §5: bad input is a typed failure, never a throw or a
 * hang). Each target runs its decoder on one input and returns a short
 * label of the outcome (`ok` or the failure's tag and reason): the engine
 * (`engine.ts`) keeps inputs that produce a label it has not seen as new
 * seeds to mutate — outcome-guided, a cheap stand-in for coverage guidance.
 * A decoder that throws is a crash; one that takes longer than the engine's
 * deadline is a hang.
 *
 * `seeds` builds valid inputs from our own encoders; `npm run fuzz --
 * --write-corpus` stores them as the seed corpus (`corpus/<target>.txt`, one
 * hex input a line), which the engine and the short CI run read.
 */
import { Effect, Result } from "effect"
import * as Envelope from "../../src/core/Envelope.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Multibase from "../../src/core/Multibase.ts"
import * as Multihash from "../../src/core/Multihash.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as PeerRecord from "../../src/core/PeerRecord.ts"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Mplex from "../../src/muxer/mplex/frame.ts"
import * as Yamux from "../../src/muxer/yamux/frame.ts"
import * as Identify from "../../src/protocols/identify/Identify.ts"
import * as DagCbor from "../../src/protocols/kad/dagCbor.ts"
import * as Ipns from "../../src/protocols/kad/ipns.ts"
import * as KadMessages from "../../src/protocols/kad/messages.ts"
import * as PubsubMessages from "../../src/protocols/pubsub/messages.ts"
import * as HandshakeState from "../../src/security/noise/HandshakeState.ts"
import * as Payload from "../../src/security/noise/Payload.ts"
import * as X25519 from "../../src/security/noise/X25519.ts"
import * as Certificate from "../../src/security/tls/Certificate.ts"
import * as Der from "../../src/security/tls/Der.ts"
import { protocolTargets } from "./protocols.ts"
import { addrs, bytesOf, ecdsa, ed25519, label, latin1, ok, secp, someAddrs, type Target, utf8 } from "./support.ts"

export type { Target } from "./support.ts"

/** Fixed Noise key pairs: seeds of message 2 stay valid for the initiator the target builds. */
const pairs = new Map<number, X25519.KeyPair>()
const fixedPair = (n: number): X25519.KeyPair => {
  let p = pairs.get(n)
  if (p === undefined) pairs.set(n, p = ok(X25519.fromPrivate(new Uint8Array(32).fill(n))))
  return p
}

const noiseInitiator = () =>
  HandshakeState.make({ initiator: true, staticKeyPair: fixedPair(1), ephemeralKeyPair: fixedPair(2) })
const noiseResponder = () =>
  HandshakeState.make({ initiator: false, staticKeyPair: fixedPair(3), ephemeralKeyPair: fixedPair(4) })

export const targets: ReadonlyArray<Target> = [
  {
    name: "varint",
    run: (b) => `${label(Varint.decode(b))}|${label(Varint.decodeBigInt(b))}`,
    seeds: Effect.succeed([0, 1, 127, 128, 300, 2 ** 31, 2 ** 53 - 1].map(Varint.encode))
  },
  {
    name: "multiaddr-bytes",
    run: (b) => {
      const r = Multiaddr.fromBytes(b)
      // a decoded address must print and parse back (the module's promise)
      if (Result.isSuccess(r)) return label(Multiaddr.fromString(Multiaddr.toString(r.success)))
      return label(r)
    },
    seeds: Effect.succeed(someAddrs.map(Multiaddr.toBytes))
  },
  {
    name: "multiaddr-string",
    run: (b) => label(Multiaddr.fromString(utf8(b))),
    seeds: Effect.succeed(addrs.map(bytesOf))
  },
  {
    name: "peer-id",
    run: (b) => `${label(PeerId.fromBytes(b))}|${label(PeerId.fromCidBytes(b))}|${label(PeerId.fromString(latin1(b)))}`,
    seeds: Effect.gen(function*() {
      const ids = [PeerId.fromPrivateKey(yield* ed25519), PeerId.fromPrivateKey(yield* secp)]
      return [...ids.map(PeerId.toBytes), ...ids.map((id) => bytesOf(PeerId.toString(id)))]
    })
  },
  {
    name: "keys",
    run: (b) => `${label(Keys.publicKeyFromProtobuf(b))}|${label(Keys.privateKeyFromProtobuf(b))}`,
    seeds: Effect.gen(function*() {
      const ks = [yield* ed25519, yield* secp, yield* ecdsa]
      return [...ks.map((k) => Keys.publicKeyToProtobuf(k.publicKey)), ...ks.map(Keys.privateKeyToProtobuf)]
    })
  },
  {
    name: "multibase-multihash",
    run: (b) => `${label(Multibase.decode(latin1(b)))}|${label(Multihash.decode(b))}`,
    seeds: Effect.gen(function*() {
      const id = PeerId.fromPrivateKey(yield* ed25519)
      return [PeerId.toBytes(id), bytesOf("zQmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"), bytesOf("bafkqaaa")]
    })
  },
  {
    name: "envelope-record",
    run: (b) => {
      const env = Envelope.decode(b)
      return `${label(env)}|${label(PeerRecord.decode(b))}|${label(PeerRecord.openSigned(b))}`
    },
    seeds: Effect.gen(function*() {
      const k = yield* ed25519
      const record = PeerRecord.make(PeerId.fromPrivateKey(k), 7n, someAddrs.slice(0, 3))
      return [ok(PeerRecord.seal(k, record)), PeerRecord.encode(record)]
    })
  },
  {
    name: "multistream",
    run: (b) => `${label(Multistream.decodeMessage(b))}|${label(Multistream.decodeList(b))}`,
    seeds: Effect.succeed([
      bytesOf("/multistream/1.0.0\n"),
      bytesOf("/ipfs/ping/1.0.0\n"),
      bytesOf("na\n"),
      ok(Multistream.encodeList(["/a\n", "/b\n"].map((s) => s.slice(0, -1))))
    ])
  },
  {
    name: "noise-message1",
    run: (b) => label(noiseResponder().readMessage(b)),
    seeds: Effect.sync(() => [ok(noiseInitiator().writeMessage(new Uint8Array(0)))])
  },
  {
    name: "noise-message2",
    run: (b) => {
      const hs = noiseInitiator()
      hs.writeMessage(new Uint8Array(0))
      return label(hs.readMessage(b))
    },
    seeds: Effect.gen(function*() {
      const k = yield* ed25519
      const i = noiseInitiator()
      const r = noiseResponder()
      r.readMessage(ok(i.writeMessage(new Uint8Array(0))))
      const payload = Payload.codec.encode({
        identity_key: Keys.publicKeyToProtobuf(k.publicKey),
        identity_sig: ok(Payload.sign(k, fixedPair(3).publicRaw))
      })
      return [ok(r.writeMessage(payload))]
    })
  },
  {
    name: "noise-payload",
    run: (b) => label(Payload.verify(b, fixedPair(3).publicRaw, undefined)),
    seeds: Effect.gen(function*() {
      const k = yield* ed25519
      return [
        Payload.codec.encode({
          identity_key: Keys.publicKeyToProtobuf(k.publicKey),
          identity_sig: ok(Payload.sign(k, fixedPair(3).publicRaw)),
          extensions: { webtransport_certhashes: [], stream_muxers: ["/yamux/1.0.0"] }
        })
      ]
    })
  },
  {
    name: "tls-certificate",
    run: (b) => `${label(Der.decode(b))}|${label(Certificate.verify(b, { now: 1_800_000_000_000 }))}`,
    seeds: Effect.gen(function*() {
      const cert = ok(Certificate.generate(yield* ed25519, 1_700_000_000_000))
      return [cert.der]
    })
  },
  {
    name: "yamux-frame",
    run: (b) => label(Yamux.decode(b)),
    seeds: Effect.succeed([
      Yamux.encode(Yamux.TYPE_DATA, Yamux.FLAG_SYN, 1, 5),
      Yamux.encode(Yamux.TYPE_WINDOW_UPDATE, Yamux.FLAG_ACK, 2, 262144),
      Yamux.encode(Yamux.TYPE_GO_AWAY, 0, 0, 1)
    ])
  },
  {
    name: "mplex-frame",
    run: (b) => `${label(Mplex.decodeHeader(b))}|${label(Mplex.decodeAll(b, 4096))}`,
    seeds: Effect.succeed([
      Mplex.encode(1, 0, bytesOf("stream")),
      Mplex.encode(3, 2, bytesOf("data")),
      Mplex.encode(5, 4, new Uint8Array(0))
    ])
  },
  {
    name: "identify",
    run: (b) => {
      const msg = Identify.IdentifyMessage.decode(b)
      return Result.isSuccess(msg)
        ? label(
          Identify.interpret(msg.success, ok(PeerId.fromString("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")))
        )
        : label(msg)
    },
    seeds: Effect.gen(function*() {
      const k = yield* ed25519
      const record = ok(PeerRecord.seal(k, PeerRecord.make(PeerId.fromPrivateKey(k), 1n, someAddrs.slice(0, 2))))
      return [
        Identify.IdentifyMessage.encode({
          protocolVersion: "ipfs/0.1.0",
          agentVersion: "fuzz",
          publicKey: Keys.publicKeyToProtobuf(k.publicKey),
          listenAddrs: someAddrs.map(Multiaddr.toBytes),
          observedAddr: Multiaddr.toBytes(someAddrs[0]!),
          protocols: ["/ipfs/ping/1.0.0", "/ipfs/id/1.0.0"],
          signedPeerRecord: record
        })
      ]
    })
  },
  {
    name: "kad",
    run: (b) => {
      const m = KadMessages.KadMessage.decode(b)
      if (Result.isFailure(m)) return label(m)
      for (const p of m.success.closerPeers) KadMessages.fromKadPeer(p)
      return "ok"
    },
    seeds: Effect.gen(function*() {
      const id = PeerId.fromPrivateKey(yield* ed25519)
      return [
        KadMessages.KadMessage.encode({
          type: 4,
          clusterLevelRaw: 0,
          key: PeerId.toBytes(id),
          closerPeers: [{ id: PeerId.toBytes(id), addrs: someAddrs.slice(0, 2).map(Multiaddr.toBytes), connection: 1 }],
          providerPeers: []
        } as KadMessages.KadMessage),
        KadMessages.KadMessage.encode({
          type: 0,
          clusterLevelRaw: 0,
          key: bytesOf("/v/key"),
          record: { key: bytesOf("/v/key"), value: bytesOf("value"), timeReceived: "" },
          closerPeers: [],
          providerPeers: []
        } as KadMessages.KadMessage)
      ]
    })
  },
  {
    name: "kad-ipns",
    run: (b) => {
      const e = Ipns.IpnsEntry.decode(b)
      return `${label(e)}|${label(DagCbor.decode(b))}|${label(Ipns.verify(new Uint8Array(0), b, 0))}`
    },
    seeds: Effect.succeed([DagCbor.encodeMap({ Value: bytesOf("/ipfs/x"), Sequence: 1n, TTL: 1n, ValidityType: 0n })])
  },
  {
    name: "gossipsub-rpc",
    run: (b) => label(PubsubMessages.RPC.decode(b)),
    seeds: Effect.succeed([
      PubsubMessages.RPC.encode({
        subscriptions: [{ subscribe: true, topicid: "t" }],
        publish: [{ from: bytesOf("f"), data: bytesOf("d"), seqno: bytesOf("12345678"), topic: "t" }],
        control: {
          ihave: [{ topicID: "t", messageIDs: [bytesOf("m")] }],
          iwant: [{ messageIDs: [bytesOf("m")] }],
          graft: [{ topicID: "t" }],
          prune: [{ topicID: "t", peers: [], backoff: 60n }],
          idontwant: []
        }
      } as unknown as PubsubMessages.RPC)
    ])
  },
  ...protocolTargets
]

export const byName = (name: string): Target | undefined => targets.find((t) => t.name === name)
