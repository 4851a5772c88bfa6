/**
 * AutoNAT's metrics and status section (issue 17 with issue 16's conventions):
 * `libp2p_autonat_server_requests_total` by version and outcome,
 * `libp2p_autonat_client_checks_total` by outcome, `libp2p_autonat_reachability`
 * and `libp2p_autonat_addresses`; the status snapshot has an `autonat` section.
 */
import { describe, expect, it } from "@effect/vitest"
import { type Context, Effect } from "effect"
import * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as Metrics from "../../../src/observability/Metrics.ts"
import * as Status from "../../../src/observability/Status.ts"
import { ma } from "../../support/multiaddr.ts"
import * as Prometheus from "../../support/prometheus.ts"
import { autonatNode, closedPort, connect } from "./support.ts"

// oxlint-disable-next-line no-explicit-any
const metricsOf = (ctx: Context.Context<any>) => Prometheus.parse(Metrics.formatOf(ctx))

describe("AutoNAT metrics", () => {
  it.live(
    "served and refused requests, checks by outcome, the reachability gauge, the status section",
    () =>
      Effect.gen(function*() {
        const server = yield* autonatNode({ allowPrivateAddrs: true, client: false, maxRequestsPerPeer: 2 })
        const client = yield* autonatNode({ allowPrivateAddrs: true, server: false, minConfidence: 1 })
        yield* connect(client, server)
        const own = Multiaddr.decapsulateCode(client.addr, Multiaddr.codes.p2p)
        yield* client.autonat.checkNow // public (1 request)
        yield* client.autonat.check(server.host.peerId, ma(`/ip4/127.0.0.1/tcp/${yield* closedPort}`)) // private
        yield* Effect.flip(client.autonat.check(server.host.peerId, own)) // the third: rejected (2 per peer)
        const s = metricsOf(server.context)
        expect(Prometheus.value(s, "libp2p_autonat_server_requests_total", { version: "v2", outcome: "ok" })).toBe(1)
        expect(Prometheus.value(s, "libp2p_autonat_server_requests_total", { version: "v2", outcome: "dial_error" }))
          .toBe(1)
        expect(
          Prometheus.value(s, "libp2p_autonat_server_requests_total", { version: "v2", outcome: "rate_limit_peer" })
        ).toBe(1)
        const c = metricsOf(client.context)
        expect(Prometheus.value(c, "libp2p_autonat_client_checks_total", { outcome: "public" })).toBe(1)
        expect(Prometheus.value(c, "libp2p_autonat_client_checks_total", { outcome: "private" })).toBe(1)
        expect(Prometheus.value(c, "libp2p_autonat_client_checks_total", { outcome: "Rejected" })).toBe(1)
        expect(Prometheus.value(c, "libp2p_autonat_reachability", { reachability: "public" })).toBe(1)
        expect(Prometheus.value(c, "libp2p_autonat_reachability", { reachability: "private" })).toBe(0)
        expect(Prometheus.value(c, "libp2p_autonat_addresses", { reachability: "public" })).toBe(1)
        const status = yield* Effect.provideContext(Status.snapshot, client.context)
        expect(status.sections["autonat"]).toEqual({
          reachability: "public",
          addresses: [{ addr: Multiaddr.toString(own), reachability: "public", successes: 1, failures: 0 }]
        })
      }),
    60_000
  )
})
