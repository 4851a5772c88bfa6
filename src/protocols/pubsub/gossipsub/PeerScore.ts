/**
 * The peer score of gossipsub v1.1 (`pubsub/gossipsub/gossipsub-v1.1.md`
 * §Peer Scoring, §Score Thresholds) as a pluggable service: the router asks
 * {@link PeerScore} for a peer's score and reports what the score function
 * counts (mesh membership, first and duplicate deliveries, invalid messages,
 * behavioural penalties). A user swaps the function by providing another
 * Layer for {@link PeerScore} (the "pluggable scoring" of the nim roadmap).
 *
 * **Not implemented yet: the v1.1 score function (P1–P7, topic weights,
 * decay, caps).** The only Layer here, {@link layerZero}, scores every peer 0
 * and ignores every report: with the default thresholds (all ≤ 0) no peer is
 * ever pruned, refused gossip or graylisted for its score. It is typed and
 * honest about that (`implementsV11: false`), and the router works with it as
 * with any other score.
 *
 * @since 0.2.0
 */
import { Context, Layer } from "effect"
import type * as PeerId from "../../../core/PeerId.ts"

/** gossipsub-v1.1.md §Score Thresholds (all ≤ 0 except the two positive ones). */
export interface ScoreThresholds {
  /** Below it, no gossip to or from the peer (≤ 0). */
  readonly gossipThreshold: number
  /** Below it, our own messages are not flood-published to the peer (≤ gossipThreshold). */
  readonly publishThreshold: number
  /** Below it, the peer's RPCs are ignored (≤ publishThreshold). */
  readonly graylistThreshold: number
  /** Above it, PX from the peer is accepted (≥ 0). */
  readonly acceptPXThreshold: number
  /** The mesh median below which opportunistic grafting kicks in (≥ 0). */
  readonly opportunisticGraftThreshold: number
}

/** Thresholds of go-libp2p-pubsub's and js's tests (there are no spec defaults; the spec gives only the signs). */
export const defaultThresholds: ScoreThresholds = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20
}

export class PeerScore extends Context.Service<PeerScore, {
  /** Whether this is the v1.1 function of the spec (P1–P7). */
  readonly implementsV11: boolean
  readonly thresholds: ScoreThresholds
  /** The peer's current score. */
  readonly score: (peer: PeerId.PeerId) => number
  readonly addPeer: (peer: PeerId.PeerId) => void
  readonly removePeer: (peer: PeerId.PeerId) => void
  /** P1/P3: the peer joined our mesh of `topic`. */
  readonly graft: (peer: PeerId.PeerId, topic: string) => void
  /** P1/P3b: the peer left our mesh of `topic`. */
  readonly prune: (peer: PeerId.PeerId, topic: string) => void
  /** P2/P3: the peer delivered a valid message first. */
  readonly deliverMessage: (peer: PeerId.PeerId, topic: string) => void
  /** P3: the peer delivered a message we had already seen. */
  readonly duplicateMessage: (peer: PeerId.PeerId, topic: string | undefined) => void
  /** P4: the peer sent a message that failed validation or the signing policy. */
  readonly rejectMessage: (peer: PeerId.PeerId, topic: string) => void
  /** P7: a behavioural penalty (GRAFT during backoff, broken IWANT promises). */
  readonly addPenalty: (peer: PeerId.PeerId, count: number) => void
}>()("effect-libp2p/PeerScore") {}

const noop = () => {}

/**
 * A score of 0 for every peer, reports ignored. The v1.1 score function is not
 * implemented yet (see the module doc).
 */
export const layerZero: Layer.Layer<PeerScore> = Layer.succeed(
  PeerScore,
  PeerScore.of({
    implementsV11: false,
    thresholds: defaultThresholds,
    score: () => 0,
    addPeer: noop,
    removePeer: noop,
    graft: noop,
    prune: noop,
    deliverMessage: noop,
    duplicateMessage: noop,
    rejectMessage: noop,
    addPenalty: noop
  })
)
