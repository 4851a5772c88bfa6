/**
 * Issue 16's remaining metrics, against real TCP connections: stream data
 * bytes by protocol (`libp2p_stream_bytes_total{protocol,direction}`, counted
 * by the muxer's per-stream counters and read at scrape time) and connections
 * closed by why (`libp2p_connections_closed_total{…,reason}`: we closed it,
 * the remote did, the connection manager trimmed it), with the same reason on
 * the Host's `ConnectionClose`/`PeerDisconnect` events. Labels stay bounded:
 * registered protocols else "other", a fixed reason set, no peer ids.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import type * as Connection from "../../src/connection/Connection.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import {
  connect,
  eventually,
  expectClosed,
  noiseInitiator,
  recordEvents,
  watchedNode,
  yamuxFrame
} from "../support/attacker.ts"
import { tcpNode } from "../support/node.ts"
import * as Prometheus from "../support/prometheus.ts"
import { get, httpNode } from "./support.ts"

const ECHO = "/test/echo/1.0.0"
const PING = "/ipfs/ping/1.0.0"

const scrape = (url: string) => Effect.map(get(`${url}metrics`), (r) => ({ text: r.body, e: Prometheus.parse(r.body) }))

/** Scrape until `check` holds (a closing connection's or stream's totals land a moment later). */
const scrapeUntil = (url: string, check: (e: Prometheus.Exposition) => boolean) =>
  Effect.flatMap(scrape(url), (s) => check(s.e) ? Effect.succeed(s) : Effect.fail("not yet")).pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 200 }))),
    Effect.orDie
  )

/** Echo every chunk back until the remote closes its side. */
const echo = (stream: Connection.Stream) =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* stream.read
      if (chunks.length === 0) return
      yield* stream.write(chunks)
    }
  })

/** Send `payload` on a new ECHO stream, close the write side, read everything back. */
const roundTrip = (conn: Connection.Connection, payload: Uint8Array) =>
  Effect.scoped(Effect.gen(function*() {
    const stream = yield* conn.newStream([ECHO])
    yield* stream.write([payload])
    yield* stream.closeWrite
    let got = 0
    while (true) {
      const chunks = yield* stream.read
      if (chunks.length === 0) return got
      for (const c of chunks) got += c.byteLength
    }
  }))

const bytes = (e: Prometheus.Exposition, protocol: string, direction: "in" | "out") =>
  Prometheus.value(e, "libp2p_stream_bytes_total", { protocol, direction })

describe("stream bytes by protocol and connection close reasons (issue 16)", () => {
  it.live.each(["yamux", "mplex"] as const)(
    "connections spec §Streams (%s): stream bytes by registered protocol move by at least the bytes sent and received, open and closed streams alike",
    (muxer) =>
      Effect.gen(function*() {
        const a = yield* httpNode({}, { muxers: [muxer] })
        const b = yield* tcpNode({ muxers: [muxer] })
        yield* a.registrar.handle(ECHO, echo)
        yield* b.registrar.handle(ECHO, echo)
        yield* b.registrar.handle("/x-unregistered-on-a/1", echo)
        const before = (yield* scrape(a.url)).e
        expect(bytes(before, ECHO, "out")).toBe(0)

        const conn = yield* a.host.dial(b.addr)
        const payload = new Uint8Array(100_000).fill(7)
        expect(yield* roundTrip(conn, payload)).toBe(payload.byteLength)
        yield* a.ping.ping(b.addr, { count: 3 })
        // a stream still open counts too (read from the muxer at scrape time)
        yield* Effect.scoped(Effect.gen(function*() {
          const open = yield* conn.newStream(["/x-unregistered-on-a/1"], { lazy: false })
          yield* open.write([new Uint8Array(5_000)])
          let got = 0
          while (got < 5_000) for (const c of yield* open.read) got += c.byteLength
          const { e } = yield* scrape(a.url)
          expect(bytes(e, "other", "out")).toBeGreaterThanOrEqual(5_000)
          expect(bytes(e, "other", "in")).toBeGreaterThanOrEqual(5_000)
        }))

        // the echo stream has ended: its totals moved to the closed streams' without loss or double count
        const { e, text } = yield* scrapeUntil(a.url, (e) => bytes(e, "other", "out") >= 5_000)
        expect(bytes(e, ECHO, "out")).toBeGreaterThanOrEqual(payload.byteLength)
        expect(bytes(e, ECHO, "in")).toBeGreaterThanOrEqual(payload.byteLength)
        // payload plus a little negotiation, never counted twice
        expect(bytes(e, ECHO, "out")).toBeLessThan(payload.byteLength + 1_000)
        expect(bytes(e, ECHO, "in")).toBeLessThan(payload.byteLength + 1_000)
        expect(bytes(e, PING, "out")).toBeGreaterThanOrEqual(3 * 32)
        expect(bytes(e, PING, "in")).toBeGreaterThanOrEqual(3 * 32)
        // b's side sees the same streams from the other end (its own registry)
        const onB = b.host.streamBytes().get(ECHO)
        expect(onB?.read).toBeGreaterThanOrEqual(payload.byteLength)
        expect(onB?.written).toBeGreaterThanOrEqual(payload.byteLength)

        // bounded labels: registered protocols or "other", in/out, no peer ids
        const registered = new Set(a.registrar.protocols())
        for (const s of e.samples.filter((s) => s.name === "libp2p_stream_bytes_total")) {
          expect(s.labels["protocol"] === "other" || registered.has(s.labels["protocol"]!)).toBe(true)
          expect(["in", "out"]).toContain(s.labels["direction"])
        }
        expect(e.samples.some((s) => s.labels["protocol"] === "/x-unregistered-on-a/1")).toBe(false)
        expect(text).not.toContain(PeerId.toString(b.host.peerId))

        // a later scrape does not count again what an earlier one saw
        const again = (yield* scrape(a.url)).e
        expect(bytes(again, ECHO, "out")).toBe(bytes(e, ECHO, "out"))
      }),
    90_000
  )

  it.live(
    "connections spec §Connection lifecycle: a connection closed locally, by the remote and by the connection manager's trim each count under their reason, and the events carry it",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode(
          {},
          { connectionManager: { highWater: 100, lowWater: 0, gracePeriod: "0 millis", silencePeriod: 0 } }
        )
        const events = yield* recordEvents(a)
        const local = yield* tcpNode()
        const remote = yield* tcpNode()
        const trimmed = yield* tcpNode()
        const closed = (e: Prometheus.Exposition, reason: string) =>
          Prometheus.value(e, "libp2p_connections_closed_total", { reason })

        // we close it
        yield* a.host.dial(local.addr)
        yield* a.host.hangUp(local.host.peerId)
        const s1 = yield* scrapeUntil(a.url, (e) => closed(e, "local") === 1)
        expect(closed(s1.e, "local")).toBe(1)
        expect(Prometheus.value(s1.e, "libp2p_connections_closed_total", { reason: "local", direction: "outbound" }))
          .toBe(1)

        // the remote closes it (its muxer's GoAway, then EOF)
        yield* remote.host.dial(a.addr)
        yield* scrapeUntil(a.url, (e) => Prometheus.value(e, "libp2p_connections_opened_total") === 2)
        yield* remote.host.hangUp(a.host.peerId)
        const s2 = yield* scrapeUntil(a.url, (e) => closed(e, "remote") === 1)
        expect(Prometheus.value(s2.e, "libp2p_connections_closed_total", { reason: "remote", direction: "inbound" }))
          .toBe(1)

        // the connection manager trims it
        yield* a.host.dial(trimmed.addr)
        const chosen = yield* a.connectionManager.trim
        expect(chosen.map((c) => PeerId.toString(c.remotePeer))).toEqual([PeerId.toString(trimmed.host.peerId)])
        const s3 = yield* scrapeUntil(a.url, (e) => closed(e, "trimmed") === 1)

        // each once, under its own reason only; reasons from the bounded set
        expect(closed(s3.e, "local")).toBe(1)
        expect(closed(s3.e, "remote")).toBe(1)
        expect(Prometheus.value(s3.e, "libp2p_connections_closed_total")).toBe(3)
        for (const s of s3.e.samples.filter((s) => s.name === "libp2p_connections_closed_total")) {
          expect(["local", "remote", "error", "timeout", "trimmed", "limit"]).toContain(s.labels["reason"])
        }
        for (const n of [local, remote, trimmed]) expect(s3.text).not.toContain(PeerId.toString(n.host.peerId))

        // the Host's events name the same reasons
        const reasonOf = (tag: "ConnectionClose" | "PeerDisconnect", peer: PeerId.PeerId) =>
          events.flatMap((e) =>
            e._tag === tag && PeerId.equals(e._tag === "ConnectionClose" ? e.connection.remotePeer : e.peerId, peer)
              ? [e.reason]
              : []
          )
        yield* eventually(Effect.sync(() => reasonOf("PeerDisconnect", trimmed.host.peerId).length > 0), "20 seconds")
        expect(reasonOf("ConnectionClose", local.host.peerId)).toEqual(["local"])
        expect(reasonOf("PeerDisconnect", local.host.peerId)).toEqual(["local"])
        expect(reasonOf("ConnectionClose", remote.host.peerId)).toEqual(["remote"])
        expect(reasonOf("PeerDisconnect", remote.host.peerId)).toEqual(["remote"])
        expect(reasonOf("ConnectionClose", trimmed.host.peerId)).toEqual(["trimmed"])
        expect(reasonOf("PeerDisconnect", trimmed.host.peerId)).toEqual(["trimmed"])
      }),
    90_000
  )

  it.live(
    "yamux §Framing: a session the remote breaks with a bad frame ends as error on the Host's events",
    () =>
      Effect.gen(function*() {
        const node = yield* watchedNode()
        const events = yield* recordEvents(node)
        const identity = yield* Keys.generate("Ed25519")
        const peer = PeerId.fromPrivateKey(identity)
        const attacker = yield* connect(node.addr)
        const session = yield* noiseInitiator(attacker, { identity, muxers: [Yamux.PROTOCOL] })
        expect(yield* eventually(Effect.sync(() => node.host.connections(peer).length === 1), "20 seconds")).toBe(true)
        const bad = yamuxFrame(Frame.TYPE_PING, Frame.FLAG_SYN, 0, 1)
        bad[0] = 0xff // version
        yield* session.send(bad)
        yield* expectClosed(attacker, "5 seconds")
        const reasons = () =>
          events.flatMap((e) =>
            e._tag === "PeerDisconnect" && PeerId.equals(e.peerId, peer)
              ? [`disconnect:${e.reason}`]
              : e._tag === "ConnectionClose" && PeerId.equals(e.connection.remotePeer, peer)
              ? [`close:${e.reason}`]
              : []
          )
        expect(yield* eventually(Effect.sync(() => reasons().length === 2), "20 seconds")).toBe(true)
        expect(reasons()).toEqual(["close:error", "disconnect:error"])
      }),
    60_000
  )
})
