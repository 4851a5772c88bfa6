/**
 * The Unix domain socket transport over real sockets in a temporary directory
 * (`it.live`): the connections spec's raw transport connection (§Definitions:
 * dial / listen, a reliable bidirectional channel), `/unix` addressing
 * (multiaddr protocols table: `unix` is a path protocol; both the spec's
 * `/unix/tmp/x.sock` and js-libp2p's `/unix/%2Ftmp%2Fx.sock` forms),
 * half-close (`shutdown(SHUT_WR)`), reset, the socket file's lifecycle (removed
 * with the listener; a stale file left by a killed process is replaced; a live
 * listener's socket is never taken over) and the scoped-resource contract of
 * `Transport.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Result, Scope } from "effect"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import * as Unix from "../../src/transport/Unix.ts"
import { dec, enc } from "../support/bytes.ts"
import { ma } from "../support/multiaddr.ts"
import { activeHandles, echo, PEER, readExactly } from "../support/transport.ts"
import { transportSuite } from "./compliance.ts"

const unix = Unix.make()

/** A fresh temporary directory for the test's socket files, removed with the test's scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "unix-test-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** `/unix/<path>` in the spec's form (`/unix/tmp/…/x.sock`). */
const specAddr = (path: string) => ma(`/unix${path}`)
/** `/unix/<path>` in js-libp2p's form (`/unix/%2Ftmp%2F…%2Fx.sock`). */
const jsAddr = (path: string) => ma(`/unix/${encodeURIComponent(path)}`)

transportSuite("unix", {
  transport: unix,
  listenAddr: Effect.map(tempDir, (dir) => specAddr(Path.join(dir, "suite.sock"))),
  halfClose: true, // shutdown(SHUT_WR)
  resetSeenAs: ["EOF", "Reset", "Io"], // a Unix socket has no RST: the remote may see a plain end
  stats: (listener) => listener.stats,
  handles: activeHandles("PipeWrap"),
  sequential: 300
})

const isSocketFile = (path: string): boolean => {
  try {
    return Fs.lstatSync(path).isSocket()
  } catch {
    return false
  }
}

/** A plain node:net server on `path` answering every connection with "raw", closed with the scope. */
const rawServer = (path: string) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server, Error>((resume) => {
      const srv = Net.createServer((s) => {
        s.on("error", () => {})
        s.end("raw")
      })
      srv.once("error", (e) => resume(Effect.fail(e)))
      srv.listen(path, () => resume(Effect.succeed(srv)))
    }),
    (srv) => Effect.callback<void>((resume) => void srv.close(() => resume(Effect.void)))
  )

/**
 * What a crashed listener leaves behind: a child Node process listens on
 * `path` and is killed with SIGKILL, so nothing removes its socket file.
 */
const staleSocketFile = (path: string) =>
  Effect.callback<void, string>((resume) => {
    const code = `require("node:net").createServer().listen(${
      JSON.stringify(path)
    }, () => process.stdout.write("up\\n"))`
    const child = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] })
    child.stdout.once("data", () => child.kill("SIGKILL"))
    child.once(
      "exit",
      (_code, signal) =>
        resume(signal === "SIGKILL" ? Effect.void : Effect.fail(`child exited without being killed (${signal})`))
    )
    child.once("error", (e) => resume(Effect.fail(e.message)))
  })

describe("Unix transport", () => {
  describe("multiaddr protocols table (unix: a path protocol): which addresses it handles", () => {
    it("dials /unix/<path> with an optional /p2p suffix in both string forms, listens on /unix/<path> only", () => {
      expect(unix.canDial(ma("/unix/tmp/x.sock"))).toBe(true)
      expect(unix.canDial(ma("/unix/%2Ftmp%2Fx.sock"))).toBe(true)
      expect(unix.canDial(ma(`/unix/%2Ftmp%2Fx.sock/p2p/${PEER}`))).toBe(true)
      expect(unix.canDial(ma("/ip4/127.0.0.1/tcp/1"))).toBe(false)
      expect(unix.canDial(ma("/unix/%2Ftmp%2Fx.sock/ws"))).toBe(false)
      expect(unix.canDial(ma(`/unix/%2Ftmp%2Fx.sock/p2p/${PEER}/p2p-circuit`))).toBe(false)
      expect(unix.canListen(ma("/unix/tmp/x.sock"))).toBe(true)
      expect(unix.canListen(ma("/unix/%2Ftmp%2Fx.sock"))).toBe(true)
      expect(unix.canListen(ma(`/unix/%2Ftmp%2Fx.sock/p2p/${PEER}`))).toBe(false)
      expect(unix.canListen(ma("/ip4/127.0.0.1/tcp/0"))).toBe(false)
      // both forms name the same path, and fromPath makes that multiaddr
      expect(Multiaddr.equals(ma("/unix/tmp/x.sock"), ma("/unix/%2Ftmp%2Fx.sock"))).toBe(true)
      const fromPath = Unix.fromPath("/tmp/a b.sock")
      expect(Result.isSuccess(fromPath) && fromPath.success.components[0]!.value).toBe("/tmp/a b.sock")
    })

    it.live("an address it does not handle is a typed Unsupported error (dial and listen)", () =>
      Effect.gen(function*() {
        const d = yield* Effect.flip(unix.dial(ma("/ip4/127.0.0.1/tcp/1")))
        expect(d._tag).toBe("TransportError")
        expect(d.reason).toBe("Unsupported")
        const l = yield* Effect.flip(unix.listen(ma(`/unix/%2Ftmp%2Fx.sock/p2p/${PEER}`), () => Effect.void))
        expect(l.reason).toBe("Unsupported")
      }))
  })

  describe("connections spec §Definitions: dial and listen give a reliable bidirectional channel", () => {
    it.live("echo both ways; the js form and the spec form reach the same listener; /p2p is ignored", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const path = Path.join(dir, "echo.sock")
        const accepted = yield* Deferred.make<Transport.RawConnection>()
        const listener = yield* unix.listen(
          jsAddr(path),
          (conn) => Deferred.succeed(accepted, conn).pipe(Effect.andThen(echo(conn)))
        )
        expect(listener.addrs.map((a) => a.toString())).toEqual([`/unix${path}`])
        expect(listener.path).toBe(path)
        expect(isSocketFile(path)).toBe(true)

        const conn = yield* unix.dial(specAddr(path))
        yield* conn.duplex.write([enc("hello "), enc("world")])
        expect(dec(yield* readExactly(conn.duplex, 11))).toBe("hello world")
        yield* conn.duplex.write([enc("again")])
        expect(dec(yield* readExactly(conn.duplex, 5))).toBe("again")
        expect(conn.remoteAddr.toString()).toBe(`/unix${path}`)
        const server = yield* Deferred.await(accepted)
        expect(server.localAddr.toString()).toBe(`/unix${path}`)

        const viaP2p = yield* unix.dial(ma(`/unix/${encodeURIComponent(path)}/p2p/${PEER}`))
        expect(viaP2p.remoteAddr.toString()).toBe(`/unix${path}`)
        yield* viaP2p.duplex.write([enc("p")])
        expect(dec(yield* readExactly(viaP2p.duplex, 1))).toBe("p")

        yield* conn.duplex.closeWrite
        expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
      }))
  })

  describe("reset: aborts both directions (a Unix socket has no RST: the remote sees the end)", () => {
    it.live("the listener resets → the dialer's read ends, and its writes then fail (EPIPE → Reset)", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const path = Path.join(dir, "reset2.sock")
        yield* unix.listen(specAddr(path), (conn) =>
          Effect.gen(function*() {
            yield* readExactly(conn.duplex, 1)
            yield* conn.duplex.reset
          }).pipe(Effect.ignore))
        const conn = yield* unix.dial(specAddr(path))
        yield* conn.duplex.write([enc("x")])
        // Node reads in flowing mode, so the kernel never holds unread bytes at the reset and
        // the dialer sees a plain end (EOF) or an error: never a hang.
        const r = yield* Effect.exit(Duplex.readAll(conn.duplex, 1024))
        if (Exit.isFailure(r)) expect(["Reset", "Io"]).toContain((Cause.squash(r.cause) as Duplex.DuplexError).reason)
        // writing to a Unix socket whose peer is gone is EPIPE: the write side fails too
        let failed: Duplex.DuplexError | undefined
        for (let i = 0; i < 100 && failed === undefined; i++) {
          const w = yield* Effect.exit(conn.duplex.write([enc("more")]))
          if (Exit.isFailure(w)) failed = Cause.squash(w.cause) as Duplex.DuplexError
          else yield* Effect.sleep("5 millis")
        }
        expect(failed?.reason).toBe("Reset")
      }))
  })

  describe("socket file lifecycle: removed with the listener, stale files replaced, live ones kept", () => {
    it.live("closing the listener's scope removes the socket file; the path is then refused and can be listened on again", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const path = Path.join(dir, "scoped.sock")
        const scope = yield* Scope.make()
        yield* Scope.provide(unix.listen(specAddr(path), echo), scope)
        expect(isSocketFile(path)).toBe(true)
        yield* Scope.close(scope, Exit.void)
        expect(Fs.existsSync(path)).toBe(false)
        // nothing there any more: a typed refusal, and the path can be listened on again
        expect((yield* Effect.flip(unix.dial(specAddr(path)))).reason).toBe("Refused")
        const again = yield* unix.listen(specAddr(path), echo)
        expect(again.path).toBe(path)
      }))

    it.live(
      "a stale socket file left by a killed process is detected (refused), removed, and listened on",
      () =>
        Effect.gen(function*() {
          const dir = yield* tempDir
          const path = Path.join(dir, "stale.sock")
          yield* staleSocketFile(path)
          expect(isSocketFile(path)).toBe(true)
          const refused = yield* Effect.flip(unix.dial(specAddr(path)))
          expect(refused.reason).toBe("Refused") // ECONNREFUSED: a socket file nobody listens on
          yield* unix.listen(specAddr(path), echo)
          const conn = yield* unix.dial(specAddr(path))
          yield* conn.duplex.write([enc("fresh")])
          expect(dec(yield* readExactly(conn.duplex, 5))).toBe("fresh")
        }),
      20_000
    )

    it.live("a live listener's socket is not taken over: AddressInUse, and it keeps serving", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const path = Path.join(dir, "live.sock")
        yield* rawServer(path)
        const err = yield* Effect.flip(unix.listen(specAddr(path), echo))
        expect(err._tag).toBe("TransportError")
        expect(err.reason).toBe("AddressInUse")
        expect(isSocketFile(path)).toBe(true)
        // the other listener still answers on its file
        const conn = yield* unix.dial(specAddr(path))
        expect(dec(yield* Duplex.readAll(conn.duplex, 16))).toBe("raw")
        // our own listener is not taken over either
        const ours = Path.join(dir, "ours.sock")
        yield* unix.listen(specAddr(ours), echo)
        expect((yield* Effect.flip(unix.listen(jsAddr(ours), echo))).reason).toBe("AddressInUse")
        const c2 = yield* unix.dial(specAddr(ours))
        yield* c2.duplex.write([enc("ok")])
        expect(dec(yield* readExactly(c2.duplex, 2))).toBe("ok")
      }))

    it.live("a path that is not a socket is never removed: AddressInUse", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const path = Path.join(dir, "file.sock")
        Fs.writeFileSync(path, "precious")
        const err = yield* Effect.flip(unix.listen(specAddr(path), echo))
        expect(err.reason).toBe("AddressInUse")
        expect(Fs.readFileSync(path, "utf8")).toBe("precious")
      }))
  })

  describe("connections spec §Definitions: a refused dial is a typed error", () => {
    it.live("no socket file (ENOENT) and a socket nobody listens on (ECONNREFUSED) → TransportError Refused", () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const missing = specAddr(Path.join(dir, "missing.sock"))
        const e1 = yield* Effect.flip(unix.dial(missing))
        expect(e1._tag).toBe("TransportError")
        expect(e1.reason).toBe("Refused")
        expect(e1.address).toBe(missing.toString())
        // a socket file whose listener is gone: a hard link keeps the inode after the listener removes its name
        const live = Path.join(dir, "live.sock")
        const orphan = Path.join(dir, "orphan.sock")
        yield* Effect.scoped(Effect.gen(function*() {
          yield* unix.listen(specAddr(live), echo)
          Fs.linkSync(live, orphan)
        }))
        expect(isSocketFile(orphan)).toBe(true)
        const e2 = yield* Effect.flip(unix.dial(specAddr(orphan)))
        expect(e2.reason).toBe("Refused")
        expect(e2.message).toContain("ECONNREFUSED")
      }))
  })
})
