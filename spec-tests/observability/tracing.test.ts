/**
 * Traces over OTLP/HTTP (issue 16 item 4) into an in-process collector (a
 * `node:http` server taking `POST /v1/traces` JSON): a node built with
 * `Tracing.layerOtlp` exports spans for its dials, upgrades (security and
 * muxer as children of the upgrade) and inbound streams; a node without it
 * exports nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Nodes from "../../layers/Node.ts"
import * as Tracing from "../../src/observability/Tracing.ts"
import * as Kad from "../../src/protocols/kad/Kad.ts"
import { ma } from "../support/multiaddr.ts"
import { servicesOf, tcpNode } from "../support/node.ts"
import { collector, type Span, spansOf } from "./support.ts"

const attr = (span: Span, key: string) => {
  const v = span.attributes.find((a) => a.key === key)?.value
  return v === undefined ? undefined : Object.values(v)[0]
}

describe("traces over OTLP (issue 16 item 4)", () => {
  it.live(
    "dial, upgrade (security, muxer) and inbound stream spans reach the collector at /v1/traces",
    () =>
      Effect.gen(function*() {
        const otlp = yield* collector
        const b = yield* tcpNode()
        const scope = yield* Scope.make()
        const ctx = yield* Layer.buildWithScope(
          Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] }).pipe(
            Layer.provide(Tracing.layerOtlp({ url: otlp.url, serviceName: "obs-test", exportInterval: "200 millis" }))
          ),
          scope
        )
        const a = servicesOf(ctx)
        yield* a.host.dial(b.addr)
        yield* b.ping.ping(a.addr) // an inbound ping stream on a
        yield* Scope.close(scope, Exit.void) // flushes what is left
        expect(otlp.requests.every((r) => r.path === "/v1/traces")).toBe(true)
        const service = otlp.requests[0]?.body.resourceSpans[0].resource.attributes
          .find((x: any) => x.key === "service.name")?.value.stringValue
        expect(service).toBe("obs-test")
        const spans = spansOf(otlp.requests)
        const names = new Set(spans.map((s) => s.name))
        for (const n of ["libp2p.dial", "libp2p.upgrade", "libp2p.upgrade.security", "libp2p.upgrade.muxer"]) {
          expect(names.has(n), n).toBe(true)
        }
        const dial = spans.find((s) => s.name === "libp2p.dial")!
        expect(attr(dial, "libp2p.addr")).toBe(b.addr.toString())
        const upgrades = spans.filter((s) => s.name === "libp2p.upgrade")
        const outbound = upgrades.find((s) => attr(s, "libp2p.direction") === "outbound")!
        expect(outbound.parentSpanId).toBe(dial.spanId)
        const security = spans.filter((s) => s.name === "libp2p.upgrade.security" && s.parentSpanId === outbound.spanId)
        expect(security.map((s) => attr(s, "libp2p.security"))).toEqual(["/noise"])
        const muxer = spans.filter((s) => s.name === "libp2p.upgrade.muxer" && s.parentSpanId === outbound.spanId)
        expect(muxer.map((s) => attr(s, "libp2p.muxer"))).toEqual(["/yamux/1.0.0"])
        const inbound = spans.filter((s) => s.name === "libp2p.stream.inbound")
        expect(inbound.map((s) => attr(s, "libp2p.protocol"))).toContain("/ipfs/ping/1.0.0")
      }),
    60_000
  )

  it.live("Kad queries export a libp2p.kad.query span with their type", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const scope = yield* Scope.make()
      const ctx = yield* Layer.buildWithScope(
        Kad.layer({ refreshInterval: "1 hour" }).pipe(
          Layer.provideMerge(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] })),
          Layer.provide(Tracing.layerOtlp({ url: otlp.url, serviceName: "kad-test", exportInterval: "200 millis" }))
        ),
        scope
      )
      const kad = Context.get(ctx, Kad.Kad)
      yield* Effect.ignore(kad.getClosestPeers(Uint8Array.of(1, 2, 3)))
      yield* Scope.close(scope, Exit.void)
      const queries = spansOf(otlp.requests).filter((s) => s.name === "libp2p.kad.query")
      expect(queries.map((s) => attr(s, "libp2p.kad.type"))).toContain("find_node")
    }), 60_000)

  it.live("without the tracing layer nothing is exported", () =>
    Effect.gen(function*() {
      const otlp = yield* collector
      const a = yield* tcpNode()
      const b = yield* tcpNode()
      yield* b.ping.ping(a.addr)
      expect(otlp.requests).toEqual([])
    }), 60_000)
})
