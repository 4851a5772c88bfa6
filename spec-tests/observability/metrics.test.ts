/**
 * `GET /metrics` (ARCHITECTURE §7, issue 16): the Prometheus text exposition
 * format 0.0.4, `libp2p_…` names, bounded labels (no peer ids), and the
 * counters and gauges following what the node does: connections opened and
 * closed, handshakes, dial attempts, streams, ping RTTs, resource-manager
 * refusals, bytes on the wire. Two nodes in one process keep separate series.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as PeerId from "../../src/core/PeerId.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import * as Prometheus from "../support/prometheus.ts"
import { get, httpNode } from "./support.ts"

const scrape = (url: string) =>
  Effect.map(get(`${url}metrics`), (r) => {
    expect(r.status).toBe(200)
    expect(r.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8")
    return { text: r.body, e: Prometheus.parse(r.body) }
  })

/** Scrape until `check` holds (metrics of a closing connection land a moment later). */
const scrapeUntil = (url: string, check: (e: Prometheus.Exposition) => boolean) =>
  Effect.flatMap(scrape(url), (s) => check(s.e) ? Effect.succeed(s) : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 100 }))),
    Effect.orDie
  )

describe("metrics (Prometheus text format 0.0.4)", () => {
  it.live(
    "exposition format 0.0.4: HELP/TYPE/samples parse, names are libp2p_…, no peer id in any label",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode()
        const b = yield* tcpNode()
        yield* b.ping.ping(a.addr, { count: 2 })
        const { text, e } = yield* scrape(a.url)
        expect(e.samples.length).toBeGreaterThan(0)
        for (const s of e.samples) expect(s.name).toMatch(/^libp2p_/)
        for (const name of e.types.keys()) expect(e.help.has(name)).toBe(true)
        expect(text).not.toContain(PeerId.toString(b.host.peerId))
        expect(text).not.toContain(PeerId.toString(a.host.peerId))
        expect(e.types.get("libp2p_connections")).toBe("gauge")
        expect(e.types.get("libp2p_connections_opened_total")).toBe("counter")
        expect(e.types.get("libp2p_connection_handshake_seconds")).toBe("histogram")
      }),
    60_000
  )

  it.live(
    "connections: opened/closed counters and the gauge follow a connection's life, labelled by direction, transport, security, muxer",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode()
        const b = yield* tcpNode()
        const before = (yield* scrape(a.url)).e
        expect(Prometheus.value(before, "libp2p_connections_opened_total")).toBe(0)
        yield* b.host.dial(a.addr)
        const labels = { direction: "inbound", transport: "tcp", security: "/noise", muxer: "/yamux/1.0.0" }
        const open = yield* scrapeUntil(a.url, (e) => Prometheus.value(e, "libp2p_connections", labels) === 1)
        expect(Prometheus.value(open.e, "libp2p_connections_opened_total", labels)).toBe(1)
        expect(Prometheus.value(open.e, "libp2p_connections_closed_total")).toBe(0)
        expect(Prometheus.value(
          open.e,
          "libp2p_connection_handshake_seconds_count",
          labels.direction === "inbound"
            ? { direction: "inbound" } :
            {}
        )).toBe(1)
        yield* b.host.hangUp(a.host.peerId)
        const closed = yield* scrapeUntil(
          a.url,
          (e) => Prometheus.value(e, "libp2p_connections_closed_total", labels) === 1
        )
        expect(Prometheus.value(closed.e, "libp2p_connections", labels)).toBe(0)
        expect(Prometheus.value(closed.e, "libp2p_transport_bytes_total", { direction: "in" })).toBeGreaterThan(0)
        expect(Prometheus.value(closed.e, "libp2p_transport_bytes_total", { direction: "out" })).toBeGreaterThan(0)
      }),
    60_000
  )

  it.live(
    "dials and pings: attempts by outcome, ping RTT histogram, streams opened by protocol and direction",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode()
        const b = yield* tcpNode()
        // one failed attempt (nothing listens on port 1), one success
        const dead = ma(`/ip4/127.0.0.1/tcp/1/p2p/${PeerId.toString(b.host.peerId)}`)
        expect((yield* Effect.result(a.host.dial(dead)))._tag).toBe("Failure")
        yield* a.ping.ping(b.addr, { count: 3 })
        const { e } = yield* scrape(a.url)
        expect(Prometheus.value(e, "libp2p_dial_attempts_total", { transport: "tcp", outcome: "success" })).toBe(1)
        const failed = e.samples.filter((s) =>
          s.name === "libp2p_dial_attempts_total" && s.labels["outcome"] !== "success" && s.value > 0
        )
        expect(failed.map((s) => s.labels["outcome"])).toEqual(["Refused"])
        expect(Prometheus.value(e, "libp2p_ping_rtt_seconds_count")).toBe(3)
        expect(Prometheus.value(e, "libp2p_ping_rtt_seconds_sum")).toBeGreaterThan(0)
        expect(
          Prometheus.value(e, "libp2p_streams_opened_total", { protocol: "/ipfs/ping/1.0.0", direction: "outbound" })
        )
          .toBe(1)
      }),
    60_000
  )

  it.live(
    "streams gauge: an open stream of a registered protocol by direction; an unregistered protocol is \"other\"",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode()
        const b = yield* tcpNode()
        yield* b.registrar.handle("/x-unregistered-on-a/1", () => Effect.never)
        yield* Effect.scoped(Effect.gen(function*() {
          yield* a.host.newStream(b.addr, ["/x-unregistered-on-a/1"], { lazy: false })
          const { e } = yield* scrape(a.url)
          expect(Prometheus.value(e, "libp2p_streams", { protocol: "other", direction: "outbound" })).toBe(1)
          expect(e.samples.some((s) => s.labels["protocol"] === "/x-unregistered-on-a/1")).toBe(false)
        }))
        const after = yield* scrapeUntil(
          a.url,
          (e) => Prometheus.value(e, "libp2p_streams", { protocol: "other" }) === 0
        )
        expect(Prometheus.value(after.e, "libp2p_streams_opened_total", { protocol: "other" })).toBe(1)
      }),
    60_000
  )

  it.live(
    "resource manager: a refused stream counts in libp2p_rcmgr_blocked_total by scope and resource",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode({}, { resources: { connection: { streamsOutbound: 0 } } })
        const b = yield* tcpNode()
        const r = yield* Effect.result(Effect.scoped(a.host.newStream(b.addr, ["/ipfs/ping/1.0.0"])))
        expect(r._tag).toBe("Failure")
        const { e } = yield* scrape(a.url)
        expect(Prometheus.value(e, "libp2p_rcmgr_blocked_total", { scope: "connection", resource: "streamsOutbound" }))
          .toBeGreaterThanOrEqual(1)
      }),
    60_000
  )

  it.live("two nodes in one process keep separate registries", () =>
    Effect.gen(function*() {
      const a = yield* httpNode()
      const c = yield* httpNode()
      const b = yield* tcpNode()
      yield* b.host.dial(a.addr)
      yield* scrapeUntil(a.url, (e) => Prometheus.value(e, "libp2p_connections_opened_total") === 1)
      const other = (yield* scrape(c.url)).e
      expect(Prometheus.value(other, "libp2p_connections_opened_total")).toBe(0)
    }), 60_000)
})
