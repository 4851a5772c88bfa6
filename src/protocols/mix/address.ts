/**
 * The address block of LIP-99 §8.4: tκ - 2 = 94 bytes naming the next hop or
 * the destination, in the spec's recommended layout (the one nim-libp2p-mix's
 * `multiaddr.nim` writes):
 *
 *   ip4 (4) | protocol (1: 0 = tcp, 1 = udp/quic-v1) | port (2, big endian)
 *   | peer id (39) | relayed peer id (39, for /p2p/<relay>/p2p-circuit) | zeros
 *
 * Peer ids are multihashes, so one shorter than 39 bytes (Ed25519: 38) is
 * written and read back unambiguously; nim reads exactly 39 (secp256k1 only).
 *
 * Deviation, allowed by §8.4 ("any address … encoding format agreed upon by all
 * participating mix nodes") and foreshadowed by its closing note: an address that
 * is not ip4/tcp or ip4/udp/quic-v1 (memory, ip6, dns) is written with protocol
 * byte 0xff and no ip/port, and the node resolves the peer id through its mix
 * discovery and peerstore. nim cannot decode those blocks.
 *
 * @internal
 */
import { Result } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { type MixError, mixError } from "./errors.ts"
import { ADDRESS_SIZE } from "./sphinx.ts"

const PEER_ID_SLOT = 39
const PEER_AT = 7
const RELAYED_AT = PEER_AT + PEER_ID_SLOT
/** Protocol byte: the address is resolved by peer id (our deployment-local extension). */
export const BY_PEER_ID = 0xff

export interface Decoded {
  readonly peerId: PeerId.PeerId
  /** The dialable address, when the block carries one (with /p2p of the peer). */
  readonly addr?: Multiaddr.Multiaddr | undefined
}

const bad = (message: string) => mixError("BadAddress", `mix: ${message}`)

const ip4Parts = (ma: Multiaddr.Multiaddr) => {
  const [ip, transport, third] = ma.components
  if (ip?.code !== Multiaddr.codes.ip4 || ip.bytes === undefined) return undefined
  if (transport?.code === Multiaddr.codes.tcp && transport.bytes !== undefined) {
    return { ip: ip.bytes, proto: 0, port: transport.bytes }
  }
  if (transport?.code === Multiaddr.codes.udp && transport.bytes !== undefined && third?.name === "quic-v1") {
    return { ip: ip.bytes, proto: 1, port: transport.bytes }
  }
  return undefined
}

const relayOf = (ma: Multiaddr.Multiaddr): Uint8Array | undefined => {
  const cs = ma.components
  const circuit = cs.findIndex((c) => c.code === Multiaddr.codes["p2p-circuit"])
  if (circuit < 1) return undefined
  const relay = cs[circuit - 1]
  return relay?.code === Multiaddr.codes.p2p ? relay.bytes : undefined
}

/** Encode `peer` reachable at `addr` (when given and representable) into a 94-byte block. */
export const encode = (peer: PeerId.PeerId, addr?: Multiaddr.Multiaddr): Result.Result<Uint8Array, MixError> => {
  const id = PeerId.toBytes(peer)
  if (id.byteLength > PEER_ID_SLOT) return Result.fail(bad(`a peer id of ${id.byteLength} bytes does not fit 39`))
  const out = new Uint8Array(ADDRESS_SIZE)
  const parts = addr === undefined ? undefined : ip4Parts(addr)
  if (parts === undefined) {
    out[4] = BY_PEER_ID
    out.set(id, PEER_AT)
    return Result.succeed(out)
  }
  out.set(parts.ip, 0)
  out[4] = parts.proto
  out.set(parts.port, 5)
  const relay = addr === undefined ? undefined : relayOf(addr)
  if (relay !== undefined) {
    if (relay.byteLength > PEER_ID_SLOT) return Result.fail(bad("the relay's peer id does not fit 39 bytes"))
    out.set(relay, PEER_AT)
    out.set(id, RELAYED_AT)
  } else {
    out.set(id, PEER_AT)
  }
  return Result.succeed(out)
}

/** A multihash from a 39-byte slot: its own length prefix says where it ends; the rest must be zero. */
const peerFromSlot = (slot: Uint8Array): Result.Result<PeerId.PeerId | undefined, MixError> => {
  if (slot.every((b) => b === 0)) return Result.succeed(undefined)
  const length = slot[1]
  if (length === undefined || length + 2 > slot.byteLength || length > 0x7f) {
    return Result.fail(bad("a peer id slot that holds no multihash"))
  }
  if (!slot.subarray(2 + length).every((b) => b === 0)) return Result.fail(bad("bytes after a peer id"))
  const id = PeerId.fromBytes(slot.slice(0, 2 + length))
  return Result.isFailure(id)
    ? Result.fail(mixError("BadAddress", id.failure.message, id.failure))
    : Result.succeed(id.success)
}

/** Decode a 94-byte block. */
export const decode = (block: Uint8Array): Result.Result<Decoded, MixError> => {
  if (block.byteLength !== ADDRESS_SIZE) return Result.fail(bad(`an address block has ${ADDRESS_SIZE} bytes`))
  if (!block.subarray(RELAYED_AT + PEER_ID_SLOT).every((b) => b === 0)) {
    return Result.fail(bad("bytes after the peer ids"))
  }
  const first = peerFromSlot(block.subarray(PEER_AT, RELAYED_AT))
  if (Result.isFailure(first)) return Result.fail(first.failure)
  const second = peerFromSlot(block.subarray(RELAYED_AT, RELAYED_AT + PEER_ID_SLOT))
  if (Result.isFailure(second)) return Result.fail(second.failure)
  if (first.success === undefined) return Result.fail(bad("an address block without a peer id"))
  const proto = block[4]
  if (proto === BY_PEER_ID) {
    return second.success === undefined && block.subarray(0, 4).every((b) => b === 0) && block[5] === 0 &&
        block[6] === 0
      ? Result.succeed({ peerId: first.success })
      : Result.fail(bad("a by-peer-id block with an ip, a port or a second peer id"))
  }
  if (proto !== 0 && proto !== 1) return Result.fail(bad(`unknown protocol byte ${proto}`))
  const ip = Array.from(block.subarray(0, 4)).join(".")
  const port = (block[5]! << 8) | block[6]!
  const base = proto === 0 ? `/ip4/${ip}/tcp/${port}` : `/ip4/${ip}/udp/${port}/quic-v1`
  const text = second.success === undefined
    ? `${base}/p2p/${first.success.toString()}`
    : `${base}/p2p/${first.success.toString()}/p2p-circuit/p2p/${second.success.toString()}`
  const addr = Multiaddr.fromString(text)
  if (Result.isFailure(addr)) return Result.fail(mixError("BadAddress", addr.failure.message, addr.failure))
  return Result.succeed({ peerId: second.success ?? first.success, addr: addr.success })
}
