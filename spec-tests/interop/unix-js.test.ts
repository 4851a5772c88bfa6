/**
 * Full-process interop over Unix domain sockets: our node (layers/Node.ts `make` with the
 * Unix and TCP transports, Noise, Yamux, identify, ping) against a real js-libp2p v3 node
 * (spec-tests/interop/harness), whose `@libp2p/tcp` transport also listens on and dials
 * `/unix/<path>` multiaddrs — in both directions (ARCHITECTURE.md §6).
 *
 * Specs exercised: multiaddr `unix` (a path protocol; js-libp2p writes the path as one
 * percent-encoded segment, `/unix/%2Ftmp%2Fx.sock/p2p/<id>`, which we read and write),
 * connections §Upgrading connections (multistream-select, Noise, Yamux over the socket),
 * ping (ping/ping.md), identify (identify/README.md: listen addresses and a signed peer
 * record, RFC 0003, carrying `/unix` addresses).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Identify from "../../src/protocols/identify/Identify.ts"
import * as Ping from "../../src/protocols/ping/Ping.ts"
import * as Noise from "../../src/security/Noise.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import * as Unix from "../../src/transport/Unix.ts"
import { bare, ma } from "../support/multiaddr.ts"
import { buildNode } from "../support/node.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "unix-js-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** A multiaddr as text without its /p2p/ suffix. */

/** Our node: Unix + TCP, Noise, Yamux, listening on `/unix/<path>`. */
const unixNode = (path: string) =>
  Effect.gen(function*() {
    const noise = yield* Noise.make()
    const layer = Nodes.layer({
      transports: [Unix.transport, Tcp.transport],
      security: [noise],
      muxers: [Yamux.yamux],
      listen: [ma(`/unix${path}`)]
    })
    return yield* buildNode(layer)
  })

const startPair = Effect.gen(function*() {
  const dir = yield* tempDir
  const jsPath = Path.join(dir, "js.sock")
  const ourPath = Path.join(dir, "ours.sock")
  const [js, ours] = yield* Effect.all([
    JsPeer.start({ listen: [`/unix/${encodeURIComponent(jsPath)}`] }),
    unixNode(ourPath)
  ], { concurrency: 2 })
  const jsId = PeerId.fromString(js.peerId)
  if (jsId._tag === "Failure") return yield* Effect.die(`bad js peer id ${js.peerId}`)
  return { js, ours, jsId: jsId.success, jsPath, ourPath }
})

describe("interop with js-libp2p over Unix domain sockets (multiaddr unix, both string forms)", () => {
  it.live(
    "we dial js at /unix/%2F…/p2p/<id>: ping 3 times, identify (listen addrs and signed record carry /unix)",
    () =>
      Effect.gen(function*() {
        const { js, jsId, jsPath, ours } = yield* startPair
        // js announces its socket in its own form: one percent-encoded segment
        expect(js.addr).toBe(`/unix/${encodeURIComponent(jsPath)}/p2p/${js.peerId}`)
        const target = ma(js.addr)
        expect(target.components[0]!.value).toBe(jsPath)
        const conn = yield* ours.host.dial(target)
        expect(PeerId.equals(conn.remotePeer, jsId)).toBe(true)
        expect(conn.direction).toBe("outbound")
        expect(conn.security).toBe("/noise")
        expect(conn.muxer).toBe("/yamux/1.0.0")
        expect(Multiaddr.toString(conn.remoteAddr)).toBe(`/unix${jsPath}`)

        const rtts = yield* ours.ping.ping(jsId, { count: 3 })
        expect(rtts).toHaveLength(3)
        for (const rtt of rtts) expect(rtt).toBeLessThan(5000)

        const id = yield* ours.identify.identify(conn)
        expect(id.agentVersion?.startsWith("js-libp2p/")).toBe(true)
        expect(id.protocols).toContain(Ping.PROTOCOL)
        expect(id.listenAddrs.map(Multiaddr.toString)).toContain(`/unix${jsPath}`)
        expect(id.signedPeerRecord?.addrs.map(Multiaddr.toString)).toContain(`/unix${jsPath}`)
        // js sends no observed address over a Unix socket (it only sends IP/DNS ones)
        expect(id.observedAddr).toBeUndefined()
        const jsConns = yield* js.connections
        expect(jsConns.connections.map((c) => c.direction)).toEqual(["inbound"])
        // js identified us by itself on its inbound connection, without error: we send no
        // observed address over a Unix socket either (js fails identify on a /unix one)
        yield* js.awaitEvent(JsPeer.isEvent("peer:identify", { peerId: PeerId.toString(ours.host.peerId) }))
        const errors = (yield* js.eventLog).filter((e) => e.event === "identify:error" || e.event === "handler:error")
        expect(errors).toEqual([])
      }),
    60_000
  )

  it.live(
    "js dials us at our /unix address: pings 3 times and identifies us (our /unix listen addr in the record)",
    () =>
      Effect.gen(function*() {
        const { js, jsId, ourPath, ours } = yield* startPair
        const ourId = PeerId.toString(ours.host.peerId)
        const ourAddr = ours.host.addrs()[0]!
        expect(bare(ourAddr)).toBe(`/unix${ourPath}`)
        // a /unix component that is not last prints in js's form, which js parses
        expect(Multiaddr.toString(ourAddr)).toBe(`/unix/${encodeURIComponent(ourPath)}/p2p/${ourId}`)
        const dialed = yield* js.dial(Multiaddr.toString(ourAddr))
        expect(dialed.peerId).toBe(ourId)
        expect(dialed.encryption).toBe("/noise")
        expect(dialed.multiplexer).toBe("/yamux/1.0.0")
        for (let i = 0; i < 500 && ours.host.connections(jsId).length === 0; i++) yield* Effect.sleep("10 millis")
        const conn = ours.host.connections(jsId)[0]
        expect(conn?.direction).toBe("inbound")
        expect(Multiaddr.toString(conn!.remoteAddr)).toBe(`/unix${ourPath}`)

        const pinged = yield* js.ping({ peerId: ourId }, { count: 3 })
        expect(pinged.rtts).toHaveLength(3)

        const id = yield* js.identify(ourId)
        expect(id.agentVersion).toBe(Identify.AGENT_VERSION)
        expect(id.listenAddrs).toEqual([`/unix/${encodeURIComponent(ourPath)}`])
        expect(id.observedAddr).toBeNull()
        expect(id.peerRecordVerified).toBe(true)
        expect(id.peerRecordError).toBeNull()
        expect(id.peerRecord?.addrs).toEqual([`/unix/${encodeURIComponent(ourPath)}`])
        const errors = (yield* js.eventLog).filter((e) => e.event === "identify:error" || e.event === "handler:error")
        expect(errors).toEqual([])
      }),
    60_000
  )
})
