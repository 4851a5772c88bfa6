/**
 * The honest side of the abuse tests (spec-tests/abuse/, issue 23): while an
 * attacker misbehaves, an honest peer of ours pings the node under attack on
 * its connection and fresh honest peers open new connections to it. Every
 * ping must come back within 2 s and every fresh connection must succeed.
 *
 * Honest peers dial from 127.0.0.1 (the kernel picks the source address of
 * the destination, 127.0.0.1); attackers connect from 127.0.1.x (see
 * `connect`'s `localAddress`): on Linux all of 127.0.0.0/8 is loopback, and
 * 127.0.1.0/24 is another /24 than 127.0.0.0/24, so the per-IP and
 * per-subnet shares of the node's transient pools tell them apart, as they
 * would two hosts on the internet.
 */
import { Duration, Effect, Fiber } from "effect"
import type * as Multiaddr from "../../src/core/Multiaddr.ts"
import type * as PeerId from "../../src/core/PeerId.ts"
import { tcpNode, type TestNode } from "./node.ts"

/** The `i`th attacker source address, in 127.0.1.0/24 (Linux loopback answers on all of 127.0.0.0/8). */
export const ATTACKER_IP = (i: number) => `127.0.1.${1 + (i % 250)}`

export interface HonestTally {
  readonly pings: { ok: number; failed: Array<string>; slowest: number }
  readonly fresh: { ok: number; failed: Array<string> }
}

/**
 * Run the honest load for `duration`: `client` pings `target` every 200 ms
 * (2 s deadline each), and every `freshEvery` a fresh node dials `addr` and
 * pings once (2 s deadline for the ping, 10 s for the dial on a loaded
 * machine). Returns the tally.
 */
export const honestLoad = (
  client: TestNode,
  target: PeerId.PeerId,
  addr: Multiaddr.Multiaddr,
  options: { readonly duration: Duration.Input; readonly freshEvery?: Duration.Input }
) =>
  Effect.gen(function*() {
    const tally: HonestTally = { pings: { ok: 0, failed: [], slowest: 0 }, fresh: { ok: 0, failed: [] } }
    const pinging = Effect.forever(
      Effect.andThen(
        client.ping.ping(target).pipe(
          Effect.timed,
          Effect.timeout("2 seconds"),
          Effect.match({
            onSuccess: ([elapsed]) => {
              tally.pings.ok++
              tally.pings.slowest = Math.max(tally.pings.slowest, Duration.toMillis(elapsed))
            },
            onFailure: (e) => void tally.pings.failed.push(String(e))
          })
        ),
        Effect.sleep("200 millis")
      )
    )
    const fresh = Effect.forever(
      Effect.andThen(
        Effect.scoped(
          Effect.gen(function*() {
            const node = yield* tcpNode()
            yield* node.host.dial(addr).pipe(Effect.timeout("10 seconds"))
            yield* node.ping.ping(target).pipe(Effect.timeout("2 seconds"))
          })
        ).pipe(
          Effect.match({
            onSuccess: () => void tally.fresh.ok++,
            onFailure: (e) => void tally.fresh.failed.push(String(e))
          })
        ),
        Effect.sleep(options.freshEvery ?? "1 second")
      )
    )
    const fibers = [yield* Effect.forkChild(pinging), yield* Effect.forkChild(fresh)]
    yield* Effect.sleep(options.duration)
    yield* Fiber.interruptAll(fibers)
    return tally
  })
