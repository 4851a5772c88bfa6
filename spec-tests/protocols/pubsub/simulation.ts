/**
 * A gossipsub network with misbehaving peers on the memory transport under
 * TestClock, reproducible from a seed (gossipsub-v1.1 §Peer Scoring, §P₄).
 *
 * `nodes` nodes, each dialing `degree` earlier nodes picked by a seeded PRNG
 * (a connected graph). A fraction `misbehaving` of them (picked by the same
 * PRNG) runs the zero score and misbehaves in one of two ways: `invalid`
 * publishes invalid messages every round; `silent` receives but never
 * forwards (its validator Ignores everything, so nothing is relayed). The
 * honest nodes run the v1.1 score function with a heavy P₄ weight and a topic
 * validator that rejects invalid messages; against `silent` nodes also a P₃
 * mesh-delivery deficit and a sticky P₃b penalty (active 10 s after a graft,
 * once publishing began), which push them out of honest meshes and graylist
 * those that were meshed (a peer never in the mesh is not expected to forward,
 * so it is not penalised: `graylisted` stays below 1 there). After warm-up, every round some
 * honest nodes publish valid messages (and every `invalid` node an invalid
 * one); a heartbeat interval passes between rounds.
 *
 * Measured: the share of valid messages that reached every honest subscriber
 * (delivery), invalid messages delivered to honest applications (must be 0),
 * the share of honest mesh slots held by misbehaving peers at the start of
 * publishing and at the end (P₄ should push them out), the share of
 * misbehaving neighbours that honest nodes score below the graylist
 * threshold, and the honest nodes' mesh degrees (at the end, and the
 * min/mean/max over the heartbeats of the run). Per valid message and honest
 * subscriber: the propagation latency in virtual time since publish and the
 * hop count (each node's first sender, followed back to the publisher: no
 * wire change). Per published message and honest node: duplicates received
 * and control bytes sent (`Gossipsub.stats`, during the publishing rounds).
 *
 * Run small in `Simulation.test.ts` and large by `npm run sim -- gossipsub`.
 */
import { Clock, Context, Effect, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as PeerId from "../../../src/core/PeerId.ts"
import * as Gossipsub from "../../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import * as PeerScore from "../../../src/protocols/pubsub/gossipsub/PeerScore.ts"
import { prng } from "../../support/bytes.ts"
import { type Distribution, distribution } from "../../support/distribution.ts"
import { decode, pubsubNode, text } from "../../support/pubsub.ts"

export interface GossipsubSimulationOptions {
  readonly nodes: number
  readonly seed: number
  /** Fraction of misbehaving nodes (0.1 = 10 %). */
  readonly misbehaving: number
  /** Earlier nodes each node dials (default 4). */
  readonly degree?: number
  /** Publishing rounds after warm-up (default 10). */
  readonly rounds?: number
  /** Honest publishers per round (default 3). */
  readonly publishersPerRound?: number
  /** How misbehaving nodes misbehave (default `invalid`). */
  readonly misbehaviour?: Misbehaviour
}

/** `invalid`: publish invalid messages; `silent`: receive but never forward. */
export type Misbehaviour = "invalid" | "silent"

export interface GossipsubSimulationResult {
  readonly nodes: number
  readonly seed: number
  readonly misbehaviour: Misbehaviour
  readonly misbehaving: number
  readonly validPublished: number
  /** Valid messages received by honest subscribers / (valid published × honest subscribers other than the publisher). */
  readonly delivery: number
  /** Invalid messages handed to honest applications (the validator must stop every one). */
  readonly invalidDelivered: number
  /** Honest mesh slots held by misbehaving peers when publishing starts, and at the end. */
  readonly badMeshShareStart: number
  readonly badMeshShareEnd: number
  /** (honest node, connected misbehaving peer) pairs where the honest node scores the peer below its graylist threshold, at the end. */
  readonly graylisted: number
  /** Honest nodes' mesh sizes at the end. */
  readonly meshDegree: { readonly min: number; readonly mean: number; readonly max: number }
  /** Honest nodes' mesh sizes after each heartbeat of the run: the least, the mean and the largest. */
  readonly meshDegreeOverRun: { readonly min: number; readonly mean: number; readonly max: number }
  /** Virtual milliseconds from publish to delivery, per (valid message, honest subscriber). */
  readonly latencyMs: Distribution
  /** Hops from the publisher, per (valid message, honest subscriber). */
  readonly hops: Distribution
  /** Duplicates received per published message per honest node, during the rounds. */
  readonly duplicatesPerMessage: number
  /** Encoded control bytes sent per published message per honest node, during the rounds. */
  readonly controlBytesPerMessage: number
}

const TOPIC = "sim"

/** Needs a MemoryNetwork and a Scope; provides its own TestClock. */
export const gossipsubSimulation = (options: GossipsubSimulationOptions) =>
  Effect.gen(function*() {
    const { nodes: count, seed } = options
    const degree = options.degree ?? 4
    const rounds = options.rounds ?? 10
    const perRound = options.publishersPerRound ?? 3
    const misbehaviour = options.misbehaviour ?? "invalid"
    const next = prng(seed)
    const rand = (n: number) => next() % n
    const bad = new Set<number>()
    const badCount = Math.floor(count * options.misbehaving)
    while (bad.size < badCount) bad.add(rand(count))

    const params = { heartbeatInterval: "1 second", heartbeatInitialDelay: "100 millis" } as const
    const scoreLayer = PeerScore.layer({
      topics: {
        [TOPIC]: PeerScore.topicParams({
          invalidMessageDeliveriesWeight: -100,
          // P₃/P₃b: a mesh peer that delivers nothing once active falls below the graylist
          // threshold; active only after publishing began, so honest quiet warm-up costs nothing
          ...(misbehaviour === "silent" ?
            {
              meshMessageDeliveriesWeight: -100,
              meshMessageDeliveriesThreshold: 1,
              meshMessageDeliveriesCap: 20,
              meshMessageDeliveriesDecay: 0.9,
              meshMessageDeliveriesActivation: "10 seconds",
              meshMessageDeliveriesWindow: "10 millis",
              meshFailurePenaltyWeight: -200,
              meshFailurePenaltyDecay: 0.99
            } :
            {})
        })
      }
    })
    const nodes = yield* Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
      Effect.map(
        pubsubNode(
          bad.has(i)
            ? Gossipsub.layer(params)
            : Gossipsub.layerWithScore(params).pipe(Layer.provideMerge(scoreLayer)),
          // plaintext: the simulation is about the router; encryption would only cost CPU (see kad/simulation.ts)
          { yamux: { enableKeepAlive: false }, security: ["plaintext"] }
        ),
        (node) => ({ ...node, gs: Context.get(node.context, Gossipsub.Gossipsub) })
      ))
    const badIds = new Set([...bad].map((i) => nodes[i]!.host.peerId.toString()))
    const indexOf = new Map(nodes.map((n, i) => [n.host.peerId.toString(), i]))
    let received = 0
    let invalidDelivered = 0
    const validReceived = nodes.map(() => 0)
    /** message text → publisher and virtual publish time */
    const published = new Map<string, { readonly from: number; readonly at: number }>()
    /** per node: message text → index of the peer it first came from */
    const firstFrom = nodes.map(() => new Map<string, number>())
    const latencies: Array<number> = []
    for (const [i, node] of nodes.entries()) {
      if (!bad.has(i)) {
        yield* node.pubsub.addValidator(
          TOPIC,
          (m) => Effect.succeed(decode(m.data).startsWith("bad") ? "Reject" : "Accept")
        )
      } else if (misbehaviour === "silent") {
        yield* node.pubsub.addValidator(TOPIC, () => Effect.succeed("Ignore"))
      }
      const sub = yield* node.pubsub.subscribe(TOPIC)
      yield* Effect.forkScoped(Stream.runForEach(sub, (m) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          received++
          const body = decode(m.data)
          const from = indexOf.get(m.receivedFrom.toString())
          if (from !== undefined) firstFrom[i]!.set(body, from)
          if (bad.has(i)) return
          if (body.startsWith("bad")) invalidDelivered++
          else {
            validReceived[i]!++
            const p = published.get(body)
            if (p !== undefined) latencies.push(now - p.at)
          }
        })))
    }
    for (let i = 1; i < count; i++) {
      const targets = new Set<number>([i - 1])
      for (let d = 1; d < degree && d < i; d++) targets.add(rand(i))
      for (const j of targets) yield* nodes[i]!.host.dial(nodes[j]!.addr)
    }

    // real time for in-flight RPCs: until nothing new arrives for three checks in a row
    const settle = Effect.gen(function*() {
      let last = -1
      let quiet = 0
      while (quiet < 3) {
        yield* TestClock.withLive(Effect.sleep(`${Math.max(10, Math.ceil(count / 20))} millis`))
        if (received === last) quiet++
        else quiet = 0
        last = received
      }
    })
    const badMeshShare = () => {
      let slots = 0
      let held = 0
      for (const [i, node] of nodes.entries()) {
        if (bad.has(i)) continue
        for (const p of node.gs.mesh(TOPIC)) {
          slots++
          if (badIds.has(PeerId.toString(p))) held++
        }
      }
      return slots === 0 ? 0 : held / slots
    }
    const honest = nodes.map((_, i) => i).filter((i) => !bad.has(i))
    const runDegrees: Array<number> = []
    const heartbeat = Effect.andThen(TestClock.adjust("1 second"), settle)
    const tick = Effect.tap(heartbeat, () =>
      Effect.sync(() => {
        for (const i of honest) runDegrees.push(nodes[i]!.gs.mesh(TOPIC).length)
      }))
    const honestStats = () =>
      honest.reduce(
        (acc, i) => {
          const s = nodes[i]!.gs.stats()
          return { duplicates: acc.duplicates + s.duplicates, controlBytes: acc.controlBytes + s.controlBytes }
        },
        { duplicates: 0, controlBytes: 0 }
      )

    for (let r = 0; r < 5; r++) yield* tick
    const badMeshShareStart = badMeshShare()
    const statsStart = honestStats()
    let validPublished = 0
    let allPublished = 0
    let expected = 0
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < perRound; k++) {
        const from = honest[rand(honest.length)]!
        const body = `good ${r} ${k} from ${from}`
        published.set(body, { from, at: yield* Clock.currentTimeMillis })
        yield* nodes[from]!.pubsub.publish(TOPIC, text(body))
        validPublished++
        expected += honest.length - 1
      }
      allPublished += perRound
      if (misbehaviour === "invalid") {
        for (const i of bad) yield* Effect.ignore(nodes[i]!.pubsub.publish(TOPIC, text(`bad ${r} from ${i}`)))
        allPublished += bad.size
      }
      yield* settle
      yield* tick
    }
    const statsEnd = honestStats()
    for (let r = 0; r < 3; r++) yield* tick
    const total = validReceived.reduce((a, b) => a + b, 0)
    let pairs = 0
    let below = 0
    const degrees: Array<number> = []
    for (const i of honest) {
      const node = nodes[i]!
      degrees.push(node.gs.mesh(TOPIC).length)
      const score = Context.getOption(node.context, PeerScore.PeerScore)
      if (score._tag === "None") continue
      for (const p of node.pubsub.peers(TOPIC)) {
        if (!badIds.has(PeerId.toString(p))) continue
        pairs++
        if (score.value.score(p) < score.value.thresholds.graylistThreshold) below++
      }
    }
    const hopCounts: Array<number> = []
    for (const [body, { from }] of published) {
      for (const i of honest) {
        if (i === from || !firstFrom[i]!.has(body)) continue
        let at = i
        let n = 0
        while (at !== from && n <= count) {
          const prev = firstFrom[at]!.get(body)
          if (prev === undefined) break
          at = prev
          n++
        }
        if (at === from) hopCounts.push(n)
      }
    }
    const perNodeMessage = Math.max(1, allPublished * honest.length)
    return {
      nodes: count,
      seed,
      misbehaviour,
      misbehaving: bad.size,
      validPublished,
      delivery: expected === 0 ? 1 : total / expected,
      invalidDelivered,
      badMeshShareStart,
      badMeshShareEnd: badMeshShare(),
      graylisted: pairs === 0 ? 1 : below / pairs,
      meshDegree: {
        min: Math.min(...degrees),
        mean: degrees.reduce((a, b) => a + b, 0) / Math.max(1, degrees.length),
        max: Math.max(...degrees)
      },
      meshDegreeOverRun: {
        min: Math.min(...runDegrees),
        mean: runDegrees.reduce((a, b) => a + b, 0) / Math.max(1, runDegrees.length),
        max: Math.max(...runDegrees)
      },
      latencyMs: distribution(latencies),
      hops: distribution(hopCounts),
      duplicatesPerMessage: (statsEnd.duplicates - statsStart.duplicates) / perNodeMessage,
      controlBytesPerMessage: (statsEnd.controlBytes - statsStart.controlBytes) / perNodeMessage
    } satisfies GossipsubSimulationResult
  }).pipe(Effect.provide(TestClock.layer()))
