/**
 * The TCP transport over real loopback sockets (`it.live`): the connections
 * spec's raw transport connection (§Definitions: dial / listen, a reliable
 * bidirectional channel), TCP half-close and reset (RFC 9293 §3.6 closing,
 * §3.5.2 reset), multiaddr addressing (addressing spec §multiaddr basics), and
 * the scoped-resource contract of `Transport.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Duration, Effect, Exit, Fiber, Ref, Result, Scope } from "effect"
import { createHash, randomBytes } from "node:crypto"
import * as Net from "node:net"
import * as Os from "node:os"
import { Worker } from "node:worker_threads"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Tcp from "../../src/transport/Tcp.ts"
import type * as Transport from "../../src/transport/Transport.ts"

const ma = (s: string): Multiaddr.Multiaddr => {
  const r = Multiaddr.fromString(s)
  if (Result.isFailure(r)) throw new Error(`bad multiaddr in test: ${s}`)
  return r.success
}

const text = (s: string) => new TextEncoder().encode(s)
const str = (b: Uint8Array) => new TextDecoder().decode(b)

const tcp = Tcp.make()

const portOf = (addr: Multiaddr.Multiaddr): number => {
  const na = Multiaddr.toNodeAddress(addr)
  if (Result.isFailure(na)) throw new Error(`not a tcp address: ${addr.toString()}`)
  return na.success.port
}

/** Echo every batch back, then half-close when the remote does. */
const echo = (conn: Transport.RawConnection): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* conn.duplex.read
      if (Duplex.isEOF(chunks)) break
      yield* conn.duplex.write(chunks)
    }
    yield* conn.duplex.closeWrite
  }).pipe(Effect.ignore)

/** Read exactly `n` bytes (fails if EOF comes first). */
const readExactly = (d: Duplex.Duplex, n: number): Effect.Effect<Uint8Array, Duplex.DuplexError | string> =>
  Effect.gen(function*() {
    const got: Array<Uint8Array> = []
    let have = 0
    while (have < n) {
      const chunks = yield* d.read
      if (Duplex.isEOF(chunks)) return yield* Effect.fail(`EOF after ${have} of ${n} bytes`)
      for (const c of chunks) {
        got.push(c)
        have += c.byteLength
      }
    }
    return Duplex.concat(got)
  })

/** Poll `check` every 10 ms for up to 5 s. */
const eventually = <A>(probe: Effect.Effect<A>, check: (a: A) => boolean): Effect.Effect<A> =>
  Effect.gen(function*() {
    let a = yield* probe
    for (let i = 0; i < 500 && !check(a); i++) {
      yield* Effect.sleep("10 millis")
      a = yield* probe
    }
    return a
  })

const hasIpv6Loopback = Object.values(Os.networkInterfaces()).some((infos) =>
  (infos ?? []).some((i) => i.family === "IPv6" && i.address === "::1")
)
if (!hasIpv6Loopback) console.warn("Tcp.test: this machine has no ::1, the IPv6 loopback tests are skipped")

const tcpSocketHandles = () => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length

describe("Tcp transport", () => {
  describe("addressing spec §multiaddr basics: which addresses TCP handles", () => {
    it("dials /ip4|ip6|dns*/…/tcp/<port> with an optional /p2p suffix, listens on IP literals only", () => {
      const peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
      expect(tcp.canDial(ma("/ip4/127.0.0.1/tcp/4001"))).toBe(true)
      expect(tcp.canDial(ma("/ip6/::1/tcp/4001"))).toBe(true)
      expect(tcp.canDial(ma(`/ip4/127.0.0.1/tcp/4001/p2p/${peer}`))).toBe(true)
      expect(tcp.canDial(ma("/dns4/localhost/tcp/4001"))).toBe(true)
      expect(tcp.canDial(ma("/ip4/127.0.0.1/tcp/4001/ws"))).toBe(false)
      expect(tcp.canDial(ma("/ip4/127.0.0.1/udp/4001"))).toBe(false)
      expect(tcp.canDial(ma(`/ip4/127.0.0.1/tcp/4001/p2p/${peer}/p2p-circuit`))).toBe(false)
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
        yield* conn.duplex.write([text("hello "), text("world")])
        expect(str(yield* readExactly(conn.duplex, 11))).toBe("hello world")
        yield* conn.duplex.write([text("again")])
        expect(str(yield* readExactly(conn.duplex, 5))).toBe("again")

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
        yield* conn.duplex.write([text("w")])
        expect(str(yield* readExactly(conn.duplex, 1))).toBe("w")
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
          yield* conn.duplex.write([text("6")])
          expect(str(yield* readExactly(conn.duplex, 1))).toBe("6")
        })
    )

    it.live("a dial ignores a trailing /p2p and resolves /dns4 names", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const port = portOf(listener.addrs[0]!)
        const peer = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
        const a = yield* tcp.dial(ma(`/ip4/127.0.0.1/tcp/${port}/p2p/${peer}`))
        expect(a.remoteAddr.toString()).toBe(`/ip4/127.0.0.1/tcp/${port}`)
        yield* a.duplex.write([text("p")])
        expect(str(yield* readExactly(a.duplex, 1))).toBe("p")
        const b = yield* tcp.dial(ma(`/dns4/localhost/tcp/${port}`))
        expect(b.remoteAddr.toString()).toBe(`/ip4/127.0.0.1/tcp/${port}`)
      }))

    it.live("listening on a port in use is a typed AddressInUse error", () =>
      Effect.gen(function*() {
        const first = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const err = yield* Effect.flip(tcp.listen(first.addrs[0]!, echo))
        expect(err.reason).toBe("AddressInUse")
      }))
  })

  describe("connections spec §Definitions: a reliable byte stream, in order", () => {
    it.live("two concurrent reads on one connection both complete, and the bytes arrive once, in order", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const conn = yield* tcp.dial(listener.addrs[0]!)
        const r1 = yield* Effect.forkChild(conn.duplex.read)
        const r2 = yield* Effect.forkChild(conn.duplex.read)
        yield* Effect.yieldNow
        yield* conn.duplex.write([text("ab")])
        const done = Effect.sync(() => [r1.pollUnsafe(), r2.pollUnsafe()].filter((e) => e !== undefined).length)
        expect(yield* eventually(done, (n) => n >= 1)).toBe(1) // one read took "ab", the other still waits
        const [first, second] = r1.pollUnsafe() !== undefined ? [r1, r2] : [r2, r1]
        yield* conn.duplex.write([text("cd")])
        expect(str(Duplex.concat(yield* Fiber.join(first)))).toBe("ab")
        expect(str(Duplex.concat(yield* Fiber.join(second)))).toBe("cd")
        yield* conn.duplex.closeWrite
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
      }))
  })

  describe("RFC 9293 §3.6: half-close (closeWrite sends FIN, the other direction stays open)", () => {
    it.live("closeWrite → the other side reads [] and can still write back", () =>
      Effect.gen(function*() {
        const serverSaw = yield* Deferred.make<string>()
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), (conn) =>
          Effect.gen(function*() {
            const request = yield* Duplex.readAll(conn.duplex, 1024) // to EOF
            yield* Deferred.succeed(serverSaw, str(request))
            // our write side is still open after the remote's FIN
            yield* conn.duplex.write([text("reply to "), request])
            yield* conn.duplex.closeWrite
          }).pipe(Effect.ignore))
        const conn = yield* tcp.dial(listener.addrs[0]!)
        yield* conn.duplex.write([text("request")])
        yield* conn.duplex.closeWrite
        yield* conn.duplex.closeWrite // idempotent
        expect(yield* Deferred.await(serverSaw)).toBe("request")
        expect(str(yield* Duplex.readAll(conn.duplex, 1024))).toBe("reply to request")
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true) // EOF stays EOF
        const err = yield* Effect.flip(conn.duplex.write([text("late")]))
        expect(err.reason).toBe("Closed")
      }))
  })

  describe("RFC 9293 §3.5.2: reset (RST) aborts both directions", () => {
    it.live("the dialer resets → the listener's pending read fails with Reset (or Io)", () =>
      Effect.gen(function*() {
        const ready = yield* Deferred.make<void>()
        const outcome = yield* Deferred.make<Exit.Exit<Duplex.Chunks, Duplex.DuplexError>>()
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), (conn) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(ready, undefined)
            yield* Deferred.succeed(outcome, yield* Effect.exit(conn.duplex.read))
          }))
        const conn = yield* tcp.dial(listener.addrs[0]!)
        yield* Deferred.await(ready)
        yield* conn.duplex.reset
        yield* conn.duplex.reset // idempotent
        const exit = yield* Deferred.await(outcome)
        expect(Exit.isFailure(exit)).toBe(true)
        const err = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
        expect(err).toBeInstanceOf(Duplex.DuplexError)
        expect(["Reset", "Io"]).toContain((err as Duplex.DuplexError).reason)
        // locally, reads and writes fail with Reset at once
        expect((yield* Effect.flip(conn.duplex.read)).reason).toBe("Reset")
        expect((yield* Effect.flip(conn.duplex.write([text("x")]))).reason).toBe("Reset")
      }))

    it.live("the listener resets → the dialer's read fails with Reset, and a buffered reply is not EOF", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), (conn) =>
          Effect.gen(function*() {
            yield* readExactly(conn.duplex, 1)
            yield* conn.duplex.reset
          }).pipe(Effect.ignore))
        const conn = yield* tcp.dial(listener.addrs[0]!)
        yield* conn.duplex.write([text("x")])
        const err = yield* Effect.flip(Duplex.readAll(conn.duplex, 1024))
        expect(["Reset", "Io"]).toContain(err.reason)
      }))
  })

  describe("connections spec §Definitions: a refused or unanswered dial is a typed error", () => {
    it.live("ECONNREFUSED → TransportError Refused", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const listener = yield* Scope.provide(tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo), scope)
        const addr = listener.addrs[0]!
        yield* Scope.close(scope, Exit.void) // nothing listens there any more
        const err = yield* Effect.flip(tcp.dial(addr))
        expect(err._tag).toBe("TransportError")
        expect(err.reason).toBe("Refused")
        expect(err.address).toBe(addr.toString())
      }))

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

  describe("Transport contract: scoped ownership", () => {
    it.live("closing the listener's scope interrupts handlers and closes every accepted connection", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const started = yield* Ref.make(0)
        const interrupted = yield* Ref.make(0)
        const listener = yield* Scope.provide(
          tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), () =>
            Ref.update(started, (n) => n + 1).pipe(
              Effect.andThen(Effect.never),
              Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1))
            )),
          scope
        )
        const a = yield* tcp.dial(listener.addrs[0]!)
        const b = yield* tcp.dial(listener.addrs[0]!)
        yield* eventually(Ref.get(started), (n) => n === 2)
        expect(yield* listener.stats).toEqual({ connections: 2, handlers: 2 })
        yield* Scope.close(scope, Exit.void)
        expect(yield* Ref.get(interrupted)).toBe(2)
        // the remote ends see the connection end (FIN, or RST) — never silence
        for (const conn of [a, b]) {
          const r = yield* Effect.exit(conn.duplex.read)
          expect(Exit.isSuccess(r) ? Duplex.isEOF(r.value) : true).toBe(true)
        }
        expect(yield* eventually(listener.stats, (s) => s.connections === 0)).toEqual({ connections: 0, handlers: 0 })
        // and nothing is accepted any more
        expect((yield* Effect.flip(tcp.dial(listener.addrs[0]!))).reason).toBe("Refused")
      }))

    it.live("closing a dialed connection's scope closes the socket (the remote reads EOF)", () =>
      Effect.gen(function*() {
        const seen = yield* Deferred.make<Exit.Exit<Uint8Array, Duplex.DuplexError>>()
        const listener = yield* tcp.listen(
          ma("/ip4/127.0.0.1/tcp/0"),
          (conn) =>
            Effect.exit(Duplex.readAll(conn.duplex, 1024)).pipe(Effect.flatMap((e) => Deferred.succeed(seen, e)))
        )
        const scope = yield* Scope.make()
        const conn = yield* Scope.provide(tcp.dial(listener.addrs[0]!), scope)
        yield* conn.duplex.write([text("bye")])
        yield* Scope.close(scope, Exit.void)
        const exit = yield* Deferred.await(seen)
        expect(Exit.isSuccess(exit) && str(exit.value)).toBe("bye")
        expect((yield* Effect.flip(conn.duplex.read)).reason).toBe("Closed")
        expect((yield* Effect.flip(conn.duplex.write([text("x")]))).reason).toBe("Closed")
        expect(yield* eventually(listener.stats, (s) => s.connections === 0)).toEqual({ connections: 0, handlers: 0 })
      }))

    it.live("an interrupted dial leaves no socket behind", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const before = tcpSocketHandles()
        for (let i = 0; i < 50; i++) {
          const fiber = yield* Effect.forkChild(Effect.scoped(tcp.dial(listener.addrs[0]!)))
          if (i % 2 === 0) yield* Effect.yieldNow
          yield* Fiber.interrupt(fiber)
        }
        expect(yield* eventually(listener.stats, (s) => s.connections === 0)).toEqual({ connections: 0, handlers: 0 })
        expect(yield* eventually(Effect.sync(tcpSocketHandles), (n) => n <= before)).toBeLessThanOrEqual(before)
      }))

    it.live("1,000 sequential connections leak no fibers or sockets", () =>
      Effect.gen(function*() {
        const listener = yield* tcp.listen(ma("/ip4/127.0.0.1/tcp/0"), echo)
        const before = tcpSocketHandles()
        const addr = listener.addrs[0]!
        for (let i = 0; i < 1000; i++) {
          yield* Effect.scoped(Effect.gen(function*() {
            const conn = yield* tcp.dial(addr)
            yield* conn.duplex.write([Uint8Array.of(i & 0xff)])
            const got = yield* readExactly(conn.duplex, 1)
            if (got[0] !== (i & 0xff)) return yield* Effect.fail(`connection ${i}: wrong byte`)
          }))
        }
        expect(yield* eventually(listener.stats, (s) => s.connections === 0 && s.handlers === 0)).toEqual({
          connections: 0,
          handlers: 0
        })
        expect(yield* eventually(Effect.sync(tcpSocketHandles), (n) => n <= before)).toBeLessThanOrEqual(before)
      }), 120_000)

    it.live("a handler that dies or is interrupted does not stop the listener", () =>
      Effect.gen(function*() {
        const count = yield* Ref.make(0)
        const listener = yield* tcp.listen(
          ma("/ip4/127.0.0.1/tcp/0"),
          (conn) =>
            Ref.getAndUpdate(count, (n) => n + 1).pipe(
              Effect.flatMap((n) => n === 0 ? Effect.die("handler bug") : n === 1 ? Effect.interrupt : echo(conn))
            )
        )
        for (let i = 0; i < 2; i++) {
          const conn = yield* tcp.dial(listener.addrs[0]!)
          // its connection is closed when the handler ends
          const r = yield* Effect.exit(conn.duplex.read)
          expect(Exit.isSuccess(r) ? Duplex.isEOF(r.value) : true).toBe(true)
        }
        const conn = yield* tcp.dial(listener.addrs[0]!)
        yield* conn.duplex.write([text("still here")])
        expect(str(yield* readExactly(conn.duplex, 10))).toBe("still here")
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
        yield* conn.duplex.write([text("from "), text("effect")])
        yield* conn.duplex.closeWrite
        expect(str(yield* Duplex.readAll(conn.duplex, 1024))).toBe("raw:from effect")
      }))
  })
})
