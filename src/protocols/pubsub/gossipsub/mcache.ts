/**
 * The gossipsub message cache (`gossipsub-v1.0.md` §Message Cache): the
 * messages of the last `length` heartbeats in windows, the ids of the last
 * `gossip` windows advertised in IHAVE, and how often each peer asked for
 * each message by IWANT (v1.1 §Spam Protection: `GossipRetransmission`).
 * Pure and synchronous; `shift` is called once per heartbeat.
 *
 * Anchors: go-libp2p-pubsub `mcache.go`, rust `gossipsub/src/mcache.rs`.
 *
 * @internal
 */
import type * as Messages from "../messages.ts"

interface Entry {
  readonly message: Messages.Message
  readonly id: Uint8Array
  readonly topic: string
  readonly iwant: Map<string, number>
}

export interface MessageCache {
  readonly put: (idKey: string, id: Uint8Array, topic: string, message: Messages.Message) => void
  readonly get: (idKey: string) => Messages.Message | undefined
  /** The message for `peer`'s IWANT, unless it asked more than `maxTransmissions` times. */
  readonly getForPeer: (idKey: string, peer: string, maxTransmissions: number) => Messages.Message | undefined
  /** Ids of `topic`'s messages in the gossip windows. */
  readonly gossipIds: (topic: string) => Array<Uint8Array>
  readonly shift: () => void
  readonly size: () => number
}

export const make = (length: number, gossip: number): MessageCache => {
  const entries = new Map<string, Entry>()
  const windows: Array<Array<string>> = [[]]
  return {
    put: (idKey, id, topic, message) => {
      if (entries.has(idKey)) return
      entries.set(idKey, { message, id, topic, iwant: new Map() })
      windows[0]!.push(idKey)
    },
    get: (idKey) => entries.get(idKey)?.message,
    getForPeer: (idKey, peer, maxTransmissions) => {
      const e = entries.get(idKey)
      if (e === undefined) return undefined
      const n = (e.iwant.get(peer) ?? 0) + 1
      e.iwant.set(peer, n)
      return n > maxTransmissions ? undefined : e.message
    },
    gossipIds: (topic) => {
      const out: Array<Uint8Array> = []
      for (let w = 0; w < Math.min(gossip, windows.length); w++) {
        for (const k of windows[w]!) {
          const e = entries.get(k)
          if (e !== undefined && e.topic === topic) out.push(e.id)
        }
      }
      return out
    },
    shift: () => {
      if (windows.length >= length) {
        for (const k of windows.pop()!) entries.delete(k)
      }
      windows.unshift([])
    },
    size: () => entries.size
  }
}
