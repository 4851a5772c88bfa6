/**
 * The Sphinx test vectors of `spec-tests/vectors/mix/sphinx-vectors.json`
 * (documented in the README beside it): fixed keys, ephemeral secrets, delays
 * and messages in, every packet at every hop out. `build()` computes them with
 * our implementation; `generateVectors.ts` writes the file and `Vectors.test.ts`
 * checks ours against the committed file.
 */
import { Result } from "effect"
import * as crypto from "node:crypto"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Address from "../../../src/protocols/mix/address.ts"
import * as Message from "../../../src/protocols/mix/message.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"
import { toHex } from "../../support/vectors.ts"
import { seededKey } from "../kad/support.ts"

/** A deterministic byte string: SHA-256 in counter mode over a label. */
export const bytesOf = (label: string, length: number): Uint8Array => {
  const out = new Uint8Array(length)
  for (let i = 0, at = 0; at < length; i++, at += 32) {
    out.set(crypto.createHash("sha256").update(`${label}/${i}`).digest().subarray(0, Math.min(32, length - at)), at)
  }
  return out
}

export const get = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)

/** Node i of the vectors: an Ed25519 peer id (seed i), a TCP address, an X25519 key from a label. */
export const vectorNode = (i: number) => {
  const peerId = PeerId.fromPrivateKey(seededKey(1000 + i))
  const addr = get(Multiaddr.fromString(`/ip4/10.0.0.${i + 1}/tcp/${4000 + i}`))
  const privateKey = bytesOf(`mix-vector-node-${i}`, 32)
  return {
    peerId,
    addr,
    privateKey,
    publicKey: get(Sphinx.publicKeyOf(privateKey)),
    address: get(Address.encode(peerId, addr))
  }
}

const KEY_LABELS = ["aes_key", "iv", "mac_key", "delta_aes_key", "delta_iv"] as const

const keysOf = (s: Uint8Array) => Object.fromEntries(KEY_LABELS.map((l) => [l, toHex(Sphinx.kdf(Buffer.from(l), s))]))

/** Walk a packet through `privateKeys`, recording each hop's input and outcome. */
const walk = (packet: Uint8Array, privateKeys: ReadonlyArray<Uint8Array>) => {
  const hops: Array<Record<string, unknown>> = []
  let p = packet
  for (const key of privateKeys) {
    const session = get(Sphinx.sessionOf(p, key))
    const out = get(Sphinx.processPacket(p, key))
    const base = { packet: toHex(p), sharedSecret: toHex(session.s), tag: toHex(session.tag), keys: keysOf(session.s) }
    if (out._tag === "Forward") {
      hops.push({ ...base, outcome: "forward", nextHop: toHex(out.next), delay: out.delay })
      p = out.packet
    } else if (out._tag === "Exit") {
      hops.push({ ...base, outcome: "exit", destination: toHex(out.destination), message: toHex(out.message) })
    } else {
      hops.push({ ...base, outcome: "reply", surbId: toHex(out.surbId), delta: toHex(out.delta) })
    }
  }
  return hops
}

const forwardCase = (name: string, pathIdx: ReadonlyArray<number>, delays: ReadonlyArray<number>) => {
  const nodes = pathIdx.map(vectorNode)
  const dest = vectorNode(9)
  const ephemeral = bytesOf(`${name}/ephemeral`, 32)
  const application = bytesOf(`${name}/ping`, 32)
  const message = get(Message.encodeForward("/ipfs/ping/1.0.0", [], application, 1))
  const destination = get(Address.encode(dest.peerId, dest.addr))
  const { packet } = get(
    Sphinx.createPacket({
      path: nodes.map((n) => ({ publicKey: n.publicKey, address: n.address })),
      delays,
      destination,
      ephemeral,
      message
    })
  )
  return {
    name,
    input: {
      path: nodes.map((n, i) => ({
        index: pathIdx[i],
        privateKey: toHex(n.privateKey),
        publicKey: toHex(n.publicKey),
        address: toHex(n.address),
        multiaddr: `${n.addr.toString()}/p2p/${n.peerId.toString()}`
      })),
      delays,
      ephemeral: toHex(ephemeral),
      destination: toHex(destination),
      destinationMultiaddr: `${dest.addr.toString()}/p2p/${dest.peerId.toString()}`,
      codec: "/ipfs/ping/1.0.0",
      application: toHex(application),
      message: toHex(message)
    },
    hops: walk(packet, nodes.map((n) => n.privateKey))
  }
}

const surbCase = () => {
  const name = "surb-reply-L3"
  const creator = vectorNode(0)
  const pathNodes = [vectorNode(3), vectorNode(4), creator]
  const ephemeral = bytesOf(`${name}/ephemeral`, 32)
  const id = bytesOf(`${name}/id`, Sphinx.SURB_ID_SIZE)
  const key = bytesOf(`${name}/key`, Sphinx.K)
  const { secrets, surb } = get(
    Sphinx.createSurb({
      path: pathNodes.map((n) => ({ publicKey: n.publicKey, address: n.address })),
      delays: [7, 9, 0],
      ephemeral,
      id,
      key
    })
  )
  const reply = bytesOf(`${name}/pong`, 32)
  const message = get(Message.encodeReply(reply, 2))
  const packet = get(Sphinx.useSurb(surb, message))
  const hops = walk(packet, pathNodes.map((n) => n.privateKey))
  const last = hops[hops.length - 1]!
  const opened = get(Sphinx.openReply(secrets, Buffer.from(last["delta"] as string, "hex")))
  return {
    name,
    input: {
      path: pathNodes.map((n) => ({
        privateKey: toHex(n.privateKey),
        publicKey: toHex(n.publicKey),
        address: toHex(n.address)
      })),
      delays: [7, 9, 0],
      ephemeral: toHex(ephemeral),
      surbId: toHex(id),
      surbKey: toHex(key),
      reply: toHex(reply),
      message: toHex(message)
    },
    surb: toHex(Sphinx.encodeSurb(surb)),
    hops,
    opened: toHex(opened)
  }
}

export const build = () => ({
  description: "LIP-99 (LIBP2P-MIX) Sphinx packets, hop by hop. See README.md beside this file.",
  spec: "vacp2p/rfc-index docs/ift-ts/raw/mix.md (timeline entry 2026-01-29, 925aeac)",
  generator: "spec-tests/protocols/mix/generateVectors.ts (effect-libp2p)",
  parameters: {
    kappa: Sphinx.K,
    r: Sphinx.R,
    t: Sphinx.T,
    headerSize: Sphinx.HEADER_SIZE,
    packetSize: Sphinx.PACKET_SIZE,
    payloadSize: Sphinx.PAYLOAD_SIZE,
    messageSize: Sphinx.MESSAGE_SIZE,
    kdfLabels: KEY_LABELS
  },
  cases: [
    forwardCase("forward-L3", [1, 2, 3], [100, 250, 0]),
    forwardCase("forward-L5", [5, 4, 3, 2, 1], [1, 2, 3, 4, 0]),
    surbCase()
  ]
})
