/**
 * DCUtR against go-libp2p v0.52 through real NATs (issues 17 and 19;
 * relay/DCUtR.md §The Protocol): the network-namespace test network of
 * `support/netns.ts` (namespaces `gp-…`, a public-looking internet, 5.5.5.0/24:
 * go's hole punching offers and dials only addresses `manet.IsPublicAddr`
 * accepts), our relay (`relayDcutrPeer.ts relay`) on the public host, the go
 * peer (spec-tests/interop/go, `holepunch` config: go's holepunch service,
 * ForceReachabilityPrivate, TCP on port 4001 with go's default reuseport)
 * behind NAT a, one of our nodes (`relayDcutrPeer.ts peer`, port 4002)
 * behind NAT b. Both reserve on the relay, whose identify tells each its
 * NAT's mapping of its listening port: the address each sends in CONNECT.
 *
 * - ours dials go's circuit address: go (B, it received the relayed
 *   connection) starts DCUtR, ours (A) answers; the direct connection's
 *   remote address is go's NAT's public side, and pings go over it both ways.
 * - go dials ours through the relay: ours (B) starts DCUtR, go answers.
 * - §The Protocol step 5 says A is the client and B the server of the
 *   direct connection, as we do; go ≥ 0.41 does too, except on its B's last
 *   (3rd) attempt, where go's B is the client as well (holepuncher.go: "in
 *   case the connection is being made with a client with switched roles",
 *   for go peers before 0.41). Router b drops our SYNs for go's first two
 *   attempts, then lets the third through: the TCP connection is made and
 *   both sides start noise as the initiator, so that attempt always fails
 *   against an A that follows the spec (ours, js-libp2p, go ≥ 0.41).
 * Needs Linux, root, `ip`, `nft` and Go: skipped otherwise, with the reason.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Path from "node:path"
import { afterAll, inject } from "vitest"
import * as GoPeer from "../../interop/harness/GoPeer.ts"
import type * as JsPeer from "../../interop/harness/JsPeer.ts"
import * as Netns from "../../support/netns.ts"

const build = inject("goPeer")
const unavailable = Netns.unavailable() ?? (build === null ? "Go is not installed (the go interop peer)" : undefined)
const script = Path.join(import.meta.dirname, "relayDcutrPeer.ts")
const PREFIX = "gp-"
const RELAY_PORT = 9000
const GO_PORT = 4001
const OUR_PORT = 4002
const PINGS = 20

const nthLine = Netns.nthOutputLine

/** nft commands for a router: drop its host's TCP SYNs to `ip`:4001 (in the table `gp_block`). */
const BLOCK = (ip: string) => [
  "add table ip gp_block; " +
  "add chain ip gp_block forward { type filter hook forward priority filter - 10; policy accept; }; " +
  `add rule ip gp_block forward ip daddr ${ip} tcp dport 4001 tcp flags & (syn | ack) == syn counter drop`
]

/** go's hole punch tracer events (go/holepunch.go) of `type`, so far. */
const traced = (go: GoPeer.GoPeer, type: string) =>
  Effect.map(go.eventLog, (log) => log.filter((e) => e.event === "holepunch" && e["type"] === type))

const goSaid = (go: GoPeer.GoPeer) =>
  Effect.map(go.eventLog, (log) => log.filter((e) => e.event.startsWith("holepunch") || e.event.startsWith("conn")))

/** The first of go's tracer events of `type` that `ok` accepts (go's event log on failure). */
const awaitTraced = (go: GoPeer.GoPeer, type: string, ok: (e: JsPeer.JsPeerEvent) => boolean = () => true) =>
  go.awaitEvent((e) => e.event === "holepunch" && e["type"] === type && ok(e), { timeout: "90 seconds" }).pipe(
    Effect.catch((e) =>
      Effect.flatMap(
        goSaid(go),
        (said) => Effect.die(`${e.message}\ngo said:\n${said.map((x) => JSON.stringify(x)).join("\n")}`)
      )
    )
  )

/** go's `n`-th (1-based) tracer event of `type`, once go printed it (looked for every 20 ms, 90 seconds at most). */
const awaitNth = (go: GoPeer.GoPeer, type: string, n: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 4500; i++) {
      const found = yield* traced(go, type)
      if (found.length >= n) return found[n - 1]!
      yield* Effect.sleep("20 millis")
    }
    const said = (yield* goSaid(go)).map((x) => JSON.stringify(x)).join("\n")
    return yield* Effect.die(`go traced fewer than ${n} ${type}:\n${said}`)
  })

const setup = Effect.gen(function*() {
  const net = yield* Netns.acquire({ internet: "5.5.5", prefix: PREFIX })
  const relay = yield* Netns.spawnNode(net.pub.ns, script, ["relay", String(RELAY_PORT)], { stdin: true })
  const idR = (yield* relay.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
  const relayAddr = `/ip4/${net.pub.ip}/tcp/${RELAY_PORT}/p2p/${idR}`
  const ours = yield* Netns.spawnNode(net.b.host.ns, script, ["peer", String(OUR_PORT), relayAddr], { stdin: true })
  const go = yield* GoPeer.start(build!.binary, {
    netns: net.a.host.ns,
    listen: [`/ip4/0.0.0.0/tcp/${GO_PORT}`],
    holepunch: {},
    startTimeout: "60 seconds",
    commandTimeout: "90 seconds"
  })
  const idOurs = (yield* ours.awaitOutput(/ready (\S+)/, "60 seconds"))[1]!
  yield* ours.awaitOutput(/reserved/, "60 seconds")
  // go reserves on our relay (client.Reserve); identify on that connection tells go its NAT's mapping,
  // and go's hole punch service starts once it has that public address
  const reservation = yield* go.command("relayReserve", { addr: relayAddr })
  expect(reservation["voucher"]).toBe(true)
  yield* go.awaitEvent((e) => e.event === "holepunch:ready", { timeout: "60 seconds" })
  return {
    net,
    ours,
    go,
    idOurs,
    goPublic: `/ip4/${net.a.publicIp}/tcp/${GO_PORT}`,
    oursPublic: `/ip4/${net.b.publicIp}/tcp/${OUR_PORT}`,
    circuitGo: `${relayAddr}/p2p-circuit/p2p/${go.peerId}`,
    circuitOurs: `${relayAddr}/p2p-circuit/p2p/${idOurs}`
  }
})

describe.skipIf(unavailable !== undefined)(
  `DCUtR through NATs against go-libp2p v0.52${unavailable !== undefined ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    afterAll(() => void Netns.cleanupOwn(PREFIX))

    it.live(
      "DCUtR §The Protocol: ours dials go behind a NAT through our relay, go (B) starts DCUtR, ours answers: a direct connection",
      () =>
        Effect.gen(function*() {
          const { ours, go, idOurs, goPublic, oursPublic, circuitGo } = yield* setup
          yield* ours.write(`dial ${circuitGo}\n`)
          expect(yield* nthLine(ours, "dialed ", 1)).toContain("/p2p-circuit")
          // go's B: CONNECT/SYNC, then the simultaneous connect to the address ours sent (its NAT's mapping)
          const start = yield* awaitTraced(go, "StartHolePunch")
          expect(start["remoteAddrs"]).toContain(oursPublic)
          const end = yield* awaitTraced(go, "EndHolePunch", (e) => e["success"] === true)
          expect(end["error"]).toBeUndefined()
          // ours, A: answered at its round and holds a direct connection to go's NAT's public side
          const upgraded = (yield* nthLine(ours, "upgraded ", 1)).split(" ")
          expect(upgraded.slice(1, 3)).toEqual(["responder", "1"])
          expect(upgraded[4]).toBe(goPublic)
          yield* ours.write(`conns ${go.peerId}\n`)
          expect((yield* nthLine(ours, "conns ", 1)).split(" ")).toContain(goPublic)
          // go has the direct connection too, and pings over it (go refuses limited connections here)
          const conns = yield* go.connections
          expect(conns.connections.map((c) => c.remoteAddr)).toContain(oursPublic)
          const pinged = yield* go.command("pingConn", { peerId: idOurs, count: PINGS })
          expect(pinged["remoteAddr"]).toBe(oursPublic)
          expect(pinged["limited"]).toBe(false)
          expect(pinged["rtts"]).toHaveLength(PINGS)
          // ours pings over it as well (the Host hands out the direct connection first)
          yield* ours.write(`ping ${go.peerId} ${PINGS}\n`)
          expect(yield* nthLine(ours, "pinged ", 1)).toBe(`pinged ${PINGS} ${goPublic}`)
          // no DCUtR failure on our side
          expect(Netns.outputLines(ours, "dcutr-failed ")).toEqual([])
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "DCUtR §The Protocol: go behind a NAT dials ours through our relay, ours (B) starts DCUtR, go answers: a direct connection",
      () =>
        Effect.gen(function*() {
          const { ours, go, idOurs, goPublic, oursPublic, circuitOurs } = yield* setup
          const dialed = yield* go.dial(circuitOurs)
          expect(dialed.remoteAddr).toContain("/p2p-circuit")
          // ours, B: CONNECT with its NAT's mapping, go's CONNECT back, SYNC, the simultaneous connect
          const upgraded = (yield* nthLine(ours, "upgraded ", 1)).split(" ")
          expect(upgraded[1]).toBe("initiator")
          expect(upgraded[4]).toBe(goPublic)
          // go, A: got CONNECT with our address and dialed it (its tracer's "receiver" side)
          const start = yield* awaitTraced(go, "StartHolePunch")
          expect(start["remoteAddrs"]).toContain(oursPublic)
          yield* awaitTraced(go, "EndHolePunch", (e) => e["success"] === true)
          const conns = yield* go.connections
          expect(conns.connections.map((c) => c.remoteAddr)).toContain(oursPublic)
          const pinged = yield* go.command("pingConn", { peerId: idOurs, count: PINGS })
          expect(pinged["remoteAddr"]).toBe(oursPublic)
          expect(pinged["limited"]).toBe(false)
          yield* ours.write(`ping ${go.peerId} ${PINGS}\n`)
          expect(yield* nthLine(ours, "pinged ", 1)).toBe(`pinged ${PINGS} ${goPublic}`)
          expect(Netns.outputLines(ours, "dcutr-failed ")).toEqual([])
          expect(yield* traced(go, "ProtocolError")).toEqual([])
        }).pipe(Effect.scoped),
      240_000
    )

    it.live(
      "DCUtR §The Protocol step 5: A is the client, but go's B is the client too on its 3rd attempt: both start noise and that attempt fails",
      () =>
        Effect.gen(function*() {
          const { net, ours, go, circuitGo } = yield* setup
          // router b drops our SYNs to go's NAT: go's attempts 1 and 2 fail (each at go's dial timeout)
          Netns.exec(net.b.router.ns, "nft", BLOCK(net.a.publicIp))
          yield* ours.write(`dial ${circuitGo}\n`)
          yield* nthLine(ours, "dialed ", 1)
          const second = yield* awaitNth(go, "EndHolePunch", 2)
          expect(second["success"]).toBe(false)
          // open the path again for go's 3rd round (if our first SYN is still dropped, its retransmission a
          // second later crosses go's: the SYNs meet as in the attempts that succeed above)
          Netns.exec(net.b.router.ns, "nft", ["delete", "table", "ip", "gp_block"])
          const third = yield* awaitNth(go, "EndHolePunch", 3)
          expect((yield* traced(go, "HolePunchAttempt")).map((e) => e["attempt"])).toEqual([1, 2, 3])
          // the TCP connection is made, then both sides are noise initiators: each reads the other's first
          // message (an ephemeral key) where it expects the responder's (ephemeral, static key, payload)
          expect(third["success"]).toBe(false)
          yield* nthLine(ours, "dcutr-failed responder", 3)
          const failures = Netns.outputLines(ours, "dcutr-failed responder")
          expect(failures).toHaveLength(3)
          expect(failures[2]).toContain("DialFailed")
          // as measured in every run since the final version of this test; once, on a loaded machine,
          // an earlier version saw the 3rd attempt time out before the handshake: then only "it fails" holds
          if (String(third["error"]).includes("failed to negotiate security protocol")) {
            expect(String(third["error"])).toContain("noise")
            expect(failures[2]).toContain("Security: noise")
          }
          expect(Netns.outputLines(ours, "upgraded ")).toEqual([])
          // go gave up (§The Protocol step 6): the relayed connection stays and carries streams
          yield* ours.write(`ping ${go.peerId} 1\n`)
          expect(yield* nthLine(ours, "pinged ", 1)).toContain("/p2p-circuit")
        }).pipe(Effect.scoped),
      240_000
    )
  }
)
