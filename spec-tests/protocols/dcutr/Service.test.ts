/**
 * The DCUtR service on real nodes (relay/DCUtR.md §The Protocol: "upon
 * observing the new connection … over a relay connection"): it only ever
 * works on relayed connections. `upgrade` of a direct connection fails
 * `NotRelayed`; a `/libp2p/dcutr` stream on a direct connection is reset by
 * the responder, which dials nothing; a direct connection starts nothing.
 * The upgrade itself, through NATs, is `DcutrNat.test.ts`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Fiber, Layer, Stream } from "effect"
import * as Nodes from "../../../layers/Node.ts"
import * as Duplex from "../../../src/core/Duplex.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import * as Dcutr from "../../../src/protocols/dcutr/Dcutr.ts"
import * as Messages from "../../../src/protocols/dcutr/messages.ts"
import { ma } from "../../support/multiaddr.ts"
import { servicesOf } from "../../support/node.ts"

const dcutrNode = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const context = yield* Layer.buildWithScope(
    Dcutr.layer({ addresses: Effect.succeed([ma("/ip4/1.2.3.4/tcp/4001")]) }).pipe(
      Layer.provideMerge(Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")], tcp: { reusePort: true } }))
    ),
    scope
  )
  return { ...servicesOf(context), dcutr: Context.get(context, Dcutr.Dcutr) }
})

describe("DCUtR service", () => {
  it.live("DCUtR §The Protocol: upgrading a direct connection fails NotRelayed", () =>
    Effect.gen(function*() {
      const a = yield* dcutrNode
      const b = yield* dcutrNode
      const conn = yield* b.host.dial(a.addr)
      const err = yield* Effect.flip(b.dcutr.upgrade(conn))
      expect(err._tag).toBe("DcutrError")
      expect(err.reason).toBe("NotRelayed")
    }).pipe(Effect.scoped))

  it.live("DCUtR §The Protocol: a hole punch asked over a direct connection is reset, nothing dialed or reported", () =>
    Effect.gen(function*() {
      const a = yield* dcutrNode
      const b = yield* dcutrNode
      const events = yield* a.dcutr.subscribe
      const seen = yield* Effect.forkChild(Stream.runHead(events))
      const conn = yield* b.host.dial(a.addr)
      const answer = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
        const stream = yield* conn.newStream([Dcutr.PROTOCOL])
        yield* LengthPrefixed.write(
          stream,
          Messages.encode({ type: Messages.CONNECT, addrs: [ma("/ip4/5.6.7.8/tcp/4002")] })
        )
        return yield* stream.read
      })))
      // reset (an error, maybe already while negotiating) or ended (EOF): never a CONNECT back
      if (answer._tag === "Success") expect(answer.value).toEqual(Duplex.EOF)
      yield* Effect.sleep(Duration.millis(200))
      expect(seen.pollUnsafe()).toBeUndefined()
      yield* Fiber.interrupt(seen)
      expect(a.host.connections(b.identity.peerId)).toHaveLength(1)
    }).pipe(Effect.scoped))
})
