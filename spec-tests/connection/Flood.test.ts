/**
 * Bad input at scale (ARCHITECTURE.md §5): floods of inbound connections and
 * of streams, on loopback TCP, against a node with connection limits. The
 * node stays within its limits the whole time (the hard cap counts
 * connections still handshaking; the resource manager bounds streams per
 * connection), its bookkeeping and its memory stay bounded, it keeps
 * answering pings from a protected peer during the flood, and it is back to
 * its baseline afterwards. (go-libp2p connmgr / resource manager model; the
 * connections spec asks for bounded resources but sets no numbers.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Net from "node:net"
import * as Nodes from "../../layers/Node.ts"
import type * as ResourceManagerModule from "../../src/connection/ResourceManager.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as support from "../support/node.ts"

/** A TCP node (Default preset) with its connection and resource managers as `cm` and `rm`. */
const tcpNode = (options: Nodes.PresetOptions = {}) =>
  Effect.map(support.tcpNode(options), (n) => ({ ...n, cm: n.connectionManager, rm: n.resourceManager }))

/** Ping `target` from `from` every 50 ms until interrupted; count successes and failures. */
const pinger = (from: Effect.Success<ReturnType<typeof tcpNode>>, target: PeerId.PeerId) => {
  const tally = { ok: 0, failed: [] as Array<string> }
  const loop = Effect.forever(
    Effect.andThen(
      from.ping.ping(target).pipe(
        Effect.timeout("5 seconds"),
        Effect.match({
          onSuccess: () => void tally.ok++,
          onFailure: (e) => void tally.failed.push(String(e))
        })
      ),
      Effect.sleep("50 millis")
    )
  )
  return { tally, loop }
}

const MiB = 1024 * 1024
const heap = () => process.memoryUsage().heapUsed

/** A raw TCP socket to `port` that writes `junk` (if any) and then stays silent; `connected` once the connect completed. */
const rawSocket = (port: number, junk: Uint8Array | undefined) => {
  const s = Net.createConnection({ host: "127.0.0.1", port })
  const state = { socket: s, connected: false }
  s.on("error", () => {})
  s.once("connect", () => {
    state.connected = true
    if (junk !== undefined) s.write(junk)
  })
  return state
}

/** Poll `check` every 50 ms for up to `millis`; its last value. */
const eventually = (check: () => boolean, millis: number) =>
  Effect.gen(function*() {
    for (let waited = 0; waited < millis && !check(); waited += 50) yield* Effect.sleep("50 millis")
    return check()
  })

const unlimited: ResourceManagerModule.Limit = {
  connectionsInbound: Infinity,
  connectionsOutbound: Infinity,
  connections: Infinity,
  streamsInbound: Infinity,
  streamsOutbound: Infinity,
  streams: Infinity,
  memory: Infinity
}

describe("bad input: floods on loopback (connection limits)", () => {
  it.live(
    "connections spec §Upgrading / connmgr hard cap: 3,000 raw inbound connections stay within maxConnections, memory stays bounded, a protected peer's pings are answered throughout",
    () =>
      Effect.gen(function*() {
        const MAX = 64
        const node = yield* tcpNode({
          connectionManager: { maxConnections: MAX, highWater: 48, lowWater: 32, gracePeriod: "1 minute" },
          upgradeTimeout: "1 second",
          // A backlog above the flood's size: with Node's 511, a wave that arrives while the event
          // loop is busy overflows the accept queue, Linux drops the clients' final ACKs
          // (tcp_abort_on_overflow 0), and those clients believe they are connected while the
          // kernel retransmits SYN-ACKs for up to a minute: sockets that never reached the node.
          tcp: { backlog: 4096 }
        })
        const friend = yield* tcpNode()
        yield* friend.ping.ping(node.addr)
        yield* node.cm.protect(friend.host.peerId, "friend")
        const port = Number(Multiaddr.components(node.addr)[1]!.value)

        const ping = pinger(friend, node.host.peerId)
        const pingFiber = yield* Effect.forkChild(ping.loop)
        const heapBefore = heap()
        let maxSlots = 0
        let maxConnections = 0
        let maxTransient = 0
        let maxHeap = heapBefore
        const sample = Effect.sync(() => {
          maxSlots = Math.max(maxSlots, node.cm.stats().slots)
          maxConnections = Math.max(maxConnections, node.host.connections().length)
          maxTransient = Math.max(maxTransient, node.rm.stats().transient.connectionsInbound)
          maxHeap = Math.max(maxHeap, heap())
        })
        const sampler = yield* Effect.forkChild(Effect.forever(Effect.andThen(sample, Effect.sleep("10 millis"))))

        // 3,000 connections in 6 waves: silent ones and ones that write junk, none completing a handshake
        const sockets: Array<ReturnType<typeof rawSocket>> = []
        for (let wave = 0; wave < 6; wave++) {
          for (let i = 0; i < 500; i++) {
            sockets.push(
              rawSocket(port, i % 3 === 0 ? undefined : Buffer.from(`junk ${wave}/${i}\n`.repeat(1 + (i % 7))))
            )
          }
          yield* Effect.sleep("150 millis")
        }
        // every one that reached the node ends: refused at once at the cap, or cut at the upgrade
        // deadline (on a loaded machine some connects sit in SYN retransmission: those never reached it)
        const closed = (s: Net.Socket) => s.destroyed || s.readyState === "closed"
        expect(yield* eventually(() => sockets.every((s) => !s.connected || closed(s.socket)), 20_000)).toBe(true)
        const reached = sockets.filter((s) => s.connected).length
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(sampler)
        yield* Fiber.interrupt(pingFiber)
        for (const s of sockets) s.socket.destroy()

        console.error(
          `[flood] 3000 connections (${reached} reached the node): max slots ${maxSlots}/${MAX}, max transient ${maxTransient}, ` +
            `heap +${
              ((maxHeap - heapBefore) / MiB).toFixed(1)
            } MiB at most, friend pings ok ${ping.tally.ok}, failed ${ping.tally.failed.length}`
        )
        expect(reached).toBeGreaterThan(MAX)
        expect(maxSlots).toBeLessThanOrEqual(MAX)
        expect(maxConnections).toBeLessThanOrEqual(MAX)
        expect(maxTransient).toBeLessThanOrEqual(MAX)
        expect(maxHeap - heapBefore).toBeLessThan(256 * MiB)
        // the protected peer was answered all along
        expect(ping.tally.failed).toEqual([])
        expect(ping.tally.ok).toBeGreaterThan(5)
        // back to the baseline: the friend's connection only
        yield* eventually(() => node.cm.stats().slots === 1 && node.rm.stats().transient.connectionsInbound === 0, 5000)
        expect(node.cm.stats().slots).toBe(1)
        expect(node.host.connections().map((c) => PeerId.toString(c.remotePeer))).toEqual([
          PeerId.toString(friend.host.peerId)
        ])
        expect(node.rm.stats().transient.connectionsInbound).toBe(0)
        expect(yield* friend.ping.ping(node.host.peerId)).toHaveLength(1)
      }),
    60_000
  )

  it.live(
    "resource manager §streams per connection: 3,000 streams opened at once by one peer are held to the connection's inbound limit; a protected peer's pings are answered throughout",
    () =>
      Effect.gen(function*() {
        const LIMIT = 128
        const node = yield* tcpNode({ resources: { connection: { streamsInbound: LIMIT } } })
        // the handler holds each stream until the remote closes it
        yield* node.registrar.handle("/hold/1.0.0", (stream) => Effect.asVoid(Duplex.readAll(stream, 1024)), {
          maxInboundStreams: 100_000
        })
        const friend = yield* tcpNode()
        yield* friend.ping.ping(node.addr)
        yield* node.cm.protect(friend.host.peerId, "friend")
        // the attacker: no limits of its own, a muxer that lets it open thousands of streams
        const attacker = yield* tcpNode({
          resources: {
            system: unlimited,
            transient: unlimited,
            peer: unlimited,
            connection: unlimited,
            stream: unlimited
          },
          yamux: { maxOutboundStreams: 10_000 }
        })
        const conn = yield* attacker.host.dial(node.addr)
        const attackerKey = PeerId.toString(attacker.host.peerId)

        const ping = pinger(friend, node.host.peerId)
        const pingFiber = yield* Effect.forkChild(ping.loop)
        const heapBefore = heap()
        let maxHeld = 0
        let maxHeap = heapBefore
        const sampler = yield* Effect.forkChild(Effect.forever(Effect.andThen(
          Effect.sync(() => {
            maxHeld = Math.max(maxHeld, node.rm.stats().peers.get(attackerKey)?.streamsInbound ?? 0)
            maxHeap = Math.max(maxHeap, heap())
          }),
          Effect.sleep("10 millis")
        )))

        let opened = 0
        let refused = 0
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Effect.forEach(Array.from({ length: 3000 }), () =>
            Effect.gen(function*() {
              const s = yield* conn.newStream(["/hold/1.0.0"])
              yield* s.write([Uint8Array.of(1)])
              opened++
            }).pipe(Effect.catch(() => Effect.sync(() => void refused++))), { concurrency: 64, discard: true })
          yield* Effect.sleep("500 millis")
          maxHeld = Math.max(maxHeld, node.rm.stats().peers.get(attackerKey)?.streamsInbound ?? 0)
        })) // the attacker's streams close here
        yield* Effect.sleep("300 millis")
        yield* Fiber.interrupt(sampler)
        yield* Fiber.interrupt(pingFiber)

        console.error(
          `[flood] 3000 streams: ${opened} opened by the attacker, ${refused} refused at its end; at most ${maxHeld} held by the node ` +
            `(limit ${LIMIT}); heap +${
              ((maxHeap - heapBefore) / MiB).toFixed(1)
            } MiB at most; friend pings ok ${ping.tally.ok}, failed ${ping.tally.failed.length}`
        )
        expect(maxHeld).toBeLessThanOrEqual(LIMIT)
        expect(maxHeld).toBeGreaterThan(0)
        expect(maxHeap - heapBefore).toBeLessThan(256 * MiB)
        expect(ping.tally.failed).toEqual([])
        expect(ping.tally.ok).toBeGreaterThan(3)
        // the streams are gone; the connection and the node are fine
        expect(node.rm.stats().peers.get(attackerKey)?.streamsInbound ?? 0).toBe(0)
        expect(node.rm.stats().transient.streamsInbound).toBe(0)
        expect(yield* attacker.ping.ping(node.host.peerId)).toHaveLength(1)
      }),
    60_000
  )
})
