/**
 * Properties of the ResourceManager's accounting (go-libp2p resource manager
 * model: every reservation is charged to each scope it touches, all or
 * nothing, and given back when its scope closes):
 *
 * for any sequence of connection/stream opens, peer and protocol assignments,
 * memory reservations and scope closes —
 * - no scope's usage is ever negative, nor above its limit;
 * - the system scope holds exactly what the live reservations add up to;
 * - once every scope has closed, every counter is back to zero and no peer or
 *   protocol scope is left behind.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import { fakePeer } from "../../spec-tests/support/connection.ts"
import * as ResourceManager from "../../src/connection/ResourceManager.ts"
import type * as PeerId from "../../src/core/PeerId.ts"

type Dir = "inbound" | "outbound"

type Op =
  | { readonly op: "openConn"; readonly dir: Dir }
  | { readonly op: "setPeer"; readonly conn: number; readonly peer: number }
  | { readonly op: "connMemory"; readonly conn: number; readonly bytes: number }
  | { readonly op: "openStream"; readonly conn: number; readonly dir: Dir }
  | { readonly op: "setProtocol"; readonly stream: number; readonly protocol: number }
  | { readonly op: "streamMemory"; readonly stream: number; readonly bytes: number }
  | { readonly op: "closeConn"; readonly conn: number }
  | { readonly op: "closeStream"; readonly stream: number }
  | { readonly op: "closeMemory"; readonly index: number }

const dir = fc.constantFrom<Dir>("inbound", "outbound")
const idx = fc.nat({ max: 15 })
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant("openConn" as const), dir }),
  fc.record({ op: fc.constant("setPeer" as const), conn: idx, peer: fc.nat({ max: 2 }) }),
  fc.record({ op: fc.constant("connMemory" as const), conn: idx, bytes: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ op: fc.constant("openStream" as const), conn: idx, dir }),
  fc.record({ op: fc.constant("openStream" as const), conn: idx, dir }),
  fc.record({ op: fc.constant("setProtocol" as const), stream: idx, protocol: fc.nat({ max: 2 }) }),
  fc.record({ op: fc.constant("streamMemory" as const), stream: idx, bytes: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ op: fc.constant("closeConn" as const), conn: idx }),
  fc.record({ op: fc.constant("closeStream" as const), stream: idx }),
  fc.record({ op: fc.constant("closeMemory" as const), index: idx })
)

/** Small limits, so that refusals happen often. */
const limits: ResourceManager.Limits = {
  system: {
    connectionsInbound: 6,
    connectionsOutbound: 5,
    connections: 9,
    streamsInbound: 12,
    streams: 18,
    memory: 3000
  },
  transient: { connectionsInbound: 3, connectionsOutbound: 2, streamsInbound: 4, streamsOutbound: 3, memory: 800 },
  peer: { connectionsInbound: 2, connectionsOutbound: 2, streamsInbound: 5, memory: 1500 },
  protocol: { streamsInbound: 4, streamsOutbound: 3, memory: 1000 },
  connection: { streamsInbound: 3, streamsOutbound: 2, memory: 700 },
  stream: { memory: 500 }
}

const usageFields = [
  "connectionsInbound",
  "connectionsOutbound",
  "streamsInbound",
  "streamsOutbound",
  "memory"
] as const

const checkBounds = (u: ResourceManager.Usage, limit: ResourceManager.ResolvedLimit, where: string) => {
  for (const f of usageFields) {
    expect(u[f], `${where}.${f}`).toBeGreaterThanOrEqual(0)
    expect(u[f], `${where}.${f}`).toBeLessThanOrEqual(limit[f])
  }
  expect(u.connectionsInbound + u.connectionsOutbound).toBeLessThanOrEqual(limit.connections)
  expect(u.streamsInbound + u.streamsOutbound).toBeLessThanOrEqual(limit.streams)
}

interface LiveConn {
  readonly scope: Scope.Closeable
  readonly rc: ResourceManager.ConnectionScope
  readonly dir: Dir
  open: boolean
}
interface LiveStream {
  readonly scope: Scope.Closeable
  readonly rs: ResourceManager.StreamScope
  readonly dir: Dir
  open: boolean
}
interface LiveMemory {
  readonly scope: Scope.Closeable
  readonly bytes: number
  open: boolean
}

const run = (ops: ReadonlyArray<Op>, peers: ReadonlyArray<PeerId.PeerId>) =>
  Effect.gen(function*() {
    const rm = ResourceManager.make(limits)
    const conns: Array<LiveConn> = []
    const streams: Array<LiveStream> = []
    const memory: Array<LiveMemory> = []
    const protocols = ["/a", "/b", "/c"]
    let refusals = 0

    /** The effect's value in a box, or undefined when a limit refused it. */
    const attempt = <A>(effect: Effect.Effect<A, ResourceManager.LimitExceeded>) =>
      Effect.map(Effect.result(effect), (r) => {
        if (r._tag === "Failure") {
          refusals++
          expect(r.failure._tag).toBe("LimitExceeded")
          return undefined
        }
        return { value: r.success }
      })

    const check = () => {
      const stats = rm.stats()
      checkBounds(stats.system, rm.limits.system, "system")
      checkBounds(stats.transient, rm.limits.transient, "transient")
      for (const [k, u] of stats.peers) {
        checkBounds(u, rm.limits.peer(peers.find((p) => p.toString() === k)!), `peer ${k}`)
      }
      for (const [k, u] of stats.protocols) checkBounds(u, rm.limits.protocol(k), `protocol ${k}`)
      // the system holds exactly the live reservations
      const live = (d: Dir, xs: ReadonlyArray<{ readonly dir: Dir; readonly open: boolean }>) =>
        xs.filter((x) => x.open && x.dir === d).length
      expect(stats.system.connectionsInbound).toBe(live("inbound", conns))
      expect(stats.system.connectionsOutbound).toBe(live("outbound", conns))
      expect(stats.system.streamsInbound).toBe(live("inbound", streams))
      expect(stats.system.streamsOutbound).toBe(live("outbound", streams))
      expect(stats.system.memory).toBe(memory.filter((m) => m.open).reduce((n, m) => n + m.bytes, 0))
      expect(stats.connections).toBe(conns.filter((c) => c.open).length)
      expect(stats.streams).toBe(streams.filter((s) => s.open).length)
    }

    for (const o of ops) {
      switch (o.op) {
        case "openConn": {
          const scope = yield* Scope.make()
          const rc = yield* attempt(Scope.provide(rm.openConnection(o.dir), scope))
          if (rc !== undefined) conns.push({ scope, rc: rc.value, dir: o.dir, open: true })
          else yield* Scope.close(scope, Exit.void)
          break
        }
        case "setPeer": {
          const c = conns[o.conn]
          if (c?.open === true) yield* attempt(c.rc.setPeer(peers[o.peer]!))
          break
        }
        case "connMemory": {
          const c = conns[o.conn]
          if (c?.open !== true) break
          const scope = yield* Scope.make()
          const ok = yield* attempt(Scope.provide(c.rc.reserveMemory(o.bytes), scope))
          // memory reserved in its own scope, which we may close at any time
          if (ok !== undefined) memory.push({ scope, bytes: o.bytes, open: true })
          break
        }
        case "openStream": {
          const c = conns[o.conn]
          if (c?.open !== true) break
          const scope = yield* Scope.make()
          const rs = yield* attempt(Scope.provide(c.rc.openStream(o.dir), scope))
          if (rs !== undefined) streams.push({ scope, rs: rs.value, dir: o.dir, open: true })
          break
        }
        case "setProtocol": {
          const s = streams[o.stream]
          if (s?.open === true) yield* attempt(s.rs.setProtocol(protocols[o.protocol]!))
          break
        }
        case "streamMemory": {
          const s = streams[o.stream]
          if (s?.open !== true) break
          const scope = yield* Scope.make()
          const ok = yield* attempt(Scope.provide(s.rs.reserveMemory(o.bytes), scope))
          if (ok !== undefined) memory.push({ scope, bytes: o.bytes, open: true })
          break
        }
        case "closeConn": {
          const c = conns[o.conn]
          if (c?.open !== true) break
          c.open = false
          yield* Scope.close(c.scope, Exit.void)
          break
        }
        case "closeStream": {
          const s = streams[o.stream]
          if (s?.open !== true) break
          s.open = false
          yield* Scope.close(s.scope, Exit.void)
          break
        }
        case "closeMemory": {
          const m = memory[o.index]
          if (m?.open !== true) break
          m.open = false
          yield* Scope.close(m.scope, Exit.void)
          break
        }
      }
      check()
    }
    // close everything that is left, in a random-ish order (streams and memory outliving their connection)
    for (const c of conns) {
      if (!c.open) continue
      c.open = false
      yield* Scope.close(c.scope, Exit.void)
    }
    check()
    for (const m of memory) {
      if (!m.open) continue
      m.open = false
      yield* Scope.close(m.scope, Exit.void)
    }
    for (const s of streams) {
      if (!s.open) continue
      s.open = false
      yield* Scope.close(s.scope, Exit.void)
    }
    const stats = rm.stats()
    const zero = { connectionsInbound: 0, connectionsOutbound: 0, streamsInbound: 0, streamsOutbound: 0, memory: 0 }
    expect(stats.system).toEqual(zero)
    expect(stats.transient).toEqual(zero)
    expect(stats.peers.size).toBe(0)
    expect(stats.protocols.size).toBe(0)
    expect([stats.connections, stats.streams]).toEqual([0, 0])
    return refusals
  })

describe("resource manager (properties)", () => {
  it.effect("reservations never go negative or over a limit, match the live scopes, and return to zero once every scope has closed", () =>
    Effect.gen(function*() {
      const peers = yield* Effect.forEach([1, 2, 3], () => Effect.map(fakePeer, (p) => p.peerId))
      let refused = 0
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(fc.array(op, { minLength: 10, maxLength: 80, size: "max" }), async (ops) => {
            refused += await Effect.runPromise(run(ops, peers))
          }),
          { numRuns: 300 }
        )
      )
      // the limits were exercised, not just the happy path
      expect(refused).toBeGreaterThan(0)
    }))
})
