/**
 * The Transport compliance suite: what every transport owes the upgrader,
 * whatever carries the bytes (libp2p connections spec §Definitions: dial and
 * listen give a reliable, ordered, bidirectional byte stream; and the
 * scoped-resource contract of src/transport/Transport.ts: a dialed connection
 * lives in its scope, a listener owns its handlers and accepted connections).
 *
 * Modelled on go-libp2p's `p2p/transport/testsuite` (`transport_suite.go`,
 * `stream_suite.go`): one call per transport,
 *
 *     transportSuite("tcp", { transport: Tcp.make(), listenAddr: Effect.succeed(ma("/ip4/127.0.0.1/tcp/0")), … })
 *
 * and the transport's own test file keeps only what is specific to it
 * (addressing, its wire format, timeouts, its error mapping, flow-control
 * options). A later transport (relay, QUIC …) inherits the suite the same way.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Ref, Scope } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import type * as Transport from "../../src/transport/Transport.ts"
import { dec, enc, equalBytes, MiB, pattern } from "../support/bytes.ts"
import { ma } from "../support/multiaddr.ts"
import { echo, eventually, PEER, readExactly } from "../support/transport.ts"

/** How the far end's read ends when a connection is reset: a clean EOF, or a DuplexError of that reason. */
export type AbortSeenAs = "EOF" | "Reset" | "Io"

export interface TransportSuiteOptions<T extends Transport.Transport> {
  readonly transport: T
  /** A fresh address to listen on (port 0, a new socket path …), made in the test's scope. */
  readonly listenAddr: Effect.Effect<Multiaddr.Multiaddr, never, Scope.Scope>
  /** `closeWrite` is a half-close, the other direction stays open (TCP, Unix, Memory; not WebSocket). */
  readonly halfClose: boolean
  /** What the far end's read may see when one end resets the connection. */
  readonly resetSeenAs: ReadonlyArray<AbortSeenAs>
  /** The listener's counters, when it has them: each must fall to 0 once its connections end. */
  readonly stats?: (
    listener: Effect.Success<ReturnType<T["listen"]>>
  ) => Effect.Effect<Readonly<Record<string, number>>>
  /** Active OS handles of the transport's sockets, when they can be counted: none may leak. */
  readonly handles?: () => number
  /** Sequential connections in the leak test (default 200). */
  readonly sequential?: number
  /**
   * Known departures from the Transport and Duplex contracts, asserted as they are so that a fix
   * shows up here (flip the flag with the fix). Each one is a bug.
   */
  readonly deviations?: {
    /** A write after `reset` fails with Closed, not Reset (Duplex.pair). */
    readonly writeAfterResetIsClosed?: true
    /** Closing a dialed connection's scope resets it instead of closing it (Memory: the pair's finalizer). */
    readonly scopeCloseResets?: true
  }
}

/** Every counter of `stats` set to `n`. */
const all = (stats: Readonly<Record<string, number>>, n: number) =>
  Object.fromEntries(Object.keys(stats).map((k) => [k, n]))

/** How a read ended: "EOF", or the reason of its DuplexError. */
const outcome = (exit: Exit.Exit<unknown, Duplex.DuplexError>): string =>
  Exit.isSuccess(exit) ? "EOF" : (Cause.squash(exit.cause) as Duplex.DuplexError).reason

export const transportSuite = <T extends Transport.Transport>(name: string, options: TransportSuiteOptions<T>) =>
  describe(`${name}: Transport compliance (connections spec §Definitions, Transport contract)`, () => {
    const { transport, listenAddr } = options
    type Listener = Effect.Success<ReturnType<T["listen"]>>
    const listen = (handler: Transport.Handler) =>
      Effect.flatMap(
        listenAddr,
        (addr) => transport.listen(addr, handler) as Effect.Effect<Listener, Transport.TransportError, Scope.Scope>
      )
    /** The listener's counters once all of them are 0 (as soon as they are). */
    const drained = (listener: Listener) =>
      options.stats === undefined ? Effect.void : Effect.gen(function*() {
        const stats = options.stats!(listener)
        const last = yield* eventually(stats, (s) => Object.values(s).every((n) => n === 0))
        expect(last).toEqual(all(last, 0))
      })

    describe("connections spec §Definitions: dial and listen give a reliable bidirectional channel", () => {
      it.live("bytes echo both ways; the dialer's remote address and the listener's local address are the bound one; a trailing /p2p is ignored", () =>
        Effect.gen(function*() {
          const accepted = yield* Deferred.make<Transport.RawConnection>()
          const listener = yield* listen((conn) => Deferred.succeed(accepted, conn).pipe(Effect.andThen(echo(conn))))
          expect(listener.addrs).toHaveLength(1)
          const bound = listener.addrs[0]!
          expect(transport.canDial(bound)).toBe(true)

          const conn = yield* transport.dial(bound)
          yield* conn.duplex.write([enc("hello "), enc("world")])
          expect(dec(yield* readExactly(conn.duplex, 11))).toBe("hello world")
          yield* conn.duplex.write([enc("again")])
          expect(dec(yield* readExactly(conn.duplex, 5))).toBe("again")
          expect(conn.remoteAddr.toString()).toBe(bound.toString())
          const server = yield* Deferred.await(accepted)
          expect(server.localAddr.toString()).toBe(bound.toString())

          const viaP2p = yield* transport.dial(Multiaddr.encapsulate(bound, ma(`/p2p/${PEER}`)))
          expect(viaP2p.remoteAddr.toString()).toBe(bound.toString())
          yield* viaP2p.duplex.write([enc("p")])
          expect(dec(yield* readExactly(viaP2p.duplex, 1))).toBe("p")

          yield* conn.duplex.closeWrite
          expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
        }))

      it.live("1 MiB each way at once through an echo, bytes intact", () =>
        Effect.gen(function*() {
          const listener = yield* listen(echo)
          const conn = yield* transport.dial(listener.addrs[0]!)
          const payload = pattern(MiB, 7)
          const writer = Effect.gen(function*() {
            for (let off = 0; off < payload.length; off += 64 * 1024) {
              yield* conn.duplex.write([payload.subarray(off, off + 64 * 1024)])
            }
          })
          const [, back] = yield* Effect.all([writer, readExactly(conn.duplex, payload.length)], { concurrency: 2 })
          expect(back.length).toBe(payload.length)
          expect(equalBytes(back, payload)).toBe(true)
        }))

      it.live("two concurrent reads on one connection both complete, and the bytes arrive once, in order", () =>
        Effect.gen(function*() {
          const listener = yield* listen(echo)
          const conn = yield* transport.dial(listener.addrs[0]!)
          const r1 = yield* Effect.forkChild(conn.duplex.read)
          const r2 = yield* Effect.forkChild(conn.duplex.read)
          yield* Effect.yieldNow
          yield* conn.duplex.write([enc("ab")])
          const done = Effect.sync(() => [r1.pollUnsafe(), r2.pollUnsafe()].filter((e) => e !== undefined).length)
          expect(yield* eventually(done, (n) => n >= 1)).toBe(1) // one read took "ab", the other still waits
          const [first, second] = r1.pollUnsafe() !== undefined ? [r1, r2] : [r2, r1]
          yield* conn.duplex.write([enc("cd")])
          expect(dec(Duplex.concat(yield* Fiber.join(first)))).toBe("ab")
          expect(dec(Duplex.concat(yield* Fiber.join(second)))).toBe("cd")
          yield* conn.duplex.closeWrite
          expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true)
        }))

      it.live("listening on an address in use is a typed AddressInUse error", () =>
        Effect.gen(function*() {
          const first = yield* listen(echo)
          const err = yield* Effect.flip(transport.listen(first.addrs[0]!, echo))
          expect(err._tag).toBe("TransportError")
          expect(err.reason).toBe("AddressInUse")
        }))

      it.live("a dial to an address nobody listens on any more is a typed Refused error", () =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const listener = yield* Scope.provide(listen(echo), scope)
          const addr = listener.addrs[0]!
          yield* Scope.close(scope, Exit.void) // nothing listens there any more
          const err = yield* Effect.flip(transport.dial(addr))
          expect(err._tag).toBe("TransportError")
          expect(err.reason).toBe("Refused")
          expect(err.address).toBe(addr.toString())
        }))
    })

    if (options.halfClose) {
      describe("half-close: closeWrite ends one direction, the other stays open", () => {
        it.live("closeWrite → the other side reads EOF and can still write back", () =>
          Effect.gen(function*() {
            const serverSaw = yield* Deferred.make<string>()
            const listener = yield* listen((conn) =>
              Effect.gen(function*() {
                const request = yield* Duplex.readAll(conn.duplex, 1024) // to EOF
                yield* Deferred.succeed(serverSaw, dec(request))
                // our write side is still open after the remote's closeWrite
                yield* conn.duplex.write([enc("reply to "), request])
                yield* conn.duplex.closeWrite
              }).pipe(Effect.ignore)
            )
            const conn = yield* transport.dial(listener.addrs[0]!)
            yield* conn.duplex.write([enc("request")])
            yield* conn.duplex.closeWrite
            yield* conn.duplex.closeWrite // idempotent
            expect(yield* Deferred.await(serverSaw)).toBe("request")
            expect(dec(yield* Duplex.readAll(conn.duplex, 1024))).toBe("reply to request")
            expect(Duplex.isEOF(yield* conn.duplex.read)).toBe(true) // EOF stays EOF
            const err = yield* Effect.flip(conn.duplex.write([enc("late")]))
            expect(err.reason).toBe("Closed")
          }))
      })
    }

    describe("reset aborts both directions", () => {
      it.live(`the dialer resets → its own reads and writes fail with Reset at once; the listener's read ends (${options.resetSeenAs.join(" or ")})`, () =>
        Effect.gen(function*() {
          const ready = yield* Deferred.make<void>()
          const seen = yield* Deferred.make<Exit.Exit<Uint8Array, Duplex.DuplexError>>()
          const listener = yield* listen((conn) =>
            Effect.gen(function*() {
              yield* Deferred.succeed(ready, undefined)
              yield* Deferred.succeed(seen, yield* Effect.exit(Duplex.readAll(conn.duplex, MiB)))
            })
          )
          const conn = yield* transport.dial(listener.addrs[0]!)
          yield* Deferred.await(ready)
          yield* conn.duplex.write([enc("partial")])
          yield* Effect.sleep("50 millis")
          yield* conn.duplex.reset
          yield* conn.duplex.reset // idempotent
          expect((yield* Effect.flip(conn.duplex.read)).reason).toBe("Reset")
          expect((yield* Effect.flip(conn.duplex.write([enc("x")]))).reason).toBe(
            options.deviations?.writeAfterResetIsClosed ? "Closed" : "Reset"
          )
          expect(options.resetSeenAs).toContain(outcome(yield* Deferred.await(seen)))
        }))

      it.live(`the listener resets → the dialer reads the bytes sent before it, then its read ends (${options.resetSeenAs.join(" or ")})`, () =>
        Effect.gen(function*() {
          const listener = yield* listen((conn) =>
            conn.duplex.write([enc("bye")]).pipe(
              Effect.andThen(Effect.sleep("50 millis")),
              Effect.andThen(conn.duplex.reset),
              Effect.andThen(Effect.never),
              Effect.ignore
            )
          )
          const conn = yield* transport.dial(listener.addrs[0]!)
          expect(dec(yield* readExactly(conn.duplex, 3))).toBe("bye")
          const rest = yield* Effect.exit(Duplex.readAll(conn.duplex, 1024))
          expect(options.resetSeenAs).toContain(outcome(rest))
        }))
    })

    describe("Transport contract: scoped ownership", () => {
      it.live("closing the listener's scope interrupts handlers and closes every accepted connection", () =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const started = yield* Ref.make(0)
          const interrupted = yield* Ref.make(0)
          const listener = yield* Scope.provide(
            listen(() =>
              Ref.update(started, (n) => n + 1).pipe(
                Effect.andThen(Effect.never),
                Effect.onInterrupt(() => Ref.update(interrupted, (n) => n + 1))
              )
            ),
            scope
          )
          const a = yield* transport.dial(listener.addrs[0]!)
          const b = yield* transport.dial(listener.addrs[0]!)
          yield* eventually(Ref.get(started), (n) => n === 2)
          if (options.stats !== undefined) {
            const stats = yield* options.stats(listener)
            expect(stats).toEqual(all(stats, 2))
          }
          yield* Scope.close(scope, Exit.void)
          expect(yield* Ref.get(interrupted)).toBe(2)
          // the remote ends see the connection end (EOF, or an error) — never silence
          for (const conn of [a, b]) {
            const r = yield* Effect.exit(conn.duplex.read)
            expect(Exit.isSuccess(r) ? Duplex.isEOF(r.value) : true).toBe(true)
          }
          yield* drained(listener)
          // and nothing is accepted any more
          expect((yield* Effect.flip(transport.dial(listener.addrs[0]!))).reason).toBe("Refused")
        }))

      it.live("closing a dialed connection's scope closes it (the remote reads the bytes, then EOF)", () =>
        Effect.gen(function*() {
          const seen = yield* Deferred.make<Exit.Exit<Uint8Array, Duplex.DuplexError>>()
          const listener = yield* listen((conn) =>
            Effect.exit(Duplex.readAll(conn.duplex, 1024)).pipe(Effect.flatMap((e) => Deferred.succeed(seen, e)))
          )
          const scope = yield* Scope.make()
          const conn = yield* Scope.provide(transport.dial(listener.addrs[0]!), scope)
          yield* conn.duplex.write([enc("bye")])
          yield* Scope.close(scope, Exit.void)
          const exit = yield* Deferred.await(seen)
          if (options.deviations?.scopeCloseResets) {
            expect(outcome(exit)).toBe("Reset")
            expect((yield* Effect.flip(conn.duplex.read)).reason).toBe("Reset")
          } else {
            expect(Exit.isSuccess(exit) && dec(exit.value)).toBe("bye")
            expect((yield* Effect.flip(conn.duplex.read)).reason).toBe("Closed")
          }
          expect((yield* Effect.flip(conn.duplex.write([enc("x")]))).reason).toBe("Closed")
          yield* drained(listener)
        }))

      it.live(
        `interrupted dials and ${
          options.sequential ?? 200
        } sequential connections leave no connection, fiber or socket behind`,
        () =>
          Effect.gen(function*() {
            const listener = yield* listen(echo)
            const addr = listener.addrs[0]!
            const before = options.handles?.()
            for (let i = 0; i < 50; i++) {
              const fiber = yield* Effect.forkChild(Effect.scoped(transport.dial(addr)))
              if (i % 3 === 1) yield* Effect.yieldNow
              if (i % 3 === 2) yield* Effect.sleep("2 millis")
              yield* Fiber.interrupt(fiber)
            }
            for (let i = 0; i < (options.sequential ?? 200); i++) {
              yield* Effect.scoped(Effect.gen(function*() {
                const conn = yield* transport.dial(addr)
                yield* conn.duplex.write([Uint8Array.of(i & 0xff)])
                const got = yield* readExactly(conn.duplex, 1)
                if (got[0] !== (i & 0xff)) return yield* Effect.fail(`connection ${i}: wrong byte`)
              }))
            }
            yield* drained(listener)
            if (options.handles !== undefined && before !== undefined) {
              const handles = options.handles
              expect(yield* eventually(Effect.sync(handles), (n) => n <= before)).toBeLessThanOrEqual(before)
            }
          }),
        120_000
      )

      it.live("a handler that dies or is interrupted does not stop the listener", () =>
        Effect.gen(function*() {
          const count = yield* Ref.make(0)
          const listener = yield* listen((conn) =>
            Ref.getAndUpdate(count, (n) => n + 1).pipe(
              Effect.flatMap((n) => n === 0 ? Effect.die("handler bug") : n === 1 ? Effect.interrupt : echo(conn))
            )
          )
          for (let i = 0; i < 2; i++) {
            const conn = yield* transport.dial(listener.addrs[0]!)
            // its connection is closed when the handler ends
            const r = yield* Effect.exit(conn.duplex.read)
            expect(Exit.isSuccess(r) ? Duplex.isEOF(r.value) : true).toBe(true)
          }
          const conn = yield* transport.dial(listener.addrs[0]!)
          yield* conn.duplex.write([enc("still here")])
          expect(dec(yield* readExactly(conn.duplex, 10))).toBe("still here")
        }))
    })
  })
