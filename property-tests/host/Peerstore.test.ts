/**
 * The Peerstore's bounds hold after any sequence of operations: at most
 * `maxPeers` peers, or the connected and protected ones and one more; a
 * connected or protected peer is never evicted; at most `maxAddrsPerPeer`
 * addresses per peer; and the Datastore-backed store, reopened, holds exactly
 * what the live one held.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import fc from "fast-check"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Datastore from "../../src/datastore/Datastore.ts"
import * as MemoryStore from "../../src/datastore/Memory.ts"
import * as Peerstore from "../../src/host/Peerstore.ts"

const PEERS = 10
const MAX_PEERS = 4
const MAX_ADDRS = 3

const peers = Effect.runSync(
  Effect.forEach(Array.from({ length: PEERS }), () => Effect.map(Keys.generate("Ed25519"), PeerId.fromPrivateKey))
)
const addr = (n: number) => {
  const r = Multiaddr.fromString(`/ip4/10.0.0.${n}/tcp/4001`)
  if (r._tag === "Failure") throw new Error("bad test address")
  return r.success
}

type Op =
  | { readonly op: "merge"; readonly peer: number; readonly addrs: ReadonlyArray<number> }
  | { readonly op: "connect" | "disconnect" | "protect" | "unprotect" | "remove"; readonly peer: number }
  | { readonly op: "certify"; readonly peer: number; readonly seq: number; readonly addrs: ReadonlyArray<number> }

const peer = fc.integer({ min: 0, max: PEERS - 1 })
const addrs = fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 5 })
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("merge" as const), peer, addrs }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom(
        "connect" as const,
        "disconnect" as const,
        "protect" as const,
        "unprotect" as const,
        "remove" as const
      ),
      peer
    })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("certify" as const), peer, seq: fc.nat(5), addrs }) }
)

const apply = (ps: Peerstore.Peerstore["Service"], o: Op) => {
  const id = peers[o.peer]!
  switch (o.op) {
    case "merge":
      return ps.merge(id, { addrs: o.addrs.map(addr) })
    case "connect":
      return ps.connected(id, { addr: addr(o.peer + 1) })
    case "disconnect":
      return ps.get(id)?.connected === true ? ps.disconnected(id) : Effect.void
    case "protect":
      return ps.protect(id, "t")
    case "unprotect":
      return ps.unprotect(id, "t")
    case "remove":
      return ps.get(id)?.connected === true ? Effect.void : ps.remove(id)
    case "certify":
      return ps.certify(id, BigInt(o.seq), o.addrs.map(addr))
  }
}

const view = (ps: Peerstore.Peerstore["Service"]) =>
  ps.all().map((p) => ({
    id: PeerId.toString(p.peerId),
    addrs: p.addrs.map(Multiaddr.toString).sort(),
    seq: p.recordSeq,
    protectedBy: p.protectedBy
  })).sort((a, b) => (a.id < b.id ? -1 : 1))

describe("Peerstore bounds (property)", () => {
  it.effect("cap, never evicting a connected or protected peer; address cap; reopen holds the same", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 60 }), (ops) =>
          Effect.runPromise(
            Effect.gen(function*() {
              const ds = yield* MemoryStore.make
              const scope = yield* Scope.make()
              const options = { maxPeers: MAX_PEERS, maxAddrsPerPeer: MAX_ADDRS }
              const ps = yield* Peerstore.makeDatastore(options).pipe(
                Effect.provideService(Datastore.Datastore, ds),
                Scope.provide(scope)
              )
              const pinned = new Set<number>()
              const connected = new Set<number>()
              const protectedPeers = new Set<number>()
              for (const o of ops) {
                yield* apply(ps, o)
                if (o.op === "connect") connected.add(o.peer)
                if (o.op === "disconnect") connected.delete(o.peer)
                if (o.op === "protect") {
                  protectedPeers.add(o.peer)
                }
                if (o.op === "unprotect" || (o.op === "remove" && !connected.has(o.peer))) protectedPeers.delete(o.peer)
                pinned.clear()
                for (const p of connected) pinned.add(p)
                for (const p of protectedPeers) pinned.add(p)
                expect(ps.size()).toBeLessThanOrEqual(Math.max(MAX_PEERS, pinned.size + 1))
                for (const p of pinned) expect(ps.get(peers[p]!)).toBeDefined()
                for (const info of ps.all()) expect(info.addrEntries.length).toBeLessThanOrEqual(MAX_ADDRS)
              }
              const before = view(ps)
              yield* Scope.close(scope, Exit.void)
              // reopened with a cap large enough: exactly what was held
              const again = yield* Scope.make()
              const reopened = yield* Peerstore.makeDatastore({ ...options, maxPeers: PEERS }).pipe(
                Effect.provideService(Datastore.Datastore, ds),
                Scope.provide(again)
              )
              expect(view(reopened)).toEqual(before)
              yield* Scope.close(again, Exit.void)
            }).pipe(Effect.scoped)
          )),
        { numRuns: 150 }
      )
    ))
})
