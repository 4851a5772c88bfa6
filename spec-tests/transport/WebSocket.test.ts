/**
 * The WebSocket transport over real loopback sockets (`it.live`): the libp2p
 * websockets spec (§Addressing for the multiaddr shapes, §Certificates /
 * §Encryption for `/wss` and `/tls/ws` with a certificate supplied by the
 * operator — here a self-signed one made with `openssl` at test time), RFC
 * 6455 for the wire (binary messages §5.6, the closing handshake §5.5.1 /
 * §7.1.2 / §7.4.1 status codes, the opening handshake §4.2.1 / §4.2.2), the
 * connections spec's raw connection (§Definitions: dial / listen, a reliable
 * bidirectional channel with backpressure), and the scoped-resource contract
 * of `Transport.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Result, Scope } from "effect"
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { ClientOptions } from "ws"
import { WebSocket as WsClient, WebSocketServer } from "ws"
import * as Nodes from "../../layers/Node.ts"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Yamux from "../../src/muxer/Yamux.ts"
import * as Noise from "../../src/security/Noise.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import * as WebSocket from "../../src/transport/WebSocket.ts"
import { dec, enc, MiB } from "../support/bytes.ts"
import { ma } from "../support/multiaddr.ts"
import { buildNode } from "../support/node.ts"
import { echo, eventually, hasIpv6Loopback, PEER, portOf, readExactly } from "../support/transport.ts"
import { transportSuite } from "./compliance.ts"

/** Read until EOF or failure; hand the failure to `seen` (an EOF leaves it unset). */
const readFailure = (
  conn: Transport.RawConnection,
  max: number,
  seen: Deferred.Deferred<Duplex.DuplexError>
): Effect.Effect<void> =>
  Effect.result(Duplex.readAll(conn.duplex, max)).pipe(
    Effect.flatMap((r) => Result.isFailure(r) ? Deferred.succeed(seen, r.failure) : Effect.void),
    Effect.asVoid
  )

// ---------------------------------------------------------------------------
// A self-signed certificate for localhost / 127.0.0.1 / ::1, made at test time
// ---------------------------------------------------------------------------

const makeCertificate = (): WebSocket.Certificate | undefined => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "ws-test-cert-"))
  try {
    execFileSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      Path.join(dir, "key.pem"),
      "-out",
      Path.join(dir, "cert.pem"),
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
    ], { stdio: "ignore" })
    return {
      cert: Fs.readFileSync(Path.join(dir, "cert.pem"), "utf8"),
      key: Fs.readFileSync(Path.join(dir, "key.pem"), "utf8")
    }
  } catch {
    return undefined
  } finally {
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}
const certificate = makeCertificate()
if (certificate === undefined) console.warn("WebSocket.test: no openssl, the TLS tests are skipped")

if (!hasIpv6Loopback) console.warn("WebSocket.test: this machine has no ::1, the IPv6 loopback tests are skipped")

const ws = WebSocket.make()
const wss = certificate === undefined ? ws : WebSocket.make({ certificate, ca: certificate.cert })

transportSuite("ws", {
  transport: ws,
  listenAddr: Effect.succeed(ma("/ip4/127.0.0.1/tcp/0/ws")),
  halfClose: false, // RFC 6455 §5.5.1: closeWrite is the closing handshake, it ends both directions
  resetSeenAs: ["Reset"], // §7.1.7: the connection is dropped without a Close frame
  stats: (listener) => listener.stats
})

/** A raw `ws` client (RFC 6455 only, no libp2p) connected to `url`, with its messages and close collected. */
const rawClient = (url: string, options: ClientOptions = {}) =>
  Effect.acquireRelease(
    Effect.callback<{
      readonly socket: WsClient
      readonly messages: Array<{ readonly data: Buffer; readonly binary: boolean }>
      readonly closed: Deferred.Deferred<number>
    }, string>((resume) => {
      const socket = new WsClient(url, { perMessageDeflate: false, ...options })
      const messages: Array<{ data: Buffer; binary: boolean }> = []
      const closed = Deferred.makeUnsafe<number>()
      socket.on("message", (data, binary) => messages.push({ data: data as Buffer, binary }))
      socket.on("close", (code) => Deferred.doneUnsafe(closed, Exit.succeed(code)))
      socket.on("error", (err) => resume(Effect.fail(err.message)))
      socket.once("open", () => resume(Effect.succeed({ socket, messages, closed })))
    }),
    (c) => Effect.sync(() => c.socket.terminate())
  )

/** Write `bytes` on a raw TCP connection to `port` and collect everything until the server closes it. */
const rawTcp = (port: number, bytes: string | Uint8Array, host = "127.0.0.1") =>
  Effect.callback<string>((resume) => {
    const socket = Net.createConnection({ host, port })
    let got = ""
    socket.on("data", (d) => {
      got += d.toString("latin1")
    })
    socket.on("error", () => {})
    socket.on("close", () => resume(Effect.succeed(got)))
    socket.write(bytes)
    return Effect.sync(() => socket.destroy())
  })

describe("WebSocket transport", () => {
  describe("websockets spec §Addressing: which addresses it handles", () => {
    it("dial: /ws, /wss, /tls/ws, /tls/sni/<name>/ws over ip4/ip6/dns*, with or without /tcp, /http-path and /p2p", () => {
      const yes = [
        "/ip4/192.0.2.0/tcp/1234/ws",
        "/ip4/192.0.2.0/tcp/1234/tls/ws",
        "/ip4/192.0.2.0/ws",
        "/ip4/192.0.2.0/tls/ws",
        "/ip4/192.0.2.0/wss",
        "/dns/example.com/wss",
        "/dns/example.com/wss/http-path/path%2Fto%2Fendpoint",
        "/ip6/::1/tcp/1/ws",
        "/dns4/example.com/tcp/443/tls/sni/example.com/ws",
        "/dns6/example.com/tcp/1/wss",
        `/ip4/127.0.0.1/tcp/1/ws/p2p/${PEER}`,
        `/ip4/127.0.0.1/tcp/1/tls/sni/a.example/ws/http-path/x/p2p/${PEER}`
      ]
      const no = [
        "/ip4/127.0.0.1/tcp/1",
        "/ip4/127.0.0.1/udp/1/ws",
        "/ip4/127.0.0.1/tcp/1/tls",
        "/ip4/127.0.0.1/tcp/1/tls/sni/x",
        "/ip4/127.0.0.1/tcp/1/ws/ws",
        "/ip4/127.0.0.1/tcp/1/ws/tcp/2",
        `/ip4/127.0.0.1/tcp/1/p2p/${PEER}/ws`,
        "/dnsaddr/example.com/ws",
        "/unix/tmp%2Fx.sock/ws",
        "/memory/1"
      ]
      for (const a of yes) expect([a, ws.canDial(ma(a))]).toEqual([a, true])
      for (const a of no) expect([a, ws.canDial(ma(a))]).toEqual([a, false])
    })

    it("dial URLs: default ports 80 / 443 when /tcp is absent, IPv6 in brackets, /http-path as the request path", () => {
      const url = (a: string) => {
        const t = WebSocket.parseDial(ma(a))
        return t === undefined ? undefined : WebSocket.toUrl(t)
      }
      expect(url("/ip4/192.0.2.0/tcp/1234/ws")).toBe("ws://192.0.2.0:1234/")
      expect(url("/ip4/192.0.2.0/ws")).toBe("ws://192.0.2.0:80/")
      expect(url("/ip4/192.0.2.0/tls/ws")).toBe("wss://192.0.2.0:443/")
      expect(url("/ip4/192.0.2.0/wss")).toBe("wss://192.0.2.0:443/")
      expect(url("/ip6/::1/tcp/8/ws")).toBe("ws://[::1]:8/")
      expect(url("/dns/example.com/wss/http-path/path%2Fto%2Fendpoint")).toBe("wss://example.com:443/path/to/endpoint")
      expect(url("/dns/example.com/tcp/9/ws/http-path/a%20b%3Fc")).toBe("ws://example.com:9/a%20b%3Fc")
      // SNI names the server, the URL keeps the host dialed
      const sni = WebSocket.parseDial(ma("/ip4/10.0.0.1/tcp/443/tls/sni/example.com/ws"))
      expect(sni?.sni).toBe("example.com")
      expect(sni === undefined ? undefined : WebSocket.toUrl(sni)).toBe("wss://10.0.0.1:443/")
    })

    it("listen: IP literals with /tcp, /ws always, /wss and /tls/ws only with a certificate", () => {
      const withCert = WebSocket.make({ certificate: { cert: "x", key: "y" } })
      for (const a of ["/ip4/127.0.0.1/tcp/0/ws", "/ip6/::/tcp/0/ws", "/ip4/0.0.0.0/tcp/1/ws/http-path/p"]) {
        expect([a, ws.canListen(ma(a)), withCert.canListen(ma(a))]).toEqual([a, true, true])
      }
      for (const a of ["/ip4/127.0.0.1/tcp/0/wss", "/ip4/127.0.0.1/tcp/0/tls/ws"]) {
        expect([a, ws.canListen(ma(a)), withCert.canListen(ma(a))]).toEqual([a, false, true])
      }
      for (const a of [
        "/dns4/localhost/tcp/0/ws",
        "/ip4/127.0.0.1/ws",
        "/ip4/127.0.0.1/tcp/0/tls/sni/x/ws",
        "/ip4/127.0.0.1/tcp/0"
      ]) {
        expect([a, withCert.canListen(ma(a))]).toEqual([a, false])
      }
    })

    it.live("an address it does not handle is a typed Unsupported error (dial and listen, and /wss without a certificate)", () =>
      Effect.gen(function*() {
        const d = yield* Effect.flip(ws.dial(ma("/ip4/127.0.0.1/tcp/1")))
        expect([d._tag, d.reason]).toEqual(["TransportError", "Unsupported"])
        const l = yield* Effect.flip(ws.listen(ma("/dns4/localhost/tcp/0/ws"), echo))
        expect(l.reason).toBe("Unsupported")
        const s = yield* Effect.flip(ws.listen(ma("/ip4/127.0.0.1/tcp/0/wss"), echo))
        expect(s.reason).toBe("Unsupported")
        expect(s.message).toContain("certificate")
      }))
  })

  describe("connections spec §Definitions: dial and listen give a reliable bidirectional channel", () => {
    const roundTrip = (transport: WebSocket.WebSocketTransport, listenAddr: string, prefix: string, suffix: string) =>
      Effect.gen(function*() {
        const accepted = yield* Deferred.make<Transport.RawConnection>()
        const listener = yield* transport.listen(
          ma(listenAddr),
          (conn) => Deferred.succeed(accepted, conn).pipe(Effect.andThen(echo(conn)))
        )
        expect(listener.addrs).toHaveLength(1)
        const bound = listener.addrs[0]!
        expect(bound.toString()).toMatch(new RegExp(`^${prefix}/tcp/\\d+${suffix}$`))
        expect(portOf(bound)).toBeGreaterThan(0)

        const conn = yield* transport.dial(bound)
        yield* conn.duplex.write([enc("hello "), enc("world")])
        expect(dec(yield* readExactly(conn.duplex, 11))).toBe("hello world")
        yield* conn.duplex.write([enc("again")])
        expect(dec(yield* readExactly(conn.duplex, 5))).toBe("again")

        const server = yield* Deferred.await(accepted)
        expect(conn.remoteAddr.toString()).toBe(bound.toString())
        expect(server.localAddr.toString()).toBe(bound.toString())
        expect(portOf(server.remoteAddr)).toBe(portOf(conn.localAddr))
        expect(server.remoteAddr.toString().startsWith(prefix)).toBe(true)

        // 1 MiB of random bytes in 64 KiB writes, and back
        const big = randomBytes(MiB)
        const writer = yield* Effect.forkChild(Effect.gen(function*() {
          for (let i = 0; i < big.length; i += 65536) yield* conn.duplex.write([big.subarray(i, i + 65536)])
        }))
        const back = yield* readExactly(conn.duplex, big.length)
        yield* Fiber.join(writer)
        expect(Buffer.compare(back, big)).toBe(0)

        yield* conn.duplex.closeWrite
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
      })

    it.live("/ip4/127.0.0.1/tcp/0/ws: the listener reports the real port, bytes echo both ways", () =>
      roundTrip(ws, "/ip4/127.0.0.1/tcp/0/ws", "/ip4/127.0.0.1", "/ws"))

    it.live.skipIf(!hasIpv6Loopback)(
      "/ip6/::1/tcp/0/ws: same over IPv6",
      () => roundTrip(ws, "/ip6/::1/tcp/0/ws", "/ip6/::1", "/ws")
    )

    it.live.skipIf(certificate === undefined)(
      "§Encryption: /wss with a self-signed certificate the dialer trusts (ca), bytes echo both ways [websockets:certificates:1] [websockets:certificates:2]",
      () => roundTrip(wss, "/ip4/127.0.0.1/tcp/0/wss", "/ip4/127.0.0.1", "/wss")
    )

    it.live.skipIf(certificate === undefined)(
      "§Encryption: /tls/ws, same",
      () => roundTrip(wss, "/ip4/127.0.0.1/tcp/0/tls/ws", "/ip4/127.0.0.1", "/tls/ws")
    )

    it.live.skipIf(certificate === undefined || !hasIpv6Loopback)(
      "§Encryption: /ip6/::1/.../tls/ws, same",
      () => roundTrip(wss, "/ip6/::1/tcp/0/tls/ws", "/ip6/::1", "/tls/ws")
    )

    it.live.skipIf(certificate === undefined)(
      "§MITM mitigation: a certificate the dialer does not trust, or for another name, fails the dial (Io); /tls/sni/<name> checks <name>",
      () =>
        Effect.gen(function*() {
          const listener = yield* wss.listen(ma("/ip4/127.0.0.1/tcp/0/tls/ws"), echo)
          const port = portOf(listener.addrs[0]!)
          // default trust store: a self-signed certificate is refused
          const untrusting = WebSocket.make()
          const e1 = yield* Effect.flip(untrusting.dial(listener.addrs[0]!))
          expect(e1.reason).toBe("Io")
          expect(e1.message).toMatch(/self.signed/i)
          // the certificate is for localhost: SNI "localhost" passes, another name fails
          const ok = yield* wss.dial(ma(`/ip4/127.0.0.1/tcp/${port}/tls/sni/localhost/ws`))
          yield* ok.duplex.write([enc("sni")])
          expect(dec(yield* readExactly(ok.duplex, 3))).toBe("sni")
          expect(ok.remoteAddr.toString()).toBe(`/ip4/127.0.0.1/tcp/${port}/tls/sni/localhost/ws`)
          const e2 = yield* Effect.flip(wss.dial(ma(`/ip4/127.0.0.1/tcp/${port}/tls/sni/example.com/ws`)))
          expect(e2.reason).toBe("Io")
          // and verification can be switched off
          const lax = WebSocket.make({ rejectUnauthorized: false })
          const c = yield* lax.dial(listener.addrs[0]!)
          yield* c.duplex.write([enc("lax")])
          expect(dec(yield* readExactly(c.duplex, 3))).toBe("lax")
          // a plain ws dial to a TLS listener is not a WebSocket handshake for it
          expect((yield* Effect.flip(ws.dial(ma(`/ip4/127.0.0.1/tcp/${port}/ws`), { timeout: "2 seconds" }))).reason)
            .not.toBe("Unsupported")
        })
    )

    it.live("/dns4/localhost dials resolve; /p2p is ignored; the remote address is the resolved IP", () =>
      Effect.gen(function*() {
        const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), echo)
        const port = portOf(listener.addrs[0]!)
        const a = yield* ws.dial(ma(`/dns4/localhost/tcp/${port}/ws/p2p/${PEER}`))
        expect(a.remoteAddr.toString()).toBe(`/ip4/127.0.0.1/tcp/${port}/ws`)
        yield* a.duplex.write([enc("d")])
        expect(dec(yield* readExactly(a.duplex, 1))).toBe("d")
      }))

    it.live("§Addressing /http-path: a listener with a path upgrades that path only (404 otherwise)", () =>
      Effect.gen(function*() {
        const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws/http-path/libp2p%2Fws"), echo)
        const bound = listener.addrs[0]!
        expect(bound.toString()).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/ws\/http-path\/libp2p%2Fws$/)
        const conn = yield* ws.dial(bound)
        yield* conn.duplex.write([enc("path")])
        expect(dec(yield* readExactly(conn.duplex, 4))).toBe("path")
        const wrong = yield* Effect.flip(ws.dial(ma(`/ip4/127.0.0.1/tcp/${portOf(bound)}/ws/http-path/other`)))
        expect(wrong.reason).toBe("Io")
        expect(wrong.message).toContain("404")
        const root = yield* Effect.flip(ws.dial(ma(`/ip4/127.0.0.1/tcp/${portOf(bound)}/ws`)))
        expect(root.message).toContain("404")
      }))
  })

  describe("RFC 6455 §5.6: the libp2p byte stream travels in binary messages, nothing else on the wire", () => {
    it.live("our dial against a plain `ws` server: binary messages only, bytes intact and in order; small chunks of a batch share a message, a 64 KiB chunk goes alone, a chunk over 1 MiB is cut", () =>
      Effect.gen(function*() {
        const received: Array<{ data: Buffer; binary: boolean }> = []
        const server = yield* Effect.acquireRelease(
          Effect.callback<WebSocketServer>((resume) => {
            const s: WebSocketServer = new WebSocketServer(
              { host: "127.0.0.1", port: 0 },
              () => resume(Effect.succeed(s))
            )
            s.on("connection", (c) => {
              c.on("message", (data, binary) => {
                received.push({ data: data as Buffer, binary })
                c.send(Buffer.from("pong"))
              })
            })
          }),
          (s) => Effect.sync(() => s.close())
        )
        const port = (server.address() as Net.AddressInfo).port
        const conn = yield* ws.dial(ma(`/ip4/127.0.0.1/tcp/${port}/ws`))
        const sizeOf = (i: number) => received[i]?.data.byteLength
        // a Noise-like batch: 2-byte length, ciphertext, 16-byte tag, twice
        const big = randomBytes(65519)
        const noiseLike = [Uint8Array.of(0xff, 0xff), big, new Uint8Array(16), Uint8Array.of(0, 3), enc("abc")]
        yield* conn.duplex.write([enc("one"), enc("two")])
        yield* conn.duplex.write([new Uint8Array([0, 1, 2, 255])])
        yield* conn.duplex.write(noiseLike)
        const large = randomBytes(64 * 1024)
        const huge = randomBytes(2 * MiB + 5)
        yield* conn.duplex.write([enc("x"), large, huge])
        const all = Buffer.concat([
          Buffer.from("onetwo"),
          Buffer.from([0, 1, 2, 255]),
          ...noiseLike,
          Buffer.from("x"),
          large,
          huge
        ])
        yield* eventually(
          Effect.sync(() => received.reduce((n, m) => n + m.data.byteLength, 0)),
          (n) => n >= all.length
        )
        expect(received.every((m) => m.binary)).toBe(true)
        expect(Buffer.compare(Buffer.concat(received.map((m) => m.data)), all)).toBe(0)
        expect(received.slice(0, 2).map((m) => m.data.toString("hex"))).toEqual(["6f6e6574776f", "000102ff"])
        // 2 + 65519 + 16 bytes reach 64 KiB: one message; the rest of the batch another
        expect([sizeOf(2), sizeOf(3)]).toEqual([2 + 65519 + 16, 5])
        // "x" + 64 KiB, then the 2 MiB + 5 chunk as 1 MiB, 1 MiB, 5
        expect([sizeOf(4), sizeOf(5), sizeOf(6), sizeOf(7)]).toEqual([1 + 64 * 1024, MiB, MiB, 5])
        expect(received).toHaveLength(8)
        expect(dec(yield* readExactly(conn.duplex, 4 * 8))).toBe("pong".repeat(8))
      }))

    it.live("a plain `ws` client against our listener: binary messages in, binary messages out", () =>
      Effect.gen(function*() {
        const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), echo)
        const client = yield* rawClient(`ws://127.0.0.1:${portOf(listener.addrs[0]!)}/`)
        client.socket.send(Buffer.from("abc"))
        client.socket.send(Buffer.from("de"))
        yield* eventually(Effect.sync(() => client.messages.length), (n) => n >= 2)
        expect(client.messages.every((m) => m.binary)).toBe(true)
        expect(Buffer.concat(client.messages.map((m) => m.data)).toString()).toBe("abcde")
        // §7.1.2: a Close from the client is EOF for us; our echo ends and the handshake completes cleanly
        client.socket.close(1000)
        expect(yield* Deferred.await(client.closed)).toBe(1000)
      }))
  })

  describe("RFC 6455 §5.5.1 / §7.1.2: closeWrite is the closing handshake (WebSocket has no half-close)", () => {
    it.live("closeWrite → the remote reads the bytes sent before it, then EOF; we read its bytes sent before its Close, then EOF", () =>
      Effect.gen(function*() {
        const serverSaw = yield* Deferred.make<string>()
        const lateWrite = yield* Deferred.make<string>()
        const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), (conn) =>
          Effect.gen(function*() {
            // send a reply at once, then read everything
            yield* conn.duplex.write([enc("early reply")])
            const all = yield* Duplex.readAll(conn.duplex, MiB)
            yield* Deferred.succeed(serverSaw, dec(all))
            // EOF means the Close came: this side answered it, so writing is over too
            const late = yield* Effect.flip(conn.duplex.write([enc("too late")]))
            yield* Deferred.succeed(lateWrite, late.reason)
          }).pipe(Effect.ignore))
        const conn = yield* ws.dial(listener.addrs[0]!)
        expect(dec(yield* readExactly(conn.duplex, 11))).toBe("early reply")
        yield* conn.duplex.write([enc("last words")])
        yield* conn.duplex.closeWrite
        yield* conn.duplex.closeWrite // idempotent
        expect(yield* Deferred.await(serverSaw)).toBe("last words")
        expect(yield* Deferred.await(lateWrite)).toBe("Closed")
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
        const w = yield* Effect.flip(conn.duplex.write([enc("x")]))
        expect(w.reason).toBe("Closed")
      }))

    it.live("a remote Close 1000 / 1001 / no status is EOF; another status fails reads with Io", () =>
      Effect.gen(function*() {
        for (
          const [code, expected] of [
            [1000, "eof"],
            [1001, "eof"],
            [undefined, "eof"],
            [1011, "Io"],
            [4000, "Io"]
          ] as const
        ) {
          const result = yield* Deferred.make<string>()
          const listener = yield* ws.listen(
            ma("/ip4/127.0.0.1/tcp/0/ws"),
            (conn) =>
              Effect.result(Duplex.readAll(conn.duplex, 1024)).pipe(
                Effect.flatMap((r) =>
                  Deferred.succeed(
                    result,
                    Result.isSuccess(r) ? `eof:${dec(r.success)}` : `${r.failure.reason}:${r.failure.message}`
                  )
                )
              )
          )
          const client = yield* rawClient(`ws://127.0.0.1:${portOf(listener.addrs[0]!)}/`)
          client.socket.send(Buffer.from("data"))
          if (code === undefined) client.socket.close()
          else client.socket.close(code)
          const seen = yield* Deferred.await(result)
          if (expected === "eof") expect([code, seen]).toEqual([code, "eof:data"])
          else expect([code, seen.startsWith("Io:") && seen.includes(String(code))]).toEqual([code, true])
        }
      }))
  })

  describe("connections spec §Definitions: a refused or unanswered dial is a typed error", () => {
    it.live("a server that accepts TCP but never answers the upgrade: the dial runs into its deadline → Timeout", () =>
      Effect.gen(function*() {
        const silent = yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const s = Net.createServer((socket) => socket.on("error", () => {}))
            s.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.succeed(s)))
          }),
          (s) => Effect.sync(() => s.close())
        )
        const port = (silent.address() as Net.AddressInfo).port
        const started = performance.now()
        const err = yield* Effect.flip(ws.dial(ma(`/ip4/127.0.0.1/tcp/${port}/ws`), { timeout: "300 millis" }))
        expect(err.reason).toBe("Timeout")
        expect(performance.now() - started).toBeGreaterThanOrEqual(250)
        const short = WebSocket.make({ dialTimeout: "100 millis" })
        expect((yield* Effect.flip(short.dial(ma(`/ip4/127.0.0.1/tcp/${port}/ws`)))).reason).toBe("Timeout")
      }))

    it.live("an HTTP server that answers something other than 101 fails the dial with Io", () =>
      Effect.gen(function*() {
        const http = yield* Effect.acquireRelease(
          Effect.callback<Net.Server>((resume) => {
            const s = Net.createServer((socket) => {
              socket.on("error", () => {})
              socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            })
            s.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.succeed(s)))
          }),
          (s) => Effect.sync(() => s.close())
        )
        const port = (http.address() as Net.AddressInfo).port
        const err = yield* Effect.flip(ws.dial(ma(`/ip4/127.0.0.1/tcp/${port}/ws`)))
        expect(err.reason).toBe("Io")
        expect(err.message).toContain("403")
      }))
  })

  describe("Transport contract: scoped ownership", () => {
    it.live("§7.1.2: closing the listener's scope ends each accepted connection with a Close the dialer reads as EOF, not an error", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const listener = yield* Scope.provide(ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), () => Effect.never), scope)
        const a = yield* ws.dial(listener.addrs[0]!)
        const b = yield* ws.dial(listener.addrs[0]!)
        yield* eventually(listener.stats, (s) => s.handlers === 2)
        yield* Scope.close(scope, Exit.void)
        for (const conn of [a, b]) expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
      }))
  })

  describe("bad input: RFC 6455 §4.2.1 / §4.2.2 opening handshake, §5.6 data frames, §7.4.1 status codes", () => {
    it.live("not a WebSocket handshake (junk bytes, plain GET, bad Upgrade, key or version, huge headers, POST) → HTTP 4xx and closed; the listener keeps serving", () =>
      Effect.gen(function*() {
        const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), echo)
        const port = portOf(listener.addrs[0]!)
        const key = "dGhlIHNhbXBsZSBub25jZQ=="
        const requests = [
          ["\x00\x01\x02 not http at all\r\n\r\n", 400],
          ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400],
          ["GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", 400],
          [
            `GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n`,
            400
          ],
          [
            `GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 7\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
            400
          ],
          [
            `GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\nX: ${
              "a".repeat(20000)
            }\r\n\r\n`,
            431
          ],
          // §4.2.1: the handshake is a GET (ws answers other methods 405)
          [
            `POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${key}\r\n\r\n`,
            405
          ]
        ] as const
        for (const [request, status] of requests) {
          const answer = yield* rawTcp(port, request).pipe(Effect.timeout("5 seconds"))
          expect([request, answer.split("\r\n")[0]?.slice(0, 12)]).toEqual([request, `HTTP/1.1 ${status}`])
        }
        const conn = yield* ws.dial(listener.addrs[0]!)
        yield* conn.duplex.write([enc("ok")])
        expect(dec(yield* readExactly(conn.duplex, 2))).toBe("ok")
        expect(yield* eventually(listener.stats, (s) => s.sockets === 1)).toEqual({
          sockets: 1,
          connections: 1,
          handlers: 1
        })
      }))

    it.live("a connection that does not complete its upgrade within handshakeTimeout is dropped (TCP and TLS)", () =>
      Effect.gen(function*() {
        const quick = WebSocket.make({ handshakeTimeout: "200 millis", ...(certificate ? { certificate } : {}) })
        const addrs = ["/ip4/127.0.0.1/tcp/0/ws", ...(certificate ? ["/ip4/127.0.0.1/tcp/0/wss"] : [])]
        for (const a of addrs) {
          const listener = yield* quick.listen(ma(a), echo)
          const started = performance.now()
          // half a request line, then silence (for TLS: silence, no ClientHello)
          const bytes = a.endsWith("/ws") ? "GET / HT" : ""
          const answer = yield* rawTcp(portOf(listener.addrs[0]!), bytes).pipe(Effect.timeout("5 seconds"))
          const took = performance.now() - started
          expect([a, answer]).toEqual([a, ""])
          expect(took).toBeGreaterThanOrEqual(150)
          expect(yield* eventually(listener.stats, (s) => s.sockets === 0 && s.connections === 0)).toEqual({
            sockets: 0,
            connections: 0,
            handlers: 0
          })
        }
      }))

    it.live("a text message is a protocol violation: typed Io error on our side, Close 1003 to the sender", () =>
      Effect.gen(function*() {
        const seen = yield* Deferred.make<Duplex.DuplexError>()
        const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), (conn) => readFailure(conn, MiB, seen))
        const client = yield* rawClient(`ws://127.0.0.1:${portOf(listener.addrs[0]!)}/`)
        client.socket.send("hello as text")
        const err = yield* Deferred.await(seen)
        expect([err._tag, err.reason]).toEqual(["DuplexError", "Io"])
        expect(err.message).toContain("text")
        expect(yield* Deferred.await(client.closed)).toBe(1003)
        expect(yield* eventually(listener.stats, (s) => s.sockets === 0 && s.connections === 0)).toEqual({
          sockets: 0,
          connections: 0,
          handlers: 0
        })
      }))

    it.live("a text message from a server we dialed: our read fails Io, the connection is closed", () =>
      Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.callback<WebSocketServer>((resume) => {
            const s: WebSocketServer = new WebSocketServer(
              { host: "127.0.0.1", port: 0 },
              () => resume(Effect.succeed(s))
            )
            s.on("connection", (c) => c.send("text"))
          }),
          (s) => Effect.sync(() => s.close())
        )
        const conn = yield* ws.dial(ma(`/ip4/127.0.0.1/tcp/${(server.address() as Net.AddressInfo).port}/ws`))
        const err = yield* Effect.flip(conn.duplex.read)
        expect(err.reason).toBe("Io")
        expect((yield* Effect.flip(conn.duplex.write([enc("x")]))).reason).toBe("Io")
      }))

    it.live(
      "a message over maxPayload (default 16 MiB) closes the connection with 1009, our reads fail Io",
      () =>
        Effect.gen(function*() {
          const seen = yield* Deferred.make<Duplex.DuplexError>()
          const listener = yield* ws.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), (conn) => readFailure(conn, 64 * MiB, seen))
          const client = yield* rawClient(`ws://127.0.0.1:${portOf(listener.addrs[0]!)}/`)
          client.socket.send(Buffer.alloc(16 * MiB)) // exactly the limit: accepted
          client.socket.send(Buffer.alloc(16 * MiB + 1))
          const err = yield* Deferred.await(seen)
          expect(err.reason).toBe("Io")
          expect(err.message).toMatch(/payload|length|1009/i)
          expect(yield* Deferred.await(client.closed)).toBe(1009)
        }),
      30_000
    )
  })

  describe("websockets spec §Stream Multiplexing, §Authentication: the whole stack (multistream-select, Noise, Yamux) over WebSockets", () => {
    /** One of our nodes on `transport`, listening on `listen`. */
    const node = (transport: WebSocket.WebSocketTransport, listen: string) =>
      Effect.gen(function*() {
        const noise = yield* Noise.make()
        const layer = Nodes.layer({
          transports: [transport],
          security: [noise],
          muxers: [Yamux.yamux],
          listen: [ma(listen)]
        })
        return yield* buildNode(layer)
      })

    const pingAndIdentify = (transport: WebSocket.WebSocketTransport, listen: string) =>
      Effect.gen(function*() {
        const a = yield* node(transport, listen)
        const b = yield* node(transport, listen)
        const target = a.host.addrs()[0]!
        expect(Multiaddr.toString(target)).toContain(listen.endsWith("/wss") ? "/wss/p2p/" : "/ws/p2p/")
        const conn = yield* b.host.dial(target)
        expect([conn.security, conn.muxer]).toEqual(["/noise", "/yamux/1.0.0"])
        expect(PeerId.equals(conn.remotePeer, a.host.peerId)).toBe(true)
        const rtts = yield* b.ping.ping(a.host.peerId, { count: 3 })
        expect(rtts).toHaveLength(3)
        const id = yield* b.identify.identify(conn)
        expect(id.listenAddrs.map(Multiaddr.toString)).toEqual(
          a.host.addrs().map((x) => Multiaddr.toString(Multiaddr.decapsulateCode(x, Multiaddr.codes.p2p)))
        )
        // hang-up: a Close from one side, the other drops the connection
        yield* b.host.hangUp(a.host.peerId)
        yield* eventually(Effect.sync(() => a.host.connections(b.host.peerId).length), (n) => n === 0)
        expect(a.host.connections(b.host.peerId)).toHaveLength(0)
      })

    it.live("two of our nodes over /ws: dial, ping, identify, hang up [websockets:stream-multiplexing:1] [websockets:authentication:1] [websockets:encryption:1]", () =>
      pingAndIdentify(ws, "/ip4/127.0.0.1/tcp/0/ws"))

    it.live.skipIf(certificate === undefined)(
      "two of our nodes over /wss (Noise inside TLS): dial, ping, identify, hang up",
      () => pingAndIdentify(wss, "/ip4/127.0.0.1/tcp/0/wss")
    )
  })

  describe("connections spec §Definitions (streams must support backpressure): flow control", () => {
    it.live(
      "a reader that does not read stops the writer (read pause + write drain), which resumes on read",
      () =>
        Effect.gen(function*() {
          const small = WebSocket.make({ maxBufferedBytes: 256 * 1024 })
          const gate = yield* Deferred.make<void>()
          const received = yield* Deferred.make<number>()
          const listener = yield* small.listen(ma("/ip4/127.0.0.1/tcp/0/ws"), (conn) =>
            Effect.gen(function*() {
              yield* Deferred.await(gate)
              const all = yield* Duplex.readAll(conn.duplex, 128 * MiB)
              yield* Deferred.succeed(received, all.byteLength)
            }).pipe(Effect.ignore))
          const conn = yield* small.dial(listener.addrs[0]!)
          // 32 MiB cannot fit in the kernel buffers plus a 256 KiB read buffer: the writer must be suspended
          const total = 32 * MiB
          const chunk = new Uint8Array(MiB)
          const writer = yield* Effect.forkChild(Effect.gen(function*() {
            for (let sent = 0; sent < total; sent += chunk.byteLength) yield* conn.duplex.write([chunk])
            yield* conn.duplex.closeWrite
          }))
          yield* Effect.sleep("500 millis")
          expect(writer.pollUnsafe()).toBeUndefined()
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(writer)
          expect(yield* Deferred.await(received)).toBe(total)
        }),
      60_000
    )

    it.live.skipIf(certificate === undefined)(
      "32 MiB each way at once through an echo over /wss (batches of 4 chunks), bytes intact",
      () =>
        Effect.gen(function*() {
          const listener = yield* wss.listen(ma("/ip4/127.0.0.1/tcp/0/wss"), echo)
          const conn = yield* wss.dial(listener.addrs[0]!)
          const data = randomBytes(32 * MiB)
          const started = performance.now()
          const writer = yield* Effect.forkChild(Effect.gen(function*() {
            for (let i = 0; i < data.length; i += 4 * 65536) {
              const batch: Array<Uint8Array> = []
              for (let j = i; j < Math.min(data.length, i + 4 * 65536); j += 65536) {
                batch.push(data.subarray(j, j + 65536))
              }
              yield* conn.duplex.write(batch)
            }
          }))
          // read everything back before closing: WebSocket has no half-close (the Close ends both directions)
          const back = yield* readExactly(conn.duplex, data.length)
          yield* Fiber.join(writer)
          yield* conn.duplex.closeWrite
          expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
          const ms = performance.now() - started
          expect(back.byteLength).toBe(data.length)
          expect(Buffer.compare(back, data)).toBe(0)
          console.error(`WebSocket.test: 32 MiB echo over /wss in ${ms.toFixed(0)} ms`)
        }),
      60_000
    )
  })
})
