/**
 * `host.onConnection`: a handler that runs in every connection's scope
 * (rust's `handle_established_*_connection`), for inbound and outbound
 * connections, for those open when it is registered, interrupted when the
 * connection closes or the registration ends, and harmless when it fails.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope, Stream } from "effect"
import type * as Connection from "../../src/connection/Connection.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { memoryNode } from "../support/node.ts"

/** A handler that records every connection it runs for. */
const recorder = () => {
  const seen: Array<Connection.Connection> = []
  const handler = (conn: Connection.Connection) => Effect.sync(() => void seen.push(conn))
  return { seen, handler }
}

describe("host.onConnection", () => {
  it.live("runs for outbound and inbound connections, started before dial returns the connection", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const onA = recorder()
      const inbound = yield* Deferred.make<Connection.Connection>()
      yield* a.host.onConnection(onA.handler)
      yield* b.host.onConnection((conn) => Deferred.succeed(inbound, conn))
      const conn = yield* a.host.dial(b.addr)
      // started with the connection: already ran when dial hands it out
      expect(onA.seen).toEqual([conn])
      expect(conn.direction).toBe("outbound")
      const theirs = yield* Deferred.await(inbound)
      expect(theirs.direction).toBe("inbound")
      expect(PeerId.equals(theirs.remotePeer, a.host.peerId)).toBe(true)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("runs for connections already open when it is registered; stops starting once its scope closes", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const c = yield* memoryNode()
      const first = yield* a.host.dial(b.addr)
      const registration = yield* Scope.make()
      const onA = recorder()
      yield* Scope.provide(a.host.onConnection(onA.handler), registration)
      expect(onA.seen).toEqual([first])
      yield* Scope.close(registration, Exit.void)
      const second = yield* a.host.dial(c.addr)
      expect(a.host.connections()).toContain(second)
      expect(onA.seen).toEqual([first])
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("a run is interrupted when its connection closes, and what it acquired in its scope is released", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const started = yield* Deferred.make<void>()
      const interrupted = yield* Deferred.make<void>()
      const released = yield* Deferred.make<void>()
      yield* a.host.onConnection(() =>
        Effect.gen(function*() {
          yield* Effect.addFinalizer(() => Deferred.succeed(released, undefined))
          yield* Deferred.succeed(started, undefined)
          yield* Effect.never
        }).pipe(Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined)))
      )
      const conn = yield* a.host.dial(b.addr)
      yield* Deferred.await(started)
      expect(yield* Deferred.isDone(interrupted)).toBe(false)
      yield* conn.close
      yield* Deferred.await(interrupted).pipe(Effect.timeout("5 seconds"))
      yield* Deferred.await(released).pipe(Effect.timeout("5 seconds"))
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("a run still going is interrupted when the registration ends; the connection stays open", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const interrupted = yield* Deferred.make<void>()
      const registration = yield* Scope.make()
      yield* Scope.provide(
        a.host.onConnection(() => Effect.onInterrupt(Effect.never, () => Deferred.succeed(interrupted, undefined))),
        registration
      )
      const conn = yield* a.host.dial(b.addr)
      yield* Scope.close(registration, Exit.void)
      expect(yield* Deferred.isDone(interrupted)).toBe(true)
      expect(conn.isClosed()).toBe(false)
      expect(yield* a.ping.ping(b.host.peerId, { count: 1 })).toHaveLength(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("a handler that fails, dies or throws does not take the connection or the node down", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      yield* a.host.onConnection(() => Effect.die(new Error("boom")))
      yield* a.host.onConnection(() => {
        throw new Error("thrown while building the effect")
      })
      yield* b.host.onConnection(() => Effect.andThen(Effect.sleep("10 millis"), Effect.die("late defect")))
      const ran = yield* Deferred.make<void>()
      // the other handlers still run
      yield* a.host.onConnection(() => Deferred.succeed(ran, undefined))
      const conn = yield* a.host.dial(b.addr)
      yield* Deferred.await(ran)
      yield* Effect.sleep("50 millis")
      expect(conn.isClosed()).toBe(false)
      expect(yield* a.ping.ping(b.host.peerId, { count: 2 })).toHaveLength(2)
      expect(yield* b.ping.ping(a.host.peerId, { count: 1 })).toHaveLength(1)
    }).pipe(Effect.provide(Memory.layerNetwork)))

  it.live("identify runs from onConnection: one result per open connection, kept while it is open, dropped when it closes", () =>
    Effect.gen(function*() {
      const a = yield* memoryNode()
      const b = yield* memoryNode()
      const conn = yield* a.host.dial(b.addr)
      const first = yield* a.identify.identify(conn)
      expect(PeerId.equals(first.peerId, b.host.peerId)).toBe(true)
      // the run started with the connection: asking again is the same result, not a second run
      expect(yield* a.identify.identify(conn)).toBe(first)
      // the connection's bookkeeping is released (ConnectionClose) after `close` returns
      const events = yield* a.host.subscribe
      yield* conn.close
      yield* events.pipe(Stream.filter((e) => e._tag === "ConnectionClose"), Stream.runHead)
      const error = yield* Effect.flip(a.identify.identify(conn))
      expect(error._tag === "ConnectionError" && error.reason).toBe("Closed")
    }).pipe(Effect.provide(Memory.layerNetwork)))
})
