/**
 * Gossipsub interop with go-libp2p-pubsub v0.19 (the reference gossipsub; spec-tests/interop/go,
 * go/pubsub.go, driven with the js peer's pubsub commands through `JsPeer.pubsubOf`), over loopback
 * TCP + Noise + Yamux, in both dial directions: go and our node graft each other (gossipsub-v1.1
 * §GRAFT), and messages published on either side reach the other, signed and verified
 * (pubsub/README.md §Message Signing: `from` and `seqno` survive the trip).
 *
 * Protocol versions (gossipsub-v1.0 §Protocol, multistream-select): go-libp2p-pubsub v0.19
 * offers /meshsub/1.3.0 first (gossipsub-v1.3: extensions control message), then 1.2.0, 1.1.0,
 * 1.0.0, /floodsub/1.0.0. We ship up to v1.2, so when go dials us it is told "na" for 1.3.0 and
 * settles on /meshsub/1.2.0; when we dial go we offer 1.2.0 and go accepts it. Both ends record
 * /meshsub/1.2.0 — go's v1.3 extensions never reach us, since go only sends them on a v1.3
 * stream (gossipsub-v1.3 §Protocol Negotiation), so they cannot break us.
 *
 * IDONTWANT (gossipsub-v1.2 §IDONTWANT): go sends IDONTWANT to its mesh peers for every message of
 * more than 1 KiB it receives (`IDontWantMessageThreshold`); the mixed-mesh test publishes 4 KiB
 * messages through go relays and checks every node still gets each message once, that our node
 * next to a go relay receives go's IDONTWANT and that ours sends one to go.
 *
 * Scoring (gossipsub-v1.1 §P4): a go peer whose message our validator rejects loses score on our
 * side and leaves our mesh.
 *
 * Floodsub: go-libp2p-pubsub's floodsub router (`NewFloodSub`) and ours, both dial directions.
 *
 * Skipped, with one notice from harness/goSetup.ts, when Go is not installed; mandatory in CI.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Result, Stream } from "effect"
import { inject } from "vitest"
import * as PeerId from "../../src/core/PeerId.ts"
import type { Host } from "../../src/host/Host.ts"
import * as Floodsub from "../../src/protocols/pubsub/floodsub/Floodsub.ts"
import * as Gossipsub from "../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as PeerScore from "../../src/protocols/pubsub/gossipsub/PeerScore.ts"
import type { Pubsub } from "../../src/protocols/pubsub/Pubsub.ts"
import { eventually } from "../support/attacker.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpPubsubNode } from "../support/pubsub.ts"
import * as GoPeer from "./harness/GoPeer.ts"
import * as JsPeer from "./harness/JsPeer.ts"

const build = inject("goPeer")
const TOPIC = "go-interop"
const decode = (b: Uint8Array) => new TextDecoder().decode(b)
const encode = (s: string) => new TextEncoder().encode(s)

const ours = () =>
  Effect.map(
    tcpPubsubNode(Gossipsub.layer({ heartbeatInterval: "200 millis" })),
    (n) => ({ ...n, gossipsub: Context.get(n.context, Gossipsub.Gossipsub) })
  )

/** Poll `check` until it holds (fails the test after 20 s). */
const until = <E, R>(check: Effect.Effect<boolean, E, R>) =>
  Effect.map(eventually(check, "20 seconds"), (ok) => expect(ok).toBe(true))

/** Both subscribe to TOPIC, one dials the other, until go lists us among the topic's peers. */
const subscribed = (
  go: GoPeer.GoPeer,
  a: { readonly host: Host["Service"]; readonly pubsub: Pubsub["Service"] },
  goDials: boolean
) =>
  Effect.gen(function*() {
    const goPs = JsPeer.pubsubOf(go)
    const ourId = a.host.peerId.toString()
    yield* goPs.subscribe(TOPIC)
    const sub = yield* a.pubsub.subscribe(TOPIC)
    if (goDials) yield* go.dial(a.host.addrs()[0]!.toString())
    else yield* a.host.dial(ma(go.addr))
    yield* until(Effect.map(goPs.peers(TOPIC), (p) => p.includes(ourId)))
    return { goPs, ourId, sub }
  })

const goGossip = () => GoPeer.start(build!.binary, { pubsub: { router: "gossipsub", heartbeatMs: 200 } })

describe.skipIf(build == null)("gossipsub interop with go-libp2p-pubsub", () => {
  for (const goDials of [false, true]) {
    it.live(
      `gossipsub-v1.1 §GRAFT: go and ours graft each other (${
        goDials ? "go dials us" : "we dial go"
      }); messages flow both ways over /meshsub/1.2.0`,
      () =>
        Effect.gen(function*() {
          const go = yield* goGossip()
          const a = yield* ours()
          const { goPs, ourId, sub } = yield* subscribed(go, a, goDials)
          yield* until(Effect.map(goPs.mesh(TOPIC), (m) => m.includes(ourId)))
          yield* until(
            Effect.sync(() => a.gossipsub.mesh(TOPIC).some((p) => p.toString() === go.peerId))
          )
          // go offers /meshsub/1.3.0 first; both ends settle on 1.2.0 (see the file comment)
          expect(a.gossipsub.peerProtocol(Result.getOrThrow(PeerId.fromString(go.peerId)))).toBe(Gossipsub.PROTOCOL_V12)
          expect(yield* GoPeer.pubsubProtocol(go, ourId)).toBe(Gossipsub.PROTOCOL_V12)

          const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 1)))
          expect(yield* goPs.publish(TOPIC, "from go")).toContain(ourId)
          const msgs = yield* Fiber.join(got)
          expect(msgs.map((m) => decode(m.data))).toEqual(["from go"])
          expect(msgs[0]!.from?.toString()).toBe(go.peerId)

          const r = yield* a.pubsub.publish(TOPIC, encode("from ours"))
          expect(r.recipients).toBe(1)
          const seen = yield* goPs.awaitMessage("from ours", { timeout: "10 seconds" })
          expect(seen.from).toBe(ourId)
          expect(seen.seqno).not.toBeNull()
        }),
      60_000
    )
  }

  for (const goDials of [false, true]) {
    it.live(
      `floodsub: go-libp2p-pubsub's floodsub and ours (${
        goDials ? "go dials us" : "we dial go"
      }); messages flow both ways over /floodsub/1.0.0`,
      () =>
        Effect.gen(function*() {
          const go = yield* GoPeer.start(build!.binary, { pubsub: { router: "floodsub" } })
          const a = yield* tcpPubsubNode(Floodsub.layer())
          const { goPs, ourId, sub } = yield* subscribed(go, a, goDials)
          yield* until(Effect.sync(() => a.pubsub.peers(TOPIC).some((p) => p.toString() === go.peerId)))
          expect(yield* GoPeer.pubsubProtocol(go, ourId)).toBe(Floodsub.PROTOCOL)

          const got = yield* Effect.forkChild(Stream.runCollect(Stream.take(sub, 2)))
          yield* goPs.publish(TOPIC, "flood 1 from go")
          yield* goPs.publish(TOPIC, "flood 2 from go")
          const msgs = yield* Fiber.join(got)
          expect(msgs.map((m) => decode(m.data))).toEqual(["flood 1 from go", "flood 2 from go"])
          expect(msgs[0]!.from?.toString()).toBe(go.peerId)

          expect((yield* a.pubsub.publish(TOPIC, encode("flood from ours"))).recipients).toBe(1)
          const seen = yield* goPs.awaitMessage("flood from ours", { timeout: "10 seconds" })
          expect(seen.from).toBe(ourId)
        }),
      60_000
    )
  }

  it.live(
    "gossipsub-v1.2 §IDONTWANT: go - ours - go - ours in a line; 4 KiB messages reach every subscriber once [gossipsub-v1.2:basic-scenario:1]",
    () =>
      Effect.gen(function*() {
        const [g0, g1] = yield* Effect.all([goGossip(), goGossip()], { concurrency: 2 })
        const [ps0, ps1] = [JsPeer.pubsubOf(g0), JsPeer.pubsubOf(g1)]
        const a = yield* ours()
        const b = yield* ours()
        yield* ps0.subscribe(TOPIC)
        yield* ps1.subscribe(TOPIC)
        const subA = yield* a.pubsub.subscribe(TOPIC)
        const subB = yield* b.pubsub.subscribe(TOPIC)
        // g0 - a - g1 - b: every message crosses a go relay or one of ours
        yield* a.host.dial(ma(g0.addr))
        yield* g1.dial(a.host.addrs()[0]!.toString())
        yield* b.host.dial(ma(g1.addr))
        const idA = a.host.peerId.toString()
        const idB = b.host.peerId.toString()
        yield* until(Effect.sync(() => a.gossipsub.mesh(TOPIC).length === 2))
        yield* until(Effect.map(ps1.mesh(TOPIC), (m) => m.includes(idA) && m.includes(idB)))

        const big = (tag: string) => tag + ":" + "x".repeat(4096)
        const gotA = yield* Effect.forkChild(Stream.runCollect(Stream.take(subA, 2)))
        const gotB = yield* Effect.forkChild(Stream.runCollect(Stream.take(subB, 2)))
        yield* ps0.publish(TOPIC, big("g0"))
        yield* b.pubsub.publish(TOPIC, encode(big("b")))
        yield* a.pubsub.publish(TOPIC, encode(big("a")))
        const tags = (ms: ReadonlyArray<{ readonly data: Uint8Array }>) =>
          ms.map((m) => decode(m.data).split(":")[0]).sort()
        expect(tags(yield* Fiber.join(gotA))).toEqual(["b", "g0"])
        expect(tags(yield* Fiber.join(gotB))).toEqual(["a", "g0"])
        yield* ps0.awaitMessage(big("a"), { timeout: "10 seconds" })
        yield* ps0.awaitMessage(big("b"), { timeout: "10 seconds" })
        yield* ps1.awaitMessage(big("a"), { timeout: "10 seconds" })
        yield* ps1.awaitMessage(big("g0"), { timeout: "10 seconds" })
        // once each: no duplicate deliveries on go
        const texts = (yield* ps1.messages).map((m) => m.text.split(":")[0]).sort()
        expect(texts).toEqual(["a", "b", "g0"])
        // g1 got a's message and told b, its other mesh peer, IDONTWANT; a told g1 of g0's
        yield* until(Effect.sync(() => b.gossipsub.idontwantStats().received >= 1))
        yield* until(Effect.sync(() => a.gossipsub.idontwantStats().sent >= 1))
      }),
    60_000
  )

  it.live(
    "gossipsub-v1.1 §P4: a go peer publishing invalid messages loses score on our side and leaves our mesh",
    () =>
      Effect.gen(function*() {
        const scoreLayer = PeerScore.layer({
          topics: { [TOPIC]: PeerScore.topicParams({ invalidMessageDeliveriesWeight: -100 }) }
        })
        const a = yield* Effect.map(
          tcpPubsubNode(
            Gossipsub.layerWithScore({ heartbeatInterval: "200 millis" }).pipe(Layer.provideMerge(scoreLayer))
          ),
          (n) => ({ ...n, gossipsub: Context.get(n.context, Gossipsub.Gossipsub) })
        )
        const go = yield* goGossip()
        const goPs = JsPeer.pubsubOf(go)
        const goId = Result.getOrThrow(PeerId.fromString(go.peerId))
        const score = Context.get(a.context, PeerScore.PeerScore)
        yield* goPs.subscribe(TOPIC)
        yield* a.pubsub.subscribe(TOPIC)
        yield* a.pubsub.addValidator(TOPIC, (m) => Effect.succeed(decode(m.data) === "invalid" ? "Reject" : "Accept"))
        yield* a.host.dial(ma(go.addr))
        yield* until(Effect.sync(() => a.gossipsub.mesh(TOPIC).some((p) => PeerId.equals(p, goId))))
        // go publishes once, to the subscribers it knows: wait until it knows us (our subscription can
        // reach go after go's reached us and we grafted it)
        const ourId = a.host.peerId.toString()
        yield* until(Effect.map(goPs.peers(TOPIC), (p) => p.includes(ourId)))
        expect(score.score(goId)).toBe(0)
        yield* goPs.publish(TOPIC, "invalid")
        yield* until(Effect.sync(() => score.score(goId) < 0))
        yield* until(Effect.sync(() => !a.gossipsub.mesh(TOPIC).some((p) => PeerId.equals(p, goId))))
      }),
    60_000
  )
})
