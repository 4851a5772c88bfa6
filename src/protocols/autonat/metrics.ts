/**
 * AutoNAT's metrics (Prometheus names `libp2p_autonat_*`), after go-libp2p's
 * `p2p/protocol/autonatv2/metrics.go`: requests our server handled by outcome
 * (served: `ok`, `dial_error`, `dial_back_error`; refused: the reason), checks
 * our client ran by outcome, and the node's reachability. Labels take values
 * from fixed sets.
 *
 * @since 0.3.0
 */
import { Metric } from "effect"
import { labelled } from "../../internal/metrics.ts"

/** Server: dial requests handled, by protocol version and outcome. */
export const serverRequests = labelled(
  Metric.counter("libp2p_autonat_server_requests_total", {
    description: "AutoNAT dial requests handled by our server, by version and outcome (ok, dial_error, "
      + "dial_back_error, or the reason it was refused)",
    incremental: true
  }),
  "version",
  "outcome"
)

/** Client: checks of one address at one server, by outcome (`public`, `private`, or the error reason). */
export const clientChecks = labelled(
  Metric.counter("libp2p_autonat_client_checks_total", {
    description: "AutoNAT checks our client ran, by outcome (public, private, dial_back_error, or the error reason)",
    incremental: true
  }),
  "outcome"
)

/** The node's reachability: 1 on the current value's series, 0 on the others. */
export const reachability = labelled(
  Metric.gauge("libp2p_autonat_reachability", {
    description: "The node's reachability as AutoNAT last found it (1 on the current value)"
  }),
  "reachability"
)

/** Addresses by their AutoNAT verdict. */
export const addresses = labelled(
  Metric.gauge("libp2p_autonat_addresses", { description: "Our checked addresses, by AutoNAT verdict" }),
  "reachability"
)
