/**
 * The TCP transport over real loopback sockets (`it.live`): the connections
 * spec's raw transport connection (§Definitions: dial / listen, a reliable
 * bidirectional channel), TCP half-close and reset (RFC 9293 §3.6 closing,
 * §3.5.2 reset), multiaddr addressing (addressing spec §multiaddr basics), and
 * the scoped-resource contract of `Transport.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as Net from "node:net"
import { Worker } from "node:worker_threads"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import { dec, enc } from "../support/bytes.ts"
import { ma } from "../support/multiaddr.ts"
import { activeHandles, echo, hasIpv6Loopback, PEER, portOf, readExactly } from "../support/transport.ts"
import { transportSuite } from "./compliance.ts"

const tcp = Tcp.make()

if (!hasIpv6Loopback) console.warn("Tcp.test: this machine has no ::1, the IPv6 loopback tests are skipped")

transportSuite("tcp", {
  transport: tcp,
  listenAddr: Effect.succeed(ma("/ip4/127.0.0.1/tcp/0")),
  halfClose: true, // RFC 9293 §3.6: closeWrite sends FIN
  resetSeenAs: ["Reset", "Io"], // RFC 9293 §3.5.2: RST
  stats: (listener) => listener.stats,
  handles: activeHandles("TCPSocketWrap"),
  sequential: 1000
})

describe("Tcp transport", () => {
  describe("addressing spec §multiaddr basics: which addresses TCP handles", () => {
    it("dials /ip4|ip6|dns*/…/tcp/<port> with an optional /p2p suffix, listens on IP literals only", () => {
      expect(tcp.canDial(ma("/ip4/127.0.0.1/tcp/4001"))).toBe(true)
      expect(tcp.canDial(ma("/ip6/::1/tcp/4001"))).toBe(true)
      expect(tcp.canDial(ma(`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`))).toBe(true)
      expect(tcp.canDial(ma("/dns4/localhost/tcp/4001"))).toBe(true)
      expect(tcp.canDial(ma("/ip4/127.0.0.1/tcp/4001/ws"))).toBe(false)
      expect(tcp.canDial(ma("/ip4/127.0.0.1/udp/4001"))).toBe(false)
      expect(tcp.canDial(ma(`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}/p2p-circuit`))).toBe(false)
      expect(tcp.canDial(ma("/dnsaddr/example.com"))).toBe(false)
      expect(tcp.canListen(ma("/ip4/0.0.0.0/tcp/0"))).toBe(true)
      expect(tcp.canListen(ma("/ip6/::/tcp/0"))).toBe(true)
      expect(tcp.canListen(ma("/dns4/localhost/tcp/0"))).toBe(false)
      expect(tcp.canListen(ma("/ip4/127.0.0.1/tcp/0/ws"))).toBe(false)
    })

    it.live("an address it does not handle is a typed Unsupported error (dial and listen)", () =>
      Effect.gen(function*() {
        const d = yield* Effect.flip(tcp.dial(ma("/ip4/127.0.0.1/udp/4001")))
        expect(d._tag).toBe("TransportError")
        expect(d.reason).toBe("Unsupported")
        const l = yield* Effect.flip(tcp.listen(ma("/dns4/localhost/tcp/0"), () => Effect.void))
        expect(l.reason).toBe("Unsupported")
      }))

    it.live("interfaceAddrs expands a wildcard to the machine's addresses and keeps others", () =>
      Effect.gen(function*() {
        const v4 = (yield* Tcp.interfaceAddrs(ma("/ip4/0.0.0.0/tcp/4001"))).map((a) => a.toString())
        expect(v4).toContain("/ip4/127.0.0.1/tcp/4001")
        expect(v4.every((a) => a.startsWith("/ip4/") && a.endsWith("/tcp/4001"))).toBe(true)
        if (hasIpv6Loopback) {
          const v6 = (yield* Tcp.interfaceAddrs(ma("/ip6/::/tcp/4001"))).map((a) => a.toString())
          expect(v6).toContain("/ip6/::1/tcp/4001")
        }
        const same = yield* Tcp.interfaceAddrs(ma("/ip4/127.0.0.1/tcp/5"))
        expect(same.map((a) => a.toString())).toEqual(["/ip4/127.0.0.1/tcp/5"])
      }))
  })

  describe("connections spec §Definitions: dial and listen give a reliable bidirectional channel", () => {
    const roundTrip = (listenAddr: string, family: "ip4" | "ip6") =>
      Effect.gen(function*() {
        const accepted = yield* Deferred.make<Transport.RawConnection>()
        const listener = yield* tcp.listen(
          ma(listenAddr),
          (conn) => Deferred.succeed(accepted, conn).pipe(Effect.andThen(echo(conn)))
        )
        expect(listener.addrs).toHaveLength(1)
        const bound = listener.addrs[0]!
        expect(bound.toString().startsWith(`/${family}/`)).toBe(true)
        expect(portOf(bound)).toBeGreaterThan(0)

        const conn = yield* tcp.dial(bound)
        yield* conn.duplex.write([enc("hello "), enc("world")])
        expect(dec(yield* readExactly(conn.duplex, 11))).toBe("hello world")
        yield* conn.duplex.write([enc("again")])
        expect(dec(yield* readExactly(conn.duplex, 5))).toBe("again")

        // both ends know both addresses, and they agree
        const server = yield* Deferred.await(accepted)
        expect(conn.remoteAddr.toString()).toBe(bound.toString())
        expect(server.localAddr.toString()).toBe(bound.toString())
        expect(server.remoteAddr.toString()).toBe(conn.localAddr.toString())
        expect(conn.localAddr.toString().startsWith(`/${family}/`)).toBe(true)
        expect(portOf(conn.localAddr)).toBeGreaterThan(0)

        yield* conn.duplex.closeWrite
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
      })

    it.live("IPv4 loopback, port 0: the listener reports the real port, bytes echo both ways", () =>
      roundTrip("/ip4/127.0.0.1/tcp/0", "ip4"))

    it.live.skipIf(!hasIpv6Loopback)("IPv6 loopback (/ip6/::1/tcp/0): same", () => roundTrip("/ip6/::1/tcp/0", "ip6"))

    it.live("a wildcard listener (/ip4/0.0.0.0/tcp/0) reports the wildcard as bound and accepts on loopback", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/0.0.0.0/tcp/0"), echo)
        const bound = listener.addrs[0]!
        expect(bound.toString()).toMatch(/^\/ip4\/0\.0\.0\.0\/tcp\/\d+$/)
        const conn = yield* tcp.dial(ma(`/ip4/127.0.0.1/tcp/${portOf(bound)}`))
        yield* conn.duplex.write([enc("w")])
        expect(dec(yield* readExactly(conn.duplex, 1))).toBe("w")
      }))

    it.live.skipIf(!hasIpv6Loopback)(
      "/ip4/0.0.0.0 and /ip6/:: can listen on the same port (IPv6-only listener)",
      () =>
        Effect.gen(function*() {
          const v4 = yield* tcp.listen(ma("/ip4/0.0.0.0/tcp/0"), echo)
          const port = portOf(v4.addrs[0]!)
          const v6 = yield* tcp.listen(ma(`/ip6/::/tcp/${port}`), echo)
          expect(v6.addrs[0]!.toString()).toBe(`/ip6/::/tcp/${port}`)
          const conn = yield* tcp.dial(ma(`/ip6/::1/tcp/${port}`))
          yield* conn.duplex.write([enc("6")])
          expect(dec(yield* readExactly(conn.duplex, 1))).toBe("6")
        })
    )

    it.live("a dial resolves /dns4 names; the remote address is the resolved IP (a trailing /p2p: the suite)", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const port = portOf(listener.addrs[0]!)
        const b = yield* tcp.dial(ma(`/dns4/localhost/tcp/${port}`))
        expect(b.remoteAddr.toString()).toBe(`/ip4/127.0.0.1/tcp/${port}`)
        yield* b.duplex.write([enc("d")])
        expect(dec(yield* readExactly(b.duplex, 1))).toBe("d")
      }))
  })

  describe("connections spec §Definitions: a refused or unanswered dial is a typed error", () => {
    it.live("a listener whose accept queue is full drops SYNs: the dial runs into its deadline → Timeout", () =>
      Effect.gen(function*() {
        // A worker thread listens with backlog 1 and then blocks its event loop
        // (Atomics.wait), so it never accepts. Once the kernel's accept queue is
        // full, Linux drops further SYNs (no RST), so a connect neither succeeds
        // nor fails: deterministic offline, unlike a "blackhole" IP.
        const release = new Int32Array(new SharedArrayBuffer(4))
        const worker = yield* Effect.acquireRelease(
          Effect.sync(() =>
            new Worker(
              `const { parentPort, workerData } = require("node:worker_threads")
               const net = require("node:net")
               const server = net.createServer()
               server.listen({ host: "127.0.0.1", port: 0, backlog: 1 }, () => {
                 parentPort.postMessage(server.address().port)
                 Atomics.wait(workerData, 0, 0, 30000)
                 server.close()
               })`,
              { eval: true, workerData: release }
            )
          ),
          (w) =>
            Effect.promise(() => {
              Atomics.store(release, 0, 1)
              Atomics.notify(release, 0)
              return w.terminate()
            })
        )
        const port = yield* Effect.callback<number>((resume) => {
          worker.once("message", (p: number) => resume(Effect.succeed(p)))
        })
        // Fill the accept queue (it holds backlog + 1 = 2 here; extra fillers just hang in SYN_SENT).
        yield* Effect.acquireRelease(
          Effect.sync(() =>
            Array.from({ length: 4 }, () => {
              const s = Net.createConnection({ host: "127.0.0.1", port })
              s.on("error", () => {})
              return s
            })
          ),
          (fillers) => Effect.sync(() => fillers.forEach((s) => s.destroy()))
        )
        yield* Effect.sleep("200 millis")
        const started = performance.now()
        const err = yield* Effect.flip(tcp.dial(ma(`/ip4/127.0.0.1/tcp/${port}`), { timeout: "300 millis" }))
        const took = performance.now() - started
        expect(err.reason).toBe("Timeout")
        expect(took).toBeGreaterThanOrEqual(250)
        // the transport's own default deadline applies when the dial gives none
        const short = Tcp.make({ dialTimeout: "100 millis" })
        expect((yield* Effect.flip(short.dial(ma(`/ip4/127.0.0.1/tcp/${port}`)))).reason).toBe("Timeout")
      }))
  })

  describe("connections spec §Definitions (streams must support backpressure): flow control", () => {
    it.live(
      "a reader that does not read stops the writer (read pause + write drain), which resumes on read",
      () =>
        Effect.gen(function*() {
          const small = Tcp.make({ maxBufferedBytes: 256 * 1024 })
          const gate = yield* Deferred.make<void>()
          const received = yield* Deferred.make<number>()
          const listener = yield* small.listen(ma("/ip4/127.0.0.1/tcp/0"), (conn) =>
            Effect.gen(function*() {
              yield* Deferred.await(gate)
              const all = yield* Duplex.readAll(conn.duplex, 128 * 1024 * 1024)
              yield* Deferred.succeed(received, all.byteLength)
            }).pipe(Effect.ignore))
          const conn = yield* small.dial(listener.addrs[0]!)
          const total = 64 * 1024 * 1024
          const chunk = new Uint8Array(1024 * 1024)
          const writer = yield* Effect.forkChild(Effect.gen(function*() {
            for (let sent = 0; sent < total; sent += chunk.byteLength) yield* conn.duplex.write([chunk])
            yield* conn.duplex.closeWrite
          }))
          yield* Effect.sleep("500 millis")
          // 64 MiB cannot fit in the kernel buffers plus a 256 KiB read buffer: the writer must be suspended
          expect(writer.pollUnsafe()).toBeUndefined()
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(writer)
          expect(yield* Deferred.await(received)).toBe(total)
        }),
      60_000
    )

    it.live("64 MiB each way at once through an echo, bytes intact", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const conn = yield* tcp.dial(listener.addrs[0]!)
        const total = 64 * 1024 * 1024
        const source = randomBytes(total)
        const expected = createHash("sha256").update(source).digest("hex")
        const started = performance.now()
        const writer = yield* Effect.forkChild(Effect.gen(function*() {
          const piece = 64 * 1024
          for (let at = 0; at < total; at += 16 * piece) {
            const batch: Array<Uint8Array> = []
            for (let i = 0; i < 16 && at + i * piece < total; i++) {
              batch.push(source.subarray(at + i * piece, at + (i + 1) * piece))
            }
            yield* conn.duplex.write(batch)
          }
          yield* conn.duplex.closeWrite
        }))
        const hash = createHash("sha256")
        let got = 0
        while (true) {
          const chunks = yield* conn.duplex.read
          if (Duplex.isEOF(chunks)) break
          for (const c of chunks) {
            hash.update(c)
            got += c.byteLength
          }
        }
        yield* Fiber.join(writer)
        const seconds = (performance.now() - started) / 1000
        console.error(
          `Tcp.test: 64 MiB each way through an echo in ${seconds.toFixed(2)} s ` +
            `(${((total * 8) / seconds / 1e9).toFixed(2)} Gbit/s per direction, informative only)`
        )
        expect(got).toBe(total)
        expect(hash.digest("hex")).toBe(expected)
      }), 120_000)
  })

  describe("interop with plain node:net (RFC 9293 byte stream, nothing added on the wire)", () => {
    it.live("a raw node:net client against our listener", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const port = portOf(listener.addrs[0]!)
        const reply = yield* Effect.callback<string, Error>((resume) => {
          const s = Net.createConnection({ host: "127.0.0.1", port, allowHalfOpen: true })
          const parts: Array<Buffer> = []
          s.on("data", (d: Buffer) => parts.push(d))
          s.on("end", () => {
            s.end()
            resume(Effect.succeed(Buffer.concat(parts).toString()))
          })
          s.on("error", (e) => resume(Effect.fail(e)))
          s.on("connect", () => {
            s.write("from node:net")
            s.end() // FIN: our echo handler then half-closes too
          })
          return Effect.sync(() => s.destroy())
        })
        expect(reply).toBe("from node:net")
      }))

    it.live("our dial against a raw node:net server", () =>
      Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const srv = Net.createServer({ allowHalfOpen: true }, (s) => {
              const parts: Array<Buffer> = []
              s.on("data", (d: Buffer) => parts.push(d))
              s.on("end", () => s.end(`raw:${Buffer.concat(parts).toString()}`))
              s.on("error", () => {})
            })
            srv.listen(0, "127.0.0.1", () => resume(Effect.succeed(srv)))
          }),
          (srv) => Effect.callback<void>((resume) => void srv.close(() => resume(Effect.void)))
        )
        const port = (server.address() as Net.AddressInfo).port
        const conn = yield* tcp.dial(ma(`/ip4/127.0.0.1/tcp/${port}`), { timeout: Duration.seconds(2) })
        yield* conn.duplex.write([enc("from "), enc("effect")])
        yield* conn.duplex.closeWrite
        expect(dec(yield* Duplex.readAll(conn.duplex, 1024))).toBe("raw:from effect")
      }))
  })
})
