/**
 * Floodsub, `/floodsub/1.0.0` (libp2p specs `pubsub/README.md`; the router of
 * go-libp2p-pubsub `floodsub.go`): every accepted message goes to every peer
 * subscribed to its topic, except the peer it came from and its author. No
 * control messages (any that arrive are ignored).
 *
 * `layer(options)` provides the {@link Pubsub.Pubsub} service with this router.
 *
 * @since 0.2.0
 */
import { Bytes, Effect } from "effect"
import * as PeerId from "../../../core/PeerId.ts"
import * as Pubsub from "../Pubsub.ts"

export const PROTOCOL = "/floodsub/1.0.0"

/** The floodsub router over the core's context. */
export const router: Pubsub.RouterFactory = (ctx) =>
  Effect.succeed({
    protocols: [PROTOCOL],
    addPeer: () => {},
    removePeer: () => {},
    onSubscription: () => {},
    join: () => {},
    leave: () => {},
    onFirstSeen: () => {},
    onDuplicate: () => {},
    onReject: () => {},
    handleControl: () => {},
    acceptFrom: () => true,
    forward: (msg, from) => {
      const author = msg.message.from
      const rpc = { subscriptions: [], publish: [msg.message] }
      let sent = 0
      for (const peer of ctx.peers.values()) {
        if (peer === from || peer.protocol === "" || !peer.topics.has(msg.topic)) continue
        if (author !== undefined && Bytes.Equivalence(PeerId.toBytes(peer.id), author)) continue
        if (ctx.send(peer, rpc)) sent++
      }
      return sent
    }
  })

/** The {@link Pubsub.Pubsub} service routed by floodsub. */
export const layer = (options: Pubsub.PubsubOptions = {}) => Pubsub.layerWith(router, options)
