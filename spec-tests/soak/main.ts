/**
 * `npm run soak -- [--duration 1h] [--sample 10s] [--out file.jsonl]`: one
 * node (TCP + Noise + Yamux, default limits) under mixed honest and abusive
 * load for `duration` (issue 23, part 5; not in CI), sampling its memory,
 * file descriptors and fibers. Load, all at once, from loopback:
 *
 * - honest: 4 connected peers ping every 200 ms (2 s deadline); a fresh peer
 *   dials and pings every second;
 * - attack 1: a connection from 127.0.1.1 opening 50 never-negotiated yamux
 *   streams every 200 ms (a new identity every 30 s);
 * - attack 2: 150 loops from 127.0.1.2–3 sending a Noise message 1 and
 *   stalling, reconnecting when dropped (more than the per-IP share, 64);
 * - attack 3: a peer pushing identify messages with 780 new addresses every
 *   100 ms;
 * - garbage: 20 connections a second from 127.0.2.1 sending 1 KiB of random
 *   bytes.
 *
 * Fibers are counted with a `Metric.FiberRuntimeMetrics` service provided to
 * the node (child fibers started minus ended). The summary compares the
 * samples after the warm-up (the first fifth) — flat means no growth.
 */
import { Duration, Effect, Exit, Fiber, Metric, Scope } from "effect"
import * as Fs from "node:fs"
import * as Keys from "../../src/core/Keys.ts"
import * as LengthPrefixed from "../../src/core/LengthPrefixed.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Frame from "../../src/muxer/yamux/frame.ts"
import * as Identify from "../../src/protocols/identify/Identify.ts"
import * as Noise from "../../src/security/Noise.ts"
import { honestLoad } from "../support/abuse.ts"
import { connect, negotiate, noiseFrame, noiseInitiator, randomBytes, yamuxFrame } from "../support/attacker.ts"
import { tcpNode } from "../support/node.ts"

const args = process.argv.slice(2)
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name)
  return i < 0 ? fallback : args[i + 1] ?? fallback
}
const durationOf = (text: string): Duration.Duration => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text)
  if (m === null) throw new Error(`bad duration ${text} (e.g. 90s, 5m, 1h)`)
  const n = Number(m[1])
  return m[2] === "h"
    ? Duration.hours(n)
    : m[2] === "m"
    ? Duration.minutes(n)
    : m[2] === "s"
    ? Duration.seconds(n)
    : Duration.millis(n)
}
const duration = durationOf(flag("--duration", "1h"))
const sampleEvery = durationOf(flag("--sample", "10s"))
const out = flag("--out", "")

const fibers = { active: 0, started: 0 }
const fiberMetrics: Metric.FiberRuntimeMetricsService = {
  recordFiberStart: () => {
    fibers.active++
    fibers.started++
  },
  recordFiberEnd: () => void fibers.active--
}

const fds = () => {
  try {
    return Fs.readdirSync("/proc/self/fd").length
  } catch {
    return -1
  }
}
const MiB = 1024 * 1024

/** Run `body` forever, one iteration in its own scope, failures ignored, `pause` between. */
const loop = <E>(body: Effect.Effect<void, E, Scope.Scope>, pause: Duration.Input) =>
  Effect.forever(Effect.andThen(Effect.ignore(Effect.scoped(body)), Effect.sleep(pause)))

const program = Effect.gen(function*() {
  const victim = yield* tcpNode()
  console.log(
    `soak: victim ${victim.addr.toString()} for ${Duration.format(duration)}, sampling every ${
      Duration.format(sampleEvery)
    }`
  )
  const load: Array<Fiber.Fiber<unknown, unknown>> = []
  const counters = { streams: 0, stalls: 0, pushes: 0, garbage: 0 }

  // honest load: 4 connected peers pinging, fresh peers connecting
  const honest = yield* Effect.forEach([0, 1, 2, 3], () => tcpNode())
  for (const h of honest) yield* h.host.dial(victim.addr)
  const tallies = yield* Effect.forEach(honest, (h, i) =>
    Effect.gen(function*() {
      const tally = {
        pings: { ok: 0, failed: [] as Array<string>, slowest: 0 },
        fresh: { ok: 0, failed: [] as Array<string> }
      }
      load.push(
        yield* Effect.forkScoped(Effect.forever(Effect.map(
          honestLoad(h, victim.host.peerId, victim.addr, {
            duration: "10 seconds",
            freshEvery: i === 0 ? "1 second" : "1 hour"
          }),
          (t) => {
            tally.pings.ok += t.pings.ok
            tally.pings.failed.push(...t.pings.failed.slice(0, 5))
            tally.pings.slowest = Math.max(tally.pings.slowest, t.pings.slowest)
            tally.fresh.ok += t.fresh.ok
            tally.fresh.failed.push(...t.fresh.failed.slice(0, 5))
          }
        )))
      )
      return tally
    }))

  // attack 1: never-negotiated streams
  load.push(
    yield* Effect.forkScoped(loop(
      Effect.gen(function*() {
        const identity = yield* Keys.generate("Ed25519")
        const attacker = yield* connect(victim.addr, { localAddress: "127.0.1.1" })
        const session = yield* noiseInitiator(attacker, { identity })
        let next = 1
        const until = Date.now() + 30_000
        while (Date.now() < until && !attacker.isClosed()) {
          const frames: Array<Uint8Array> = []
          for (let i = 0; i < 50; i++, next += 2) {
            frames.push(yamuxFrame(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, next, 0))
          }
          yield* session.send(Buffer.concat(frames))
          counters.streams += 50
          yield* Effect.sleep("200 millis")
        }
      }),
      "100 millis"
    ))
  )

  // attack 2: stalled Noise handshakes
  for (let i = 0; i < 150; i++) {
    load.push(
      yield* Effect.forkScoped(loop(
        Effect.gen(function*() {
          const attacker = yield* connect(victim.addr, { localAddress: `127.0.1.${2 + (i % 2)}` })
          counters.stalls++
          yield* negotiate(attacker, Noise.PROTOCOL)
          yield* attacker.send(noiseFrame(randomBytes(32, i)))
          yield* attacker.closed
        }),
        "50 millis"
      ))
    )
  }

  // attack 3: identify pushes with new addresses
  const pusher = yield* tcpNode()
  yield* pusher.host.dial(victim.addr)
  let n = 0
  load.push(
    yield* Effect.forkScoped(loop(
      Effect.gen(function*() {
        const listenAddrs: Array<Uint8Array> = []
        for (let i = 0; i < 780; i++, n++) {
          listenAddrs.push(
            Multiaddr.toBytes(
              Multiaddr.fromBytes(new Uint8Array([4, 10, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff, 6, 4, 0])).pipe(
                (r) => r._tag === "Success" ? r.success : Multiaddr.empty
              )
            )
          )
        }
        const stream = yield* pusher.host.newStream(victim.host.peerId, [Identify.PUSH_PROTOCOL], { lazy: false })
        yield* LengthPrefixed.write(stream, Identify.IdentifyMessage.encode({ listenAddrs, protocols: [] }))
        yield* stream.closeWrite
        yield* stream.read
        counters.pushes++
      }),
      "100 millis"
    ))
  )

  // garbage connections
  load.push(
    yield* Effect.forkScoped(loop(
      Effect.gen(function*() {
        const attacker = yield* connect(victim.addr, { localAddress: "127.0.2.1" })
        counters.garbage++
        yield* attacker.send(randomBytes(1024, counters.garbage))
        yield* Effect.sleep("20 millis")
      }),
      "50 millis"
    ))
  )

  // sampling
  const started = Date.now()
  const samples: Array<Record<string, number>> = []
  const end = started + Duration.toMillis(duration)
  while (Date.now() < end) {
    yield* Effect.sleep(sampleEvery)
    const mem = process.memoryUsage()
    const rm = victim.resourceManager.stats()
    const s = {
      t: Math.round((Date.now() - started) / 1000),
      heapMiB: +(mem.heapUsed / MiB).toFixed(1),
      rssMiB: +(mem.rss / MiB).toFixed(1),
      fds: fds(),
      fibers: fibers.active,
      connections: victim.host.connections().length,
      transientConns: rm.transient.connectionsInbound,
      transientStreams: rm.transient.streamsInbound,
      peers: victim.peerstore.size(),
      pingsOk: tallies.reduce((a, t) => a + t.pings.ok, 0),
      pingsFailed: tallies.reduce((a, t) => a + t.pings.failed.length, 0),
      slowestPingMs: Math.round(Math.max(...tallies.map((t) => t.pings.slowest))),
      freshOk: tallies[0]!.fresh.ok,
      freshFailed: tallies[0]!.fresh.failed.length,
      ...counters
    }
    samples.push(s)
    console.log(JSON.stringify(s))
    if (out !== "") Fs.appendFileSync(out, `${JSON.stringify(s)}\n`)
  }
  yield* Fiber.interruptAll(load)
  const warm = samples.slice(Math.floor(samples.length / 5))
  const range = (k: string) => {
    const xs = warm.map((s) => s[k]!)
    return `${Math.min(...xs)}–${Math.max(...xs)}`
  }
  const last = samples[samples.length - 1]!
  console.log(
    `soak summary after warm-up (${warm.length} samples): heap ${range("heapMiB")} MiB, rss ${
      range("rssMiB")
    } MiB, fds ${range("fds")}, fibers ${range("fibers")}, connections ${
      range("connections")
    }; honest pings ok ${last.pingsOk}, failed ${last.pingsFailed} (slowest ${last.slowestPingMs} ms), fresh connections ok ${last.freshOk}, failed ${last.freshFailed}; attacker streams ${last.streams}, stalled handshakes ${last.stalls}, pushes ${last.pushes}, garbage connections ${last.garbage}`
  )
  for (const t of tallies) {
    if (t.pings.failed.length > 0) console.log(`ping failures: ${t.pings.failed.slice(0, 3).join("; ")}`)
  }
  if (tallies[0]!.fresh.failed.length > 0) {
    console.log(`fresh failures: ${tallies[0]!.fresh.failed.slice(0, 3).join("; ")}`)
  }
})

const main = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const exit = yield* Effect.exit(Scope.provide(program, scope))
  yield* Scope.close(scope, Exit.void)
  return exit
}).pipe(Effect.provideService(Metric.FiberRuntimeMetrics, fiberMetrics))

Effect.runPromise(main).then((exit) => {
  if (exit._tag === "Failure") console.error(exit.cause)
  process.exit(exit._tag === "Success" ? 0 : 1)
})
