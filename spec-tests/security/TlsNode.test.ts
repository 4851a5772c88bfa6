/**
 * libp2p TLS in a whole node over TCP (layers/Node.ts `make` with our `/tls/1.0.0`
 * channel only): two nodes ping and identify each other with yamux agreed over ALPN
 * (inlined-muxer-negotiation §Multiplexer Negotiation over TLS), and junk sent after
 * negotiating `/tls/1.0.0` (tls spec §Handshake Protocol, §Peer Authentication:
 * garbage, cut ClientHellos, silence, certificates without the extension or with a
 * bad signature, no certificate) is refused: each connection closed in bounded time,
 * the upgrade failing with a typed error, no socket or timer left in the process, and
 * a well-behaved TLS peer still served.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, type Duration, Effect, Logger, References } from "effect"
import * as Nodes from "../../layers/Node.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Ping from "../../src/protocols/ping/Ping.ts"
import * as Tls from "../../src/security/Tls.ts"
import * as Certificate from "../../src/security/tls/Certificate.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import {
  connect,
  eventually,
  expectClosed,
  expectResourcesBack,
  negotiate,
  randomBytes,
  settledResources
} from "../support/attacker.ts"
import { chain } from "../support/errors.ts"
import { ma } from "../support/multiaddr.ts"
import { buildNode } from "../support/node.ts"
import { craft, HOUR, libp2pExt, nodePeer, p256 } from "../support/tls.ts"

interface Logged {
  readonly tag: string
  readonly reason: string | undefined
  readonly message: string
  /** Tags and reasons down the error's causes. */
  readonly chain: ReadonlyArray<string>
}

/** A TCP + TLS + Yamux node on 127.0.0.1 whose logged failures are captured. */
const tlsNode = (upgradeTimeout: Duration.Input = "1 second") =>
  Effect.gen(function*() {
    const failures: Array<Logged> = []
    const defects: Array<string> = []
    const capture = Logger.make<unknown, void>((o) => {
      if (Cause.hasDies(o.cause)) defects.push(Cause.pretty(o.cause))
      if (!Cause.hasFails(o.cause)) return
      const e = Cause.squash(o.cause) as { readonly _tag?: string; readonly reason?: string; readonly message?: string }
      failures.push({ tag: e._tag ?? "?", reason: e.reason, message: e.message ?? String(e), chain: chain(e) })
    })
    const layer = Nodes.layer({
      transports: [Tcp.transport],
      security: [yield* Tls.make()],
      muxers: [Yamux.yamux],
      listen: [ma("/ip4/127.0.0.1/tcp/0")],
      upgradeTimeout
    })
    const node = yield* buildNode(layer).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([capture])),
      Effect.provideService(References.MinimumLogLevel, "Debug")
    )
    return {
      ...node,
      addr: node.host.addrs()[0]!,
      upgradeFailures: () => failures.filter((f) => f.tag === "UpgradeError"),
      defects
    }
  })

describe("libp2p TLS in a node over TCP", () => {
  it.live("two TLS nodes: dial, ping and identify both ways over /tls/1.0.0 with yamux from ALPN", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Effect.all([tlsNode(), tlsNode()], { concurrency: 2 })
      const conn = yield* a.host.dial(b.addr)
      expect(conn.security).toBe(Tls.PROTOCOL)
      expect(conn.muxer).toBe("/yamux/1.0.0")
      expect(PeerId.equals(conn.remotePeer, b.host.peerId)).toBe(true)
      expect(yield* a.ping.ping(b.host.peerId, { count: 3 })).toHaveLength(3)
      expect(yield* b.ping.ping(a.host.peerId, { count: 3 })).toHaveLength(3)
      const id = yield* a.identify.identify(conn)
      expect(id.protocols).toContain(Ping.PROTOCOL)
      const back = b.host.connections(a.host.peerId)[0]!
      expect(back.security).toBe(Tls.PROTOCOL)
      const id2 = yield* b.identify.identify(back)
      expect(id2.listenAddrs.map(Multiaddr.toString)).toContain(Multiaddr.toString(a.addr).replace(/\/p2p\/.*$/, ""))
    }))

  it.live(
    "junk after /tls/1.0.0 (garbage, cut ClientHellos, silence, bad certificates): every connection closed, typed upgrade errors, no resource left, a good peer still served",
    () =>
      Effect.gen(function*() {
        const node = yield* tlsNode("1 second")
        const good = yield* tlsNode()
        expect(yield* good.ping.ping(node.addr)).toHaveLength(1)
        yield* Effect.sleep("100 millis")
        const before = yield* settledResources

        // a real ClientHello, from our own dialer
        const hello = yield* Effect.scoped(Effect.gen(function*() {
          const [c1, c2] = yield* Duplex.pair()
          yield* Effect.forkScoped(
            Effect.exit((yield* Tls.make()).secureOutbound(c1, { localKey: yield* Keys.generate("Ed25519") }))
          )
          return Duplex.concat(yield* c2.read)
        }))

        // raw-socket attackers, after negotiating /tls/1.0.0
        const kinds: ReadonlyArray<
          (
            send: (...c: Array<Uint8Array>) => Effect.Effect<void>,
            end: Effect.Effect<void>,
            i: number
          ) => Effect.Effect<void>
        > = [
          () => Effect.void, // silent
          (send, end, i) => Effect.andThen(send(randomBytes(1 + (i * 37) % 3000, i)), end), // garbage then FIN
          (send, _end, i) => send(randomBytes(1 + (i * 53) % 3000, i)), // garbage kept open
          (send, end) => Effect.andThen(send(hello.subarray(0, hello.byteLength >> 1)), end), // half a ClientHello, FIN
          (send) => send(hello.subarray(0, 100)), // a cut ClientHello kept open
          (send, end, i) => Effect.andThen(send(Uint8Array.of(0x16, 0x03, 0x01, 0x40, 0x00), randomBytes(200, i)), end) // a big record header, then junk
        ]
        const N = 60
        const closed = yield* Effect.forEach(
          Array.from({ length: N }, (_, i) => i),
          (i) =>
            Effect.scoped(Effect.gen(function*() {
              const attacker = yield* connect(node.addr)
              yield* negotiate(attacker, Tls.PROTOCOL)
              yield* kinds[i % kinds.length]!(attacker.send, attacker.end, i)
              return yield* expectClosed(attacker, "5 seconds")
            })),
          { concurrency: "unbounded" }
        )
        expect(closed).toHaveLength(N)

        // TLS clients with bad certificates, over a real TCP connection
        const identity = yield* Keys.generate("Ed25519")
        const bad = [
          craft({ notBefore: Date.now() - HOUR, notAfter: Date.now() + HOUR, extensions: () => [] }),
          craft({
            notBefore: Date.now() - HOUR,
            notAfter: Date.now() + HOUR,
            extensions: () => [libp2pExt(identity, Certificate.spkiOf(p256().publicKey))]
          }),
          undefined // no certificate
        ]
        yield* Effect.forEach(bad, (cert) =>
          Effect.scoped(Effect.gen(function*() {
            const raw = yield* Tcp.transport.dial(node.addr)
            const sel = yield* Multistream.select(raw.duplex, [Tls.PROTOCOL])
            const peer = yield* nodePeer(sel.duplex, {
              isServer: false,
              alpn: ["/yamux/1.0.0", "libp2p"],
              ...(cert !== undefined ? { cert: cert.pem, key: cert.keyPem } : {})
            })
            yield* Effect.ignore(peer.secure)
            // the node refuses after its handshake: our reads end (reset or EOF) promptly
            const ended = yield* Effect.exit(Duplex.readAll(raw.duplex, 1 << 20).pipe(Effect.timeout("5 seconds")))
            expect(ended._tag === "Failure" ? String(ended.cause) : "EOF").not.toMatch(/Timeout/)
          })), { concurrency: "unbounded" })

        const total = N + bad.length
        yield* eventually(Effect.sync(() => node.upgradeFailures().length >= total))
        const failures = node.upgradeFailures()
        expect(failures).toHaveLength(total)
        for (const f of failures) expect(["Security", "Timeout"]).toContain(f.reason)
        const messages = failures.map((f) => f.message).join("\n")
        const chains = failures.flatMap((f) => f.chain)
        expect(chains).toContain("MissingExtension")
        expect(chains).toContain("InvalidSignature")
        expect(messages).toContain("no certificate")
        expect(chains).toContain("InvalidPayload")
        expect(chains).toContain("Closed")
        expect(node.defects).toEqual([])

        // the good peer is still connected and served; nothing of the junk is left in the process
        expect(yield* good.ping.ping(node.host.peerId)).toHaveLength(1)
        yield* expectResourcesBack(before)
        yield* eventually(Effect.sync(() => node.host.connections().length === 1))
        expect(node.host.connections()).toHaveLength(1)
      }),
    60_000
  )
})
