/**
 * `GET /api/status` (issue 16 item 3, ARCHITECTURE §7): the node's identity,
 * addresses and every connection with its streams; sections contributed
 * through `StatusSections` while their registration's scope lasts (how Kad's
 * routing table and pubsub's meshes will appear).
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as HttpStatus from "../../src/observability/HttpStatus.ts"
import { StatusSections } from "../../src/observability/Status.ts"
import { ma } from "../support/multiaddr.ts"
import { servicesOf, tcpNode } from "../support/node.ts"
import { get } from "./support.ts"

const status = (url: string) => Effect.map(get(`${url}api/status`), (r) => JSON.parse(r.body))

describe("/api/status", () => {
  it.live(
    "identity, addresses, connections with direction, security, muxer, age and open streams",
    () =>
      Effect.gen(function*() {
        const ctx = yield* Layer.buildWithScope(
          Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] }),
          yield* Effect.scope
        )
        const a = servicesOf(ctx)
        const server = yield* Effect.provideContext(HttpStatus.serve({ listen: ma("/ip4/127.0.0.1/tcp/0") }), ctx)
        const b = yield* tcpNode()
        yield* a.registrar.handle("/test/hold/1.0.0", () => Effect.never)
        yield* b.host.newStream(a.addr, ["/test/hold/1.0.0"], { lazy: false })
        const st = yield* status(server.url)
        expect(st.peerId).toBe(PeerId.toString(a.host.peerId))
        expect(st.addrs).toEqual(a.host.addrs().map(Multiaddr.toString))
        expect(st.connections).toHaveLength(1)
        const c = st.connections[0]
        expect(c).toMatchObject({
          peerId: PeerId.toString(b.host.peerId),
          direction: "inbound",
          security: "/noise",
          muxer: "/yamux/1.0.0"
        })
        expect(c.addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
        expect(c.ageMs).toBeGreaterThanOrEqual(0)
        expect(c.streams).toContainEqual(
          expect.objectContaining({ protocol: "/test/hold/1.0.0", direction: "inbound" })
        )
        expect(st.totals.connections).toBe(1)

        // a section shows while its registration lives
        const sections = Context.get(ctx, StatusSections)
        const scope = yield* Scope.make()
        yield* Scope.provide(sections.register("routingTable", Effect.succeed({ size: 3 })), scope)
        expect((yield* status(server.url)).sections).toEqual({ routingTable: { size: 3 } })
        yield* Scope.close(scope, Exit.void)
        expect((yield* status(server.url)).sections).toEqual({})
      }),
    60_000
  )
})
