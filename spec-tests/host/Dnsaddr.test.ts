/**
 * Dialing `/dnsaddr` addresses through the Host (addressing spec §dnsaddr
 * Links): the Host expands the link through its `Dns.Resolver` (here a fixed
 * table naming a real TCP node on loopback) and dials what it links to; an
 * expanded address's `/p2p/<id>` is authenticated (Noise), and a link that
 * resolves to nothing is a typed DialError.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Dns from "../../src/transport/Dns.ts"
import { chain } from "../support/errors.ts"
import { bare, ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"

describe("Host: dialing /dnsaddr links (addressing spec §dnsaddr Links)", () => {
  it.live("/dnsaddr/<name> and /dnsaddr/<name>/p2p/<id> are expanded and dialed; ping works over the result", () =>
    Effect.gen(function*() {
      const target = yield* tcpNode()
      const other = yield* tcpNode()
      const id = PeerId.toString(target.host.peerId)
      const otherId = PeerId.toString(other.host.peerId)
      const refused = "/ip4/127.0.0.1/tcp/1"
      const resolver = Dns.fromTable({
        TXT: {
          "_dnsaddr.node.test": [
            "v=spf1 -all", // not a dnsaddr record: ignored
            `dnsaddr=${refused}/p2p/${id}`, // nothing listens there: the next record is tried
            `dnsaddr=${Multiaddr.toString(target.addr)}`,
            `dnsaddr=${Multiaddr.toString(other.addr)}` // another peer: filtered out for /p2p/<id>
          ],
          "_dnsaddr.link.test": ["dnsaddr=/dnsaddr/node.test"]
        }
      })
      const dialer = yield* tcpNode({ resolver })

      const conn = yield* dialer.host.dial(ma(`/dnsaddr/node.test/p2p/${id}`))
      expect(PeerId.toString(conn.remotePeer)).toBe(id)
      expect(Multiaddr.toString(conn.remoteAddr)).toBe(bare(target.addr))
      const rtts = yield* dialer.ping.ping(target.host.peerId, { count: 2 })
      expect(rtts).toHaveLength(2)

      // without /p2p, through a nested link: the first record that answers is dialed
      const fresh = yield* tcpNode({ resolver })
      const conn2 = yield* fresh.host.dial(ma("/dnsaddr/link.test"))
      expect(PeerId.toString(conn2.remotePeer)).toBe(id)
      expect(otherId).not.toBe(id)
    }))

  it.live("an expanded address's /p2p id is authenticated: a record naming another peer fails PeerIdMismatch", () =>
    Effect.gen(function*() {
      const target = yield* tcpNode()
      const impostor = yield* tcpNode()
      const resolver = Dns.fromTable({
        TXT: {
          // the record claims the impostor's id at the target's address
          "_dnsaddr.liar.test": [`dnsaddr=${bare(target.addr)}/p2p/${PeerId.toString(impostor.host.peerId)}`]
        }
      })
      const dialer = yield* tcpNode({ resolver })
      const e = yield* Effect.flip(dialer.host.dial(ma("/dnsaddr/liar.test")))
      expect(chain(e)).toEqual(["DialError", "UpgradeError", "PeerIdMismatch", "SecurityError", "PeerIdMismatch"])
    }))

  it.live("a link that resolves to nothing is DialError NoAddresses carrying the DnsError; a loop too", () =>
    Effect.gen(function*() {
      const resolver = Dns.fromTable({
        TXT: {
          "_dnsaddr.a.test": ["dnsaddr=/dnsaddr/b.test"],
          "_dnsaddr.b.test": ["dnsaddr=/dnsaddr/a.test"]
        }
      })
      const dialer = yield* tcpNode({ resolver })
      const missing = yield* Effect.flip(dialer.host.dial(ma("/dnsaddr/nowhere.test")))
      expect(chain(missing)).toEqual(["DialError", "NoAddresses"])
      expect(missing.reason._tag === "NoAddresses" && missing.reason.dns?.map((e) => e.reason)).toEqual(["NotFound"])
      expect(missing.message).toContain("NotFound")
      const loop = yield* Effect.flip(dialer.host.dial(ma("/dnsaddr/a.test")))
      expect(chain(loop)).toEqual(["DialError", "NoAddresses"])
      expect(loop.reason._tag === "NoAddresses" && loop.reason.dns?.map((e) => e.reason)).toEqual(["Loop"])
      expect(loop.message).toContain("Loop")
    }))
})
