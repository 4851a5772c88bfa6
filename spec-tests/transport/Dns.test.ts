/**
 * Multiaddr name resolution (src/transport/Dns.ts) against the fixed-table
 * Resolver: the addressing spec §IP and Name Resolution (`/dns`, `/dns4`,
 * `/dns6`, "IPv6 will be preferred", only the name component is replaced) and
 * §dnsaddr Links (TXT at `_dnsaddr.<name>`, `dnsaddr=<multiaddr>` records, the
 * spec's am6.bootstrap example from spec-tests/vectors), multiaddr
 * protocols/DNSADDR.md (recursive lookups, its bootstrap example), and the
 * bounds this implementation adds (loops, nesting depth, lookup budget,
 * result count). One test uses the real `node:dns` layer on `localhost`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Dns from "../../src/transport/Dns.ts"
import { ma } from "../support/multiaddr.ts"
import { readJson } from "../support/vectors.ts"

const strings = (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => addrs.map((a) => a.toString())

/** Resolve with a table resolver; also returns the queries it was asked, in order. */
const resolveWith = (table: Dns.Table, addr: string, options?: Dns.ResolveOptions) =>
  Effect.gen(function*() {
    const base = Dns.fromTable(table)
    const queries: Array<string> = []
    const logged: Dns.ResolverService = {
      resolve4: (n) => Effect.suspend(() => (queries.push(`A ${n}`), base.resolve4(n))),
      resolve6: (n) => Effect.suspend(() => (queries.push(`AAAA ${n}`), base.resolve6(n))),
      resolveTxt: (n) => Effect.suspend(() => (queries.push(`TXT ${n}`), base.resolveTxt(n)))
    }
    const result = yield* Effect.result(
      Dns.resolveMultiaddr(ma(addr), options).pipe(Effect.provide(Layer.succeed(Dns.Resolver, logged)))
    )
    return { result, queries }
  })

const ok = (r: Result.Result<ReadonlyArray<Multiaddr.Multiaddr>, Dns.DnsError>): ReadonlyArray<string> => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${r.failure.reason}: ${r.failure.message}`)
  return strings(r.success)
}
const err = (r: Result.Result<ReadonlyArray<Multiaddr.Multiaddr>, Dns.DnsError>): Dns.DnsError => {
  if (Result.isSuccess(r)) throw new Error(`expected a DnsError, got ${JSON.stringify(strings(r.success))}`)
  return r.failure
}

const PEER_A = "QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"
const PEER_B = "QmbLHAnMoJPWSCR5Zhtx6BHJX9KiKNN6tpvbUcqanj75Nb"

interface AddressingExamples {
  readonly dnsaddr_resolution: string
  readonly example_query: string
  readonly example_txt_records: ReadonlyArray<string>
}
const examples = readJson<{ readonly addressing_examples: AddressingExamples }>("libp2p-specs/spec-constants.json")
  .addressing_examples

describe("Dns", () => {
  describe("the fixed-table Resolver", () => {
    it.effect("answers A/AAAA/TXT by name (case-insensitive, trailing dot ignored); NotFound vs NoData", () =>
      Effect.gen(function*() {
        const r = Dns.fromTable({ A: { "Example.COM": ["192.0.2.1"] }, TXT: { "_dnsaddr.example.com": ["x"] } })
        expect(yield* r.resolve4("example.com.")).toEqual(["192.0.2.1"])
        expect(yield* r.resolveTxt("_DNSADDR.example.com")).toEqual(["x"])
        expect((yield* Effect.flip(r.resolve6("example.com"))).reason).toBe("NoData")
        const missing = yield* Effect.flip(r.resolve4("nowhere.example"))
        expect(missing._tag).toBe("DnsError")
        expect(missing.reason).toBe("NotFound")
        expect(missing.name).toBe("nowhere.example")
        const t = Dns.fromTable({ failures: { "slow.example": "Timeout" } })
        expect((yield* Effect.flip(t.resolveTxt("slow.example"))).reason).toBe("Timeout")
      }))
  })

  describe("addressing spec §IP and Name Resolution: /dns4, /dns6, /dns", () => {
    const table: Dns.Table = {
      A: { "example.com": ["192.0.2.1", "192.0.2.2"] },
      AAAA: { "example.com": ["2001:db8::1"], "v6only.example": ["2001:db8::6"] }
    }

    it.effect("/dns4/<name>/… → /ip4/<a>/… for each A record; only the name component is replaced", () =>
      Effect.gen(function*() {
        const { queries, result } = yield* resolveWith(table, `/dns4/example.com/tcp/42/p2p/${PEER_A}`)
        expect(ok(result)).toEqual([`/ip4/192.0.2.1/tcp/42/p2p/${PEER_A}`, `/ip4/192.0.2.2/tcp/42/p2p/${PEER_A}`])
        expect(queries).toEqual(["A example.com"])
      }))

    it.effect("/dns6/<name>/… → /ip6/<aaaa>/… for each AAAA record", () =>
      Effect.gen(function*() {
        const { queries, result } = yield* resolveWith(table, "/dns6/example.com/udp/1/quic-v1")
        expect(ok(result)).toEqual(["/ip6/2001:db8::1/udp/1/quic-v1"])
        expect(queries).toEqual(["AAAA example.com"])
      }))

    it.effect("/dns → A and AAAA, IPv6 first (\"IPv6 will be preferred\"); one family missing is fine", () =>
      Effect.gen(function*() {
        const both = yield* resolveWith(table, "/dns/example.com/tcp/4001")
        expect(ok(both.result)).toEqual([
          "/ip6/2001:db8::1/tcp/4001",
          "/ip4/192.0.2.1/tcp/4001",
          "/ip4/192.0.2.2/tcp/4001"
        ])
        expect(both.queries).toEqual(["AAAA example.com", "A example.com"])
        const v6 = yield* resolveWith(table, "/dns/v6only.example/tcp/1")
        expect(ok(v6.result)).toEqual(["/ip6/2001:db8::6/tcp/1"])
      }))

    it.effect("a name with no records fails with a typed DnsError (NotFound / NoData)", () =>
      Effect.gen(function*() {
        expect(err((yield* resolveWith(table, "/dns4/nowhere.example/tcp/1")).result).reason).toBe("NotFound")
        expect(err((yield* resolveWith(table, "/dns4/v6only.example/tcp/1")).result).reason).toBe("NoData")
      }))

    it.effect("addresses that are not name-based come back unchanged, without a lookup; dns: false keeps /dns*", () =>
      Effect.gen(function*() {
        for (const a of ["/ip4/1.2.3.4/tcp/1", "/ip6/::1/tcp/1/ws", "/unix/tmp/x.sock", `/p2p/${PEER_A}`]) {
          const { queries, result } = yield* resolveWith(table, a)
          expect(ok(result)).toEqual([ma(a).toString()])
          expect(queries).toEqual([])
        }
        const kept = yield* resolveWith(table, "/dns4/example.com/tcp/443/wss", { dns: false })
        expect(ok(kept.result)).toEqual(["/dns4/example.com/tcp/443/wss"])
        expect(kept.queries).toEqual([])
        expect(Dns.isResolvable(ma("/dns4/example.com"))).toBe(true)
        expect(Dns.isResolvable(ma("/dnsaddr/example.com"))).toBe(true)
        expect(Dns.isResolvable(ma("/ip4/1.2.3.4"))).toBe(false)
      }))
  })

  describe("addressing spec §dnsaddr Links: TXT records at _dnsaddr.<name>", () => {
    it.effect(`the spec's example: ${examples.example_query} — every record is used, /dns* in them resolved`, () =>
      Effect.gen(function*() {
        expect(examples.dnsaddr_resolution).toContain("_dnsaddr.<domain>")
        expect(examples.dnsaddr_resolution).toContain("dnsaddr=<multiaddr>")
        const name = examples.example_query.split(" ").find((w) => w.startsWith("_dnsaddr."))!
        expect(name).toBe("_dnsaddr.am6.bootstrap.libp2p.io")
        // `dig +short` prints each TXT record quoted
        const records = examples.example_txt_records.map((r) => JSON.parse(r) as string)
        expect(records).toHaveLength(6)
        const embedded = records.map((r) => r.slice("dnsaddr=".length))
        const table: Dns.Table = {
          TXT: { [name]: records },
          A: { "am6.bootstrap.libp2p.io": ["192.0.2.10"] },
          AAAA: { "am6.bootstrap.libp2p.io": ["2001:db8::10"] }
        }
        // dnsaddr only: exactly the embedded multiaddrs, in record order
        const links = yield* resolveWith(table, "/dnsaddr/am6.bootstrap.libp2p.io", { dns: false })
        expect(ok(links.result)).toEqual(embedded.map((e) => ma(e).toString()))
        expect(links.queries).toEqual([`TXT ${name}`])
        // fully resolved: the /dns6 and /dns4 records become IP addresses
        const full = yield* resolveWith(table, "/dnsaddr/am6.bootstrap.libp2p.io")
        expect(ok(full.result)).toEqual([
          `/ip6/2001:db8::10/tcp/443/wss/p2p/${PEER_B}`,
          `/ip4/192.0.2.10/tcp/443/wss/p2p/${PEER_B}`,
          ...embedded.slice(2)
        ])
        expect(full.queries).toEqual([`TXT ${name}`, "AAAA am6.bootstrap.libp2p.io", "A am6.bootstrap.libp2p.io"])
        // the /p2p filter keeps all of them (they all name the same peer) and drops them for another peer
        expect(ok((yield* resolveWith(table, `/dnsaddr/am6.bootstrap.libp2p.io/p2p/${PEER_B}`, { dns: false })).result))
          .toHaveLength(6)
        const other = yield* resolveWith(table, `/dnsaddr/am6.bootstrap.libp2p.io/p2p/${PEER_A}`, { dns: false })
        expect(ok(other.result)).toEqual([])
      }))

    it.effect("multiaddr DNSADDR.md example: recursive lookups, /ipfs records, suffix filter on /tcp/4001/ipfs/<id>", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.bootstrap.libp2p.io": [
              `dnsaddr=/dnsaddr/sjc-1.bootstrap.libp2p.io/tcp/4001/ipfs/${PEER_A}`,
              `dnsaddr=/dnsaddr/ams-2.bootstrap.libp2p.io/tcp/4001/ipfs/${PEER_B}`
            ],
            "_dnsaddr.sjc-1.bootstrap.libp2p.io": [
              `dnsaddr=/ip6/2604:1380:1000:6000::1/tcp/4001/ipfs/${PEER_A}`,
              `dnsaddr=/ip4/147.75.69.143/tcp/4001/ipfs/${PEER_A}`
            ],
            "_dnsaddr.ams-2.bootstrap.libp2p.io": [
              `dnsaddr=/ip4/147.75.83.83/tcp/4001/ipfs/${PEER_B}`,
              `dnsaddr=/ip6/2604:1380:2000:7a00::1/tcp/4001/ipfs/${PEER_B}`,
              // not ending in /tcp/4001/ipfs/<B>: filtered out by the parent record's suffix
              `dnsaddr=/ip4/147.75.83.83/udp/4001/quic-v1/p2p/${PEER_B}`
            ]
          }
        }
        const { queries, result } = yield* resolveWith(table, "/dnsaddr/bootstrap.libp2p.io")
        expect(ok(result)).toEqual([
          `/ip6/2604:1380:1000:6000::1/tcp/4001/p2p/${PEER_A}`,
          `/ip4/147.75.69.143/tcp/4001/p2p/${PEER_A}`,
          `/ip4/147.75.83.83/tcp/4001/p2p/${PEER_B}`,
          `/ip6/2604:1380:2000:7a00::1/tcp/4001/p2p/${PEER_B}`
        ])
        expect(queries).toEqual([
          "TXT _dnsaddr.bootstrap.libp2p.io",
          "TXT _dnsaddr.sjc-1.bootstrap.libp2p.io",
          "TXT _dnsaddr.ams-2.bootstrap.libp2p.io"
        ])
      }))

    it.effect("/dnsaddr/<name>/p2p/<id> keeps only that peer's records (and follows only its links)", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.peers.example": [
              `dnsaddr=/ip4/192.0.2.1/tcp/1/p2p/${PEER_A}`,
              `dnsaddr=/ip4/192.0.2.2/tcp/2/p2p/${PEER_B}`,
              "dnsaddr=/ip4/192.0.2.3/tcp/3", // no /p2p: not known to be peer A
              `dnsaddr=/dnsaddr/a.peers.example/p2p/${PEER_A}`,
              `dnsaddr=/dnsaddr/b.peers.example/p2p/${PEER_B}`
            ],
            "_dnsaddr.a.peers.example": [`dnsaddr=/ip6/2001:db8::a/tcp/1/p2p/${PEER_A}`],
            "_dnsaddr.b.peers.example": [`dnsaddr=/ip6/2001:db8::b/tcp/1/p2p/${PEER_B}`]
          }
        }
        const { queries, result } = yield* resolveWith(table, `/dnsaddr/peers.example/p2p/${PEER_A}`)
        expect(ok(result)).toEqual([`/ip4/192.0.2.1/tcp/1/p2p/${PEER_A}`, `/ip6/2001:db8::a/tcp/1/p2p/${PEER_A}`])
        expect(queries).toEqual(["TXT _dnsaddr.peers.example", "TXT _dnsaddr.a.peers.example"])
        // without a /p2p every record is used
        expect(ok((yield* resolveWith(table, "/dnsaddr/peers.example")).result)).toHaveLength(5)
      }))

    it.effect("TXT records that are not dnsaddr=<multiaddr> are ignored (other TXT, bad multiaddrs, empty)", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.junk.example": [
              "v=spf1 -all",
              "dnsaddr=",
              "dnsaddr=not-a-multiaddr",
              "dnsaddr=/ip4/999.1.1.1/tcp/1",
              "dnsaddr=/nosuchproto/1",
              "DNSADDR=/ip4/192.0.2.9/tcp/9",
              "dnsaddr /ip4/192.0.2.9/tcp/9",
              "",
              "=/ip4/192.0.2.9/tcp/9",
              "  dnsaddr=/ip4/192.0.2.7/tcp/7  ", // surrounding whitespace is not garbage
              "dnsaddr=/ip4/192.0.2.8/tcp/8"
            ],
            "_dnsaddr.allbad.example": ["hello", "dnsaddr=/ip4/x"]
          }
        }
        expect(ok((yield* resolveWith(table, "/dnsaddr/junk.example")).result)).toEqual([
          "/ip4/192.0.2.7/tcp/7",
          "/ip4/192.0.2.8/tcp/8"
        ])
        // nothing usable and nothing failed: an empty answer
        expect(ok((yield* resolveWith(table, "/dnsaddr/allbad.example")).result)).toEqual([])
        expect(Dns.parseTxtRecord("dnsaddr=/ip4/1.2.3.4")?.toString()).toBe("/ip4/1.2.3.4")
        expect(Dns.parseTxtRecord("dnsaddr=garbage")).toBeUndefined()
      }))

    it.effect("duplicate addresses from different links are returned once", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.root.example": ["dnsaddr=/dnsaddr/x.example", "dnsaddr=/dnsaddr/y.example"],
            "_dnsaddr.x.example": ["dnsaddr=/ip4/192.0.2.1/tcp/1"],
            "_dnsaddr.y.example": ["dnsaddr=/ip4/192.0.2.1/tcp/1", "dnsaddr=/ip4/192.0.2.2/tcp/1"]
          }
        }
        expect(ok((yield* resolveWith(table, "/dnsaddr/root.example")).result)).toEqual([
          "/ip4/192.0.2.1/tcp/1",
          "/ip4/192.0.2.2/tcp/1"
        ])
      }))
  })

  describe("bounds: loops, nesting depth, lookup budget, result count", () => {
    it.effect("a loop /dnsaddr/a → /dnsaddr/b → /dnsaddr/a ends with a typed Loop error (2 lookups, no recursion)", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.a.example": ["dnsaddr=/dnsaddr/b.example"],
            "_dnsaddr.b.example": ["dnsaddr=/dnsaddr/A.example."], // the same name, spelled differently
            "_dnsaddr.self.example": ["dnsaddr=/dnsaddr/self.example"]
          }
        }
        const loop = yield* resolveWith(table, "/dnsaddr/a.example")
        const e = err(loop.result)
        expect(e.reason).toBe("Loop")
        expect(e.message).toContain("a.example → b.example → a.example")
        expect(loop.queries).toEqual(["TXT _dnsaddr.a.example", "TXT _dnsaddr.b.example"])
        expect(err((yield* resolveWith(table, "/dnsaddr/self.example")).result).reason).toBe("Loop")
      }))

    it.effect("a loop beside a good link: the good addresses win, the looping branch is dropped", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.a.example": ["dnsaddr=/dnsaddr/a.example", "dnsaddr=/ip4/192.0.2.1/tcp/1"]
          }
        }
        expect(ok((yield* resolveWith(table, "/dnsaddr/a.example")).result)).toEqual(["/ip4/192.0.2.1/tcp/1"])
      }))

    it.effect(`nesting deeper than ${Dns.MAX_DEPTH} levels is cut off with LimitExceeded; within it, it resolves`, () =>
      Effect.gen(function*() {
        // n0 → n1 → … → n11 → an address
        const txt: Record<string, ReadonlyArray<string>> = {}
        for (let i = 0; i < 12; i++) txt[`_dnsaddr.n${i}.example`] = [`dnsaddr=/dnsaddr/n${i + 1}.example`]
        txt["_dnsaddr.n12.example"] = ["dnsaddr=/ip4/192.0.2.1/tcp/1"]
        const deep = yield* resolveWith({ TXT: txt }, "/dnsaddr/n0.example")
        const e = err(deep.result)
        expect(e.reason).toBe("LimitExceeded")
        expect(e.name).toBe(`n${Dns.MAX_DEPTH}.example`)
        expect(deep.queries).toHaveLength(Dns.MAX_DEPTH)
        // n5 → … → n12: 8 levels, exactly the limit
        expect(ok((yield* resolveWith({ TXT: txt }, "/dnsaddr/n5.example")).result)).toEqual(["/ip4/192.0.2.1/tcp/1"])
        // the limit is an option
        expect(err((yield* resolveWith({ TXT: txt }, "/dnsaddr/n5.example", { maxDepth: 3 })).result).reason)
          .toBe("LimitExceeded")
      }))

    it.effect(`at most ${Dns.MAX_LOOKUPS} lookups per resolution, however wide the tree: the rest is dropped`, () =>
      Effect.gen(function*() {
        // a tree of fanout 10 and depth 6 (a million names) — a zone built to exhaust a resolver
        const txt: Record<string, ReadonlyArray<string>> = {}
        const grow = (name: string, depth: number) => {
          if (depth === 6) {
            txt[`_dnsaddr.${name}`] = [`dnsaddr=/ip4/192.0.2.${depth}/tcp/${name.length}`]
            return
          }
          const children = Array.from({ length: 10 }, (_, i) => `c${i}.${name}`)
          txt[`_dnsaddr.${name}`] = children.map((c) => `dnsaddr=/dnsaddr/${c}`)
          // only the first branch is materialized; the others are NotFound, which still costs a lookup
          grow(children[0]!, depth + 1)
        }
        grow("wide.example", 0)
        const { queries, result } = yield* resolveWith({ TXT: txt }, "/dnsaddr/wide.example")
        expect(queries).toHaveLength(Dns.MAX_LOOKUPS)
        // the one leaf reached comes back; the unmaterialized siblings were NotFound
        expect(ok(result)).toHaveLength(1)
        // the budget runs out before any address: the resolution fails with LimitExceeded
        const few = yield* resolveWith({ TXT: txt }, "/dnsaddr/wide.example", { maxLookups: 3 })
        expect(few.queries).toEqual([
          "TXT _dnsaddr.wide.example",
          "TXT _dnsaddr.c0.wide.example",
          "TXT _dnsaddr.c0.c0.wide.example"
        ])
        expect(err(few.result).reason).toBe("LimitExceeded")
        const none = yield* resolveWith({ TXT: txt }, "/dnsaddr/wide.example", { maxLookups: 0 })
        expect(err(none.result).reason).toBe("LimitExceeded")
        expect(none.queries).toEqual([])
      }))

    it.effect(`at most ${Dns.MAX_RESULTS} addresses are returned; resolution stops once it has them`, () =>
      Effect.gen(function*() {
        const records = Array.from({ length: 200 }, (_, i) => `dnsaddr=/ip4/10.0.${i >> 8}.${i & 255}/tcp/1`)
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.many.example": records,
            "_dnsaddr.two.example": ["dnsaddr=/dnsaddr/many.example", "dnsaddr=/dnsaddr/other.example"]
          }
        }
        const { result } = yield* resolveWith(table, "/dnsaddr/many.example")
        expect(ok(result)).toEqual(records.slice(0, Dns.MAX_RESULTS).map((r) => r.slice("dnsaddr=".length)))
        const two = yield* resolveWith(table, "/dnsaddr/two.example")
        expect(ok(two.result)).toHaveLength(Dns.MAX_RESULTS)
        expect(two.queries).toEqual(["TXT _dnsaddr.two.example", "TXT _dnsaddr.many.example"]) // other.example never asked
        expect(ok((yield* resolveWith(table, "/dnsaddr/many.example", { maxResults: 5 })).result)).toHaveLength(5)
      }))

    it.effect("a failing lookup drops only its branch; when nothing resolves, the first error is the failure", () =>
      Effect.gen(function*() {
        const table: Dns.Table = {
          TXT: {
            "_dnsaddr.mixed.example": ["dnsaddr=/dnsaddr/slow.example", "dnsaddr=/ip4/192.0.2.1/tcp/1"],
            "_dnsaddr.bad.example": ["dnsaddr=/dnsaddr/slow.example", "dnsaddr=/dnsaddr/gone.example"]
          },
          failures: { "_dnsaddr.slow.example": "Timeout" }
        }
        expect(ok((yield* resolveWith(table, "/dnsaddr/mixed.example")).result)).toEqual(["/ip4/192.0.2.1/tcp/1"])
        const bad = err((yield* resolveWith(table, "/dnsaddr/bad.example")).result)
        expect(bad._tag).toBe("DnsError")
        expect(bad.reason).toBe("Timeout")
        expect(err((yield* resolveWith(table, "/dnsaddr/nowhere.example")).result).reason).toBe("NotFound")
      }))
  })

  describe("the node:dns Resolver layer", () => {
    it.live("resolves /dns4/localhost and /dns/localhost through the system resolver (hosts file)", () =>
      Effect.gen(function*() {
        const v4 = yield* Dns.resolveMultiaddr(ma("/dns4/localhost/tcp/4001"))
        expect(strings(v4)).toContain("/ip4/127.0.0.1/tcp/4001")
        expect(strings(v4).every((a) => a.startsWith("/ip4/"))).toBe(true)
        const any = yield* Dns.resolveMultiaddr(ma("/dns/localhost/tcp/1"))
        expect(strings(any)).toContain("/ip4/127.0.0.1/tcp/1")
      }).pipe(Effect.provide(Dns.layerNode())))

    it.live(
      "a name that cannot resolve is a typed DnsError (.invalid is never delegated, RFC 6761)",
      () =>
        Effect.gen(function*() {
          const e = yield* Effect.flip(Dns.resolveMultiaddr(ma("/dnsaddr/no-such-name.invalid")))
          expect(e._tag).toBe("DnsError")
          expect(Dns.DnsErrorReason.literals).toContain(e.reason)
          const a = yield* Effect.flip(Dns.resolveMultiaddr(ma("/dns4/no-such-name.invalid/tcp/1")))
          expect(a._tag).toBe("DnsError")
        }).pipe(Effect.provide(Dns.layerNode({ timeout: "3 seconds" }))),
      15_000
    )
  })
})
