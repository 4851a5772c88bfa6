/**
 * Peerstore: what the node knows about other peers — addresses, public key,
 * protocols, agent and protocol versions, and the latest signed peer record
 * (RFC 0003) — kept in memory for now.
 *
 * Addresses from a verified signed peer record replace the peer's addresses
 * (they are certified); unsigned addresses are merged in.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type * as Keys from "../core/Keys.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"

export interface PeerInfo {
  readonly peerId: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  readonly publicKey?: Keys.PublicKey
  readonly protocols: ReadonlyArray<string>
  readonly agentVersion?: string
  readonly protocolVersion?: string
  /** Sequence number of the last certified record accepted (records with lower seq are ignored). */
  readonly recordSeq?: bigint
}

export interface PeerUpdate {
  readonly addrs?: ReadonlyArray<Multiaddr.Multiaddr>
  readonly publicKey?: Keys.PublicKey
  readonly protocols?: ReadonlyArray<string>
  readonly agentVersion?: string
  readonly protocolVersion?: string
}

export class Peerstore extends Context.Service<Peerstore, {
  readonly get: (peer: PeerId.PeerId) => PeerInfo | undefined
  /** Merge what is known (addresses are added, other fields replaced). */
  readonly merge: (peer: PeerId.PeerId, update: PeerUpdate) => Effect.Effect<PeerInfo>
  /** Replace a peer's addresses with those of a certified record, if `seq` is newer than the last one. */
  readonly certify: (
    peer: PeerId.PeerId,
    seq: bigint,
    addrs: ReadonlyArray<Multiaddr.Multiaddr>
  ) => Effect.Effect<boolean>
  readonly all: () => ReadonlyArray<PeerInfo>
  readonly remove: (peer: PeerId.PeerId) => Effect.Effect<void>
}>()("effect-libp2p/Peerstore") {}

/** A peer store held in memory. */
export const layerMemory: Layer.Layer<Peerstore> = Layer.sync(Peerstore, () => makeMemory())

const NONE: ReadonlyArray<never> = Object.freeze([])

/**
 * `a` then the addresses of `b` not already in it. When that is `a` or `b`
 * itself, that array is kept instead of a copy (an entry lives as long as the peer).
 */
const mergeAddrs = (
  a: ReadonlyArray<Multiaddr.Multiaddr>,
  b: ReadonlyArray<Multiaddr.Multiaddr>
): ReadonlyArray<Multiaddr.Multiaddr> => {
  const out = [...a]
  for (const x of b) if (!out.some((y) => Multiaddr.equals(x, y))) out.push(x)
  return out.length === a.length ? a : a.length === 0 && out.length === b.length ? b : out
}

export const makeMemory = (): Peerstore["Service"] => {
  const peers = new Map<string, PeerInfo>()
  const key = (p: PeerId.PeerId) => PeerId.toString(p)
  const current = (peer: PeerId.PeerId): PeerInfo =>
    peers.get(key(peer)) ?? { peerId: peer, addrs: NONE, protocols: NONE }
  return {
    get: (peer) => peers.get(key(peer)),
    merge: (peer, update) =>
      Effect.sync(() => {
        const cur = current(peer)
        const next: PeerInfo = {
          ...cur,
          ...(update.publicKey !== undefined ? { publicKey: update.publicKey } : {}),
          ...(update.protocols !== undefined ? { protocols: update.protocols } : {}),
          ...(update.agentVersion !== undefined ? { agentVersion: update.agentVersion } : {}),
          ...(update.protocolVersion !== undefined ? { protocolVersion: update.protocolVersion } : {}),
          addrs: update.addrs !== undefined ? mergeAddrs(cur.addrs, update.addrs) : cur.addrs
        }
        peers.set(key(peer), next)
        return next
      }),
    certify: (peer, seq, addrs) =>
      Effect.sync(() => {
        const cur = current(peer)
        if (cur.recordSeq !== undefined && seq <= cur.recordSeq) return false
        peers.set(key(peer), { ...cur, addrs, recordSeq: seq })
        return true
      }),
    all: () => Array.from(peers.values()),
    remove: (peer) => Effect.sync(() => void peers.delete(key(peer)))
  }
}
