/**
 * Circuit relay v2 through the daemon (ARCHITECTURE.md §7 `daemon --relay`, relay/circuit-v2.md):
 * our daemon with `--relay` is the relay; a js-libp2p node behind `@libp2p/daemon-server`
 * reserves on it (listening on `<relay>/p2p-circuit`); a second of our daemons CONNECTs to
 * `<relay>/p2p/<relay>/p2p-circuit` for the js node and echoes over a stream, both driven by
 * `@libp2p/daemon-client`. A CONNECT to a peer without a reservation fails with the relay's
 * status name in the error text (what clients parse). `daemon --http` serves /metrics.
 */
import { describe, expect, it } from "@effect/vitest"
import { Request } from "@libp2p/daemon-protocol"
import { peerIdFromString } from "@libp2p/peer-id"
import { byteStream } from "@libp2p/utils"
import { multiaddr } from "@multiformats/multiaddr"
import { Effect } from "effect"
import { spawnCli } from "../cli/support.ts"
import * as Prometheus from "../support/prometheus.ts"
import { call, echoHandler, echoOver, jsDaemon, ourDaemon, raw } from "./support.ts"

const ECHO = "/echo/1.0.0"
const PING = "/ipfs/ping/1.0.0"

/** GET a URL of the daemon's status server: status, content type and body. */
const get = (url: string) =>
  call(async () => {
    const res = await fetch(url)
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.text() }
  })

describe("daemon --relay (circuit relay v2 hop), daemon --http", () => {
  it.live(
    "circuit-v2 §Reservation, §Connection Initiation: a js node reserves on our daemon, another daemon CONNECTs through it and echoes; NO_RESERVATION in the error text",
    () =>
      Effect.gen(function*() {
        const relay = yield* ourDaemon({ args: ["--relay", "--http", "/ip4/127.0.0.1/tcp/0"] })
        const relayAddr = relay.addrs[0]!
        expect(relayAddr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
        const circuit = `${relayAddr}/p2p-circuit`
        const [target, dialer, lonely] = yield* Effect.all([
          jsDaemon({ relayListen: [circuit] }),
          ourDaemon({ args: ["--no-listen"] }), // §7: the relay client dials also with --no-listen
          ourDaemon()
        ], { concurrency: 3 })
        expect(dialer.addrs).toEqual([])
        // the js node holds a reservation: its circuit address is a listen address
        const targetId = yield* call(() => target.client.identify())
        expect(targetId.addrs.map(String)).toContain(circuit)
        yield* call(() => target.client.registerStreamHandler(ECHO, echoHandler))

        // through our relay: CONNECT with the circuit address, then an echo stream
        const peer = peerIdFromString(target.peerId)
        yield* call(() => dialer.client.connect(peer, [multiaddr(circuit)]))
        // LIST_PEERS (raw: the js client drops the addresses): the js node at its circuit address
        const listed = yield* raw(dialer, { type: Request.Type.LIST_PEERS })
        const relayed = (listed.peers ?? []).filter((p) => Buffer.from(p.id).equals(peer.toMultihash().bytes))
        expect(relayed.map((p) => p.addrs.map((a) => multiaddr(a).toString()))).toEqual([[circuit]])
        expect(yield* call(() => echoOver(dialer.client, peer, "through the relay"))).toBe("through the relay")

        // the relay's metrics (--http): the reservation, the circuit
        const metrics = yield* get(`${relay.http!}metrics`)
        expect(metrics.status).toBe(200)
        expect(metrics.type).toBe("text/plain; version=0.0.4; charset=utf-8")
        const exposition = Prometheus.parse(metrics.body)
        expect(Prometheus.value(exposition, "libp2p_relay_reservations_active")).toBe(1)
        expect(
          Prometheus.value(exposition, "libp2p_relay_circuits_total", { end: "closed" }) +
            Prometheus.value(exposition, "libp2p_relay_circuits_total", { end: "reset" }) +
            Prometheus.value(exposition, "libp2p_relay_circuits_active")
        ).toBeGreaterThanOrEqual(1)

        // a peer without a reservation: the relay answers NO_RESERVATION, and the error says so
        const failed = yield* Effect.flip(
          call(() => dialer.client.connect(peerIdFromString(lonely.peerId), [multiaddr(circuit)]))
        )
        expect(failed.message).toContain("relay: connect refused: NO_RESERVATION")
      }),
    180_000
  )

  it.live(
    "circuit-v2 §Connection Initiation: our node reserves (node --relay-reserve) on our --relay daemon; a js daemon CONNECTs through it, ping echoes 32 bytes",
    () =>
      Effect.gen(function*() {
        const relay = yield* ourDaemon({ args: ["--relay"] })
        const circuit = `${relay.addrs[0]!}/p2p-circuit`
        const target = yield* spawnCli([
          "node",
          "--relay-reserve",
          relay.addrs[0]!,
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--ephemeral",
          "--json"
        ])
        const up = yield* target.awaitLine((l) => l["event"] === "listening")
        const reservation = yield* target.awaitLine((l) => l["event"] === "reservation", "40 seconds")
        const targetId = String(up["peerId"])
        expect(reservation["addrs"]).toContain(`${circuit}/p2p/${targetId}`)
        // the js daemon's circuit transport (relayListen [] : dial only)
        const dialer = yield* jsDaemon({ relayListen: [] })
        const peer = peerIdFromString(targetId)
        yield* call(() => dialer.client.connect(peer, [multiaddr(circuit)]))
        const payload = crypto.getRandomValues(new Uint8Array(32))
        const back = yield* call(async () => {
          const stream = await dialer.client.openStream(peer, PING)
          const bytes = byteStream(stream)
          await bytes.write(payload)
          const reply = await bytes.read({ bytes: 32 })
          await stream.close()
          return reply.subarray()
        })
        expect(Buffer.from(back).equals(Buffer.from(payload))).toBe(true)
        const connect = yield* target.awaitLine(
          (l) => l["event"] === "peer:connect" && l["peerId"] === dialer.peerId,
          "20 seconds"
        )
        expect(String(connect["addr"])).toContain("/p2p-circuit/")
      }),
    180_000
  )

  it.live(
    "§7 daemon --http: the daemon line's http; /metrics (Prometheus 0.0.4) counts a CONNECT; /api/status",
    () =>
      Effect.gen(function*() {
        const [d, other] = yield* Effect.all([
          ourDaemon({ args: ["--http", "/ip4/127.0.0.1/tcp/0"] }),
          ourDaemon()
        ], { concurrency: 2 })
        expect(d.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/)
        yield* call(() => d.client.connect(peerIdFromString(other.peerId), other.addrs.map((a) => multiaddr(a))))
        const metrics = yield* get(`${d.http!}metrics`)
        expect(metrics.status).toBe(200)
        expect(metrics.type).toBe("text/plain; version=0.0.4; charset=utf-8")
        const exposition = Prometheus.parse(metrics.body)
        expect(exposition.samples.every((s) => s.name.startsWith("libp2p_"))).toBe(true)
        expect(Prometheus.value(exposition, "libp2p_connections_opened_total", { direction: "outbound" }))
          .toBeGreaterThanOrEqual(1)
        const status = yield* get(`${d.http!}api/status`)
        expect(status.status).toBe(200)
        const json = JSON.parse(status.body) as { peerId: string; connections: Array<{ peerId: string }> }
        expect(json.peerId).toBe(d.peerId)
        expect(json.connections.map((c) => c.peerId)).toContain(other.peerId)
      }),
    90_000
  )
})
