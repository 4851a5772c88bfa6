/**
 * Pubsub's metrics (Prometheus names `libp2p_pubsub_…`), after
 * go-libp2p-pubsub's `RawTracer` metrics and js-libp2p-gossipsub's
 * `metrics.ts`. Messages are counted by the core (`Pubsub.ts`) by outcome,
 * without a topic label (topics are chosen by remote peers too); the gossipsub
 * router sets the mesh gauge and observes the peer scores at each heartbeat.
 *
 * The mesh gauge's `topic` label takes only topics we subscribe to (a mesh
 * exists for joined topics alone, chosen by this node's code, not by the
 * network), and at most {@link MAX_TOPIC_LABELS} of them: further topics sum
 * into `topic="other"`, so a node joining many topics still has a bounded
 * series count. A topic we left reads 0.
 *
 * @since 0.2.0
 */
import { Metric } from "effect"
import { labelled } from "../../internal/metrics.ts"

/** What happened to a message: one we published, or one from the network. */
export type Outcome = "published" | "delivered" | "rejected" | "ignored" | "duplicate"

export const messages = labelled(
  Metric.counter("libp2p_pubsub_messages_total", {
    description: "Pubsub messages, by outcome (published, delivered, rejected, ignored, duplicate)",
    incremental: true
  }),
  "outcome"
)

export const topics = Metric.gauge("libp2p_pubsub_topics", { description: "Topics this node subscribes to" })

/** Topics that get their own `topic` label value in {@link meshPeers}; the rest read as "other". */
export const MAX_TOPIC_LABELS = 32

export const meshPeers = labelled(
  Metric.gauge("libp2p_pubsub_mesh_peers", {
    description: "Gossipsub mesh peers per subscribed topic (beyond 32 topics, summed under \"other\")"
  }),
  "topic"
)

export const peerScores = Metric.histogram("libp2p_pubsub_peer_score", {
  description: "Gossipsub peer scores, observed once per peer at each heartbeat",
  boundaries: [-1000, -100, -10, -1, 0, 1, 10, 100, 1000]
})
