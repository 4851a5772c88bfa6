/**
 * DCUtR with js-libp2p v3 through real NATs (issue 17; relay/DCUtR.md §The
 * Protocol, relay/circuit-v2.md) on the network-namespace test network of
 * `support/netns.ts` (namespaces `jn-…`, removed in `afterAll` by
 * `cleanupOwn` whatever happened):
 *
 * 1. js-libp2p's relay (`@libp2p/circuit-relay-v2`'s server in the js peer of
 *    `interop/harness/js-peer.mjs`) on the public host, two of our nodes
 *    (`relayDcutrPeer.ts peer`) behind the two NATs: both reserve on the js
 *    relay, whose identify tells each its NAT's mapping of its listening
 *    port (our dials leave from it); A dials B through js, DCUtR makes a
 *    direct connection to the other NAT's public side, pings go over it.
 * 2. Our relay on the public host (internet 5.5.5.0/24: js's DCUtR drops
 *    non-public addresses), js (`@libp2p/dcutr`, its circuit relay transport
 *    reserving on our relay) behind NAT a on port 4001, ours behind NAT b on
 *    port 4002, in both roles. Measured: no direct connection either way.
 *    js cannot learn its public address (its identify drops observed TCP
 *    addresses, js-libp2p#2620), so it is given it (`appendAnnounce`); even
 *    so, js's dial (@libp2p/tcp: `net.connect` without a local port; Node
 *    cannot bind a connecting socket to a listening port) leaves from an
 *    ephemeral port, and NAT a maps that port, not 4001: its SYN reaches
 *    router b from a port ours never dialed and is dropped, and ours' SYN
 *    (from 4002, to js's 4001) reaches router a, where js never sent from
 *    4001, and is dropped too. Both routers' SYN counters show it. Hole
 *    punching with TCP needs both sides to dial from their listening port;
 *    ours does, js cannot, so the punch fails whichever side is B: js's B
 *    logs each round's timeout (its `upgradeInbound` never surfaces the
 *    error), ours fails with a typed DcutrError (DialFailed; NoAddresses when
 *    js offers no public address), and the relayed connection stays in use.
 *
 * Needs Linux, root, `ip` and `nft`: skipped otherwise, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Path from "node:path"
import { afterAll } from "vitest"
import * as JsPeer from "../../interop/harness/JsPeer.ts"
import * as Netns from "../../support/netns.ts"
import type * as Proc from "../../support/process.ts"
import { connectAndUpgrade, pingDirect, reservedPeers } from "./natSteps.ts"

const unavailable = Netns.unavailable()
const script = Path.join(import.meta.dirname, "relayDcutrPeer.ts")
const PREFIX = "jn-"
const RELAY_PORT = 9000
const JS_PORT = 4001
const OUR_PORT = 4002
const PINGS = 50

const nthLine = Netns.nthOutputLine

/** js's circuit address once it has reserved (from its `addrs`), looked for every 200 ms, 60 seconds at most. */
const circuitAddrOf = (js: JsPeer.JsPeer) =>
  Effect.gen(function*() {
    for (let i = 0; i < 300; i++) {
      const r = yield* js.command("addrs")
      const found = (r["addrs"] as ReadonlyArray<string>).find((a) => a.includes("/p2p-circuit/"))
      if (found !== undefined) return found
      yield* Effect.sleep("200 millis")
    }
    return yield* Effect.die(`js never reserved:\n${yield* js.stderr}`)
  })

/** How many times `text` occurs in `s`. */
const count = (s: string, text: string) => s.split(text).length - 1

/** js's debug log (stderr) once `text` occurred `n` times in it (looked for every 200 ms, 90 seconds at most). */
const awaitJsLog = (js: JsPeer.JsPeer, text: string, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 450; i++) {
      const log = yield* js.stderr
      if (count(log, text) >= n) return log
      yield* Effect.sleep("200 millis")
    }
    return yield* Effect.die(`js logged "${text}" fewer than ${n} times:\n${yield* js.stderr}`)
  })

/**
 * Counters on a router (table `jn_count`, before its NAT and filter): TCP
 * SYNs arriving from the internet for `port`, from source port `srcPort`
 * ("listen") or any other ("other").
 */
const countSyns = (router: string, port: number, srcPort: number) =>
  Netns.exec(router, "nft", [
    "add table ip jn_count; " +
    "add chain ip jn_count pre { type filter hook prerouting priority -200; policy accept; }; " +
    `add rule ip jn_count pre iifname "elp-wan" tcp dport ${port} tcp flags & (syn | ack) == syn ` +
    `tcp sport ${srcPort} counter comment "listen"; ` +
    `add rule ip jn_count pre iifname "elp-wan" tcp dport ${port} tcp flags & (syn | ack) == syn ` +
    `tcp sport != ${srcPort} counter comment "other"`
  ])

const synsSeen = (router: string) => {
  const out = Netns.exec(router, "nft", ["list", "table", "ip", "jn_count"])
  const of = (tag: string) => Number(new RegExp(`counter packets (\\d+) bytes \\d+ comment "${tag}"`).exec(out)?.[1])
  return { listen: of("listen"), other: of("other") }
}

/**
 * Our relay on the public host, js behind NAT a (port 4001: its relay
 * transport reserves on our relay, @libp2p/dcutr), ours behind NAT b (port
 * 4002). `announce`: js is told its NAT's public side of its listening port
 * (`appendAnnounce`), which it cannot learn itself: its identify drops every
 * observed TCP address (@libp2p/identify `maybeAddObservedAddress`,
 * js-libp2p#2620: its dials leave from ephemeral ports, so what peers
 * observe is never its listener).
 */
const mixed = (announce: boolean) =>
  Effect.gen(function*() {
    const net = yield* Netns.acquire({ internet: "5.5.5", prefix: PREFIX })
    const relay = yield* Netns.spawnNode(net.pub.ns, script, ["relay", String(RELAY_PORT)], { stdin: true })
    const idR = (yield* relay.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    const relayAddr = `/ip4/${net.pub.ip}/tcp/${RELAY_PORT}/p2p/${idR}`
    const ours = yield* Netns.spawnNode(net.b.host.ns, script, ["peer", String(OUR_PORT), relayAddr], { stdin: true })
    const js = yield* JsPeer.start({
      netns: net.a.host.ns,
      listen: [`/ip4/0.0.0.0/tcp/${JS_PORT}`, `${relayAddr}/p2p-circuit`],
      relay: { transport: true },
      dcutr: true,
      ...(announce ? { appendAnnounce: [`/ip4/${net.a.publicIp}/tcp/${JS_PORT}`] } : {}),
      // js reports its hole punches only in its debug log; "libp2p:tcp" alone: its dials, not every stream
      env: { DEBUG: "libp2p:dcutr*,libp2p:tcp" },
      startTimeout: "60 seconds",
      commandTimeout: "90 seconds"
    })
    const idOurs = (yield* ours.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
    yield* ours.awaitOutput(/reserved/, "60 seconds")
    const circuitJs = yield* circuitAddrOf(js)
    expect(circuitJs).toBe(`${relayAddr}/p2p-circuit/p2p/${js.peerId}`)
    countSyns(net.b.router.ns, OUR_PORT, JS_PORT)
    countSyns(net.a.router.ns, JS_PORT, OUR_PORT)
    return { net, ours, js, idOurs, circuitJs, circuitOurs: `${relayAddr}/p2p-circuit/p2p/${idOurs}` }
  })

/**
 * Why no direct connection came, from the routers' counters: js's SYNs reach
 * router b from ephemeral ports of NAT a, never from 4001, the port ours
 * dials, so router b has no state for them; ours' SYNs (from 4002, to 4001)
 * reach router a, where js never sent anything from 4001: both are
 * unsolicited and dropped. Neither side has a direct connection: ours never
 * upgraded, js opened one connection to ours, the relayed (limited) one.
 */
const bothSynsDropped = (net: Netns.NatTopology, ours: Proc.Process, js: JsPeer.JsPeer, idOurs: string) =>
  Effect.gen(function*() {
    const atB = synsSeen(net.b.router.ns)
    expect(atB.other).toBeGreaterThanOrEqual(3)
    expect(atB.listen).toBe(0)
    expect(synsSeen(net.a.router.ns).listen).toBeGreaterThanOrEqual(3)
    expect(Netns.outputLines(ours, "upgraded ")).toEqual([])
    const opened = (yield* js.eventLog).filter((e) => e.event === "connection:open" && e["peerId"] === idOurs)
    expect(opened.map((e) => [e["relayed"], e["limited"]])).toEqual([[true, true]])
  })

describe.skipIf(unavailable !== undefined)(
  `DCUtR through NATs with js-libp2p v3${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupOwn(PREFIX))

    it.live(
      "circuit-v2 §Reservation + DCUtR §The Protocol: ours reserve on js-libp2p's relay behind two NATs, A dials B through it, DCUtR makes a direct connection [dcutr:the-protocol:3]",
      () =>
        Effect.gen(function*() {
          const net = yield* Netns.acquire({ prefix: PREFIX })
          const relay = yield* JsPeer.start({
            netns: net.pub.ns,
            listen: [`/ip4/${net.pub.ip}/tcp/${RELAY_PORT}`],
            relay: { server: true },
            startTimeout: "60 seconds",
            commandTimeout: "90 seconds"
          })
          const relayAddr = `/ip4/${net.pub.ip}/tcp/${RELAY_PORT}/p2p/${relay.peerId}`
          const { a, b, idA, idB } = yield* reservedPeers(net, relayAddr)
          const held = yield* relay.command("relayReservations")
          expect([...(held["reservations"] as ReadonlyArray<string>)].sort()).toEqual([idA, idB].sort())
          yield* connectAndUpgrade(net, a, b, `${relayAddr}/p2p-circuit/p2p/${idB}`)
          yield* pingDirect(net, { proc: a, id: idA }, { proc: b, id: idB }, PINGS)
        }).pipe(Effect.scoped),
      180_000
    )

    it.live(
      "DCUtR §The Protocol step 6: ours (A) dials js behind NAT a through our relay, js (B) starts DCUtR: each side's SYN is dropped by the other's NAT, no direct connection, the relayed one stays",
      () =>
        Effect.gen(function*() {
          const { net, ours, js, idOurs, circuitJs } = yield* mixed(true)
          yield* ours.write(`dial ${circuitJs}\n`)
          expect(yield* nthLine(ours, "dialed ", 1)).toContain("/p2p-circuit")
          // js's B: no unilateral upgrade (ours advertises no public address), then 3 rounds, each ending
          // in its dial to ours' NAT mapping timing out (@libp2p/dcutr's 5 s per round)
          const log = yield* awaitJsLog(js, "error while attempting DCUtR on attempt 3 of 3", 1)
          expect(log).toContain("not attempting unilateral connection upgrade")
          expect(count(log, `B dialing [ Multiaddr(/ip4/${net.b.publicIp}/tcp/${OUR_PORT}) ]`)).toBe(3)
          expect(count(log, "TimeoutError")).toBeGreaterThanOrEqual(3)
          // ours' A answered each round and dialed js's announced address from its listening port
          yield* nthLine(ours, "dcutr-failed responder", 3)
          const failures = Netns.outputLines(ours, "dcutr-failed responder")
          expect(failures).toHaveLength(3)
          for (const f of failures) {
            expect(f).toContain("DialFailed")
            expect(f).toContain(`/ip4/${net.a.publicIp}/tcp/${JS_PORT}`)
            // js's B starts a round while ours' dial of the last is pending: ours ends that one first, so the
            // new dial from the same port to the same address is not refused (EADDRNOTAVAIL) on the spot
            expect(f).not.toContain("EADDRNOTAVAIL")
          }
          yield* bothSynsDropped(net, ours, js, idOurs)
          // §The Protocol step 6: the relayed connection stays and carries streams
          yield* ours.write(`ping ${js.peerId} 3\n`)
          expect(yield* nthLine(ours, "pinged ", 1)).toContain("/p2p-circuit")
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "DCUtR §The Protocol step 6: js (A) dials ours behind NAT b through our relay, ours (B) starts DCUtR: js's dial from an ephemeral port is dropped by NAT b, ours fails with DialFailed after 3 attempts, the relayed connection stays [dcutr:the-protocol:5]",
      () =>
        Effect.gen(function*() {
          const { net, ours, js, idOurs, circuitJs, circuitOurs } = yield* mixed(true)
          const relayed = yield* js.dial(circuitOurs)
          expect(relayed.remoteAddr).toBe(circuitOurs)
          yield* nthLine(ours, "conn inbound ", 1)
          // ours' B: 3 rounds, then one typed failure; js's A dialed ours' NAT mapping on each SYNC
          const failed = yield* nthLine(ours, "dcutr-failed initiator", 1)
          expect(failed).toContain("DialFailed")
          expect(failed).toContain(`/ip4/${net.a.publicIp}/tcp/${JS_PORT}`)
          const log = yield* awaitJsLog(js, `connection aborted /ip4/${net.b.publicIp}/tcp/${OUR_PORT}`, 3)
          expect(count(log, `A dialing [ Multiaddr(/ip4/${net.b.publicIp}/tcp/${OUR_PORT}) ]`)).toBe(3)
          yield* bothSynsDropped(net, ours, js, idOurs)
          expect((yield* js.ping({ peerId: idOurs }, { count: 3 })).rtts).toHaveLength(3)
          yield* ours.write(`conns ${js.peerId}\n`)
          expect((yield* nthLine(ours, "conns ", 1)).split(" ").slice(1)).toEqual(["1", circuitJs])
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "DCUtR §The Protocol: js without an announced address offers ours no public address: ours (B) fails with NoAddresses, js never dials",
      () =>
        Effect.gen(function*() {
          const { ours, js, idOurs, circuitOurs } = yield* mixed(false)
          yield* js.dial(circuitOurs)
          // js's CONNECT holds its loopback, LAN and circuit addresses only (it drops observed TCP addresses)
          const failed = yield* nthLine(ours, "dcutr-failed initiator", 1)
          expect(failed).toContain("NoAddresses")
          const log = yield* awaitJsLog(js, "A sending connect", 1)
          expect(log).not.toContain("A dialing")
          expect((yield* js.ping({ peerId: idOurs }, { count: 1 })).rtts).toHaveLength(1)
        }).pipe(Effect.scoped),
      240_000
    )
  }
)
