/**
 * Issue 18 §5, peer exchange through identify: the listen addresses a peer
 * announces in identify go to the peer store with the `identify` source (kept
 * while connected, then `recentlyConnectedTtl`), a wildcard address (which
 * names no host: dialing it reaches the dialer's own machine) does not.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"

describe("peer exchange through identify (issue 18 §5)", () => {
  it.live(
    "§5: identify's listen addresses enter the peer store (no expiry while connected), wildcards do not",
    () =>
      Effect.gen(function*() {
        const a = yield* tcpNode({ listen: [ma("/ip4/0.0.0.0/tcp/0"), ma("/ip4/127.0.0.1/tcp/0")] })
        const b = yield* tcpNode()
        const loopback = a.host.addrs().find((x) => Multiaddr.toString(x).startsWith("/ip4/127.0.0.1/"))!
        const conn = yield* b.host.dial(loopback)
        yield* b.identify.identify(conn)
        const info = b.peerstore.get(a.host.peerId)!
        // the dialed address was stored as `connected` first; the announced one is the certified (signed record) one
        const entries = info.addrEntries.map((e) => [Multiaddr.toString(e.addr), e.source, e.expires])
        expect(entries).toContainEqual([
          Multiaddr.toString(Multiaddr.decapsulateCode(loopback, Multiaddr.codes.p2p)),
          expect.stringMatching(/^(connected|identify|certified)$/),
          Infinity
        ])
        expect(entries.some(([addr]) => String(addr).startsWith("/ip4/0.0.0.0/"))).toBe(false)
        expect(info.addrs.some(Multiaddr.isUnspecified)).toBe(false)
      }),
    60_000
  )
})
