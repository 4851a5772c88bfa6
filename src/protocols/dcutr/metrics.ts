/**
 * DCUtR's metrics (Prometheus names `libp2p_dcutr_…`), after go-libp2p's
 * `p2p/protocol/holepunch/metrics.go`: hole punches by side and outcome (the
 * failure's `DcutrError` reason), and the rounds a successful one took.
 *
 * @since 0.2.0
 */
import { Metric } from "effect"
import { labelled } from "../../internal/metrics.ts"

/** One per hole punch: `side` initiator|responder, `outcome` `success` or the `DcutrError` reason. */
export const holePunches = labelled(
  Metric.counter("libp2p_dcutr_hole_punches_total", {
    description: "Hole punches, by side and outcome",
    incremental: true
  }),
  "side",
  "outcome"
)

/** The round a successful hole punch succeeded in (0: the unilateral dial before the protocol). */
export const attempts = Metric.histogram("libp2p_dcutr_success_attempt", {
  description: "Round of a successful hole punch",
  boundaries: [0, 1, 2, 3]
})
