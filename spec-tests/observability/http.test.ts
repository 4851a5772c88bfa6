/**
 * The status server's rules (issue 16 "Bad input", ARCHITECTURE §7): loopback
 * unless public, only GET/HEAD on its paths (405 with Allow, 404 elsewhere), no
 * request bodies (413), capped headers (431), sockets and concurrent requests;
 * a slow client (headers dribbled in, or a response never read) holds nothing
 * of the node and is cut off.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import * as Net from "node:net"
import * as Nodes from "../../layers/Node.ts"
import * as HttpStatus from "../../src/observability/HttpStatus.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpNode } from "../support/node.ts"
import { get, httpNode, raw } from "./support.ts"

describe("status server HTTP rules (issue 16 Bad input)", () => {
  it.live(
    "GET on /, /metrics, /api/status, /favicon.ico: 200 with their content types; HEAD too",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode()
        const page = yield* get(a.url)
        expect(page.status).toBe(200)
        expect(page.headers.get("content-type")).toMatch(/^text\/html/)
        expect(page.body).toContain("<title>effect-libp2p node</title>")
        const status = yield* get(`${a.url}api/status`)
        expect(status.headers.get("content-type")).toMatch(/^application\/json/)
        expect(JSON.parse(status.body)).toMatchObject({ connections: [], sections: {} })
        const icon = yield* get(`${a.url}favicon.ico`)
        expect(icon.status).toBe(200)
        expect(icon.headers.get("content-type")).toBe("image/svg+xml")
        expect((yield* get(`${a.url}metrics`, { method: "HEAD" })).status).toBe(200)
        expect((yield* get(`${a.url}metrics?x=1`)).status).toBe(200)
      }),
    60_000
  )

  it.live(
    "another method on a served path is 405 with Allow: GET, HEAD; any other path is 404",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode()
        for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
          for (const path of ["", "metrics", "api/status"]) {
            const r = yield* get(`${a.url}${path}`, { method })
            expect(r.status, `${method} /${path}`).toBe(405)
            expect(r.headers.get("allow")).toBe("GET, HEAD")
          }
        }
        for (const path of ["nope", "api", "api/status/", "metrics/x", "../etc/passwd", "index.html"]) {
          expect((yield* get(`${a.url}${path}`)).status, path).toBe(404)
        }
      }),
    60_000
  )

  it.live(
    "a GET with a body is 413 and the connection is closed; oversized headers are 431",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode({ maxHeaderBytes: 4096 })
        const withBody = yield* raw(
          a.port,
          "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        )
        expect(withBody.response).toMatch(/^HTTP\/1\.1 413 /)
        expect(withBody.closed).toBe(true)
        const chunked = yield* raw(
          a.port,
          "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
        )
        expect(chunked.response).toMatch(/^HTTP\/1\.1 413 /)
        const big = yield* raw(a.port, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(8192)}\r\n\r\n`)
        expect(big.response).toMatch(/^HTTP\/1\.1 431 /)
      }),
    60_000
  )

  it.live(
    "loopback only: a non-loopback address fails NotLoopback unless public; a non-TCP address BadAddress",
    () =>
      Effect.gen(function*() {
        const ctx = yield* Layer.buildWithScope(Nodes.Default({ listen: [] }), yield* Effect.scope)
        const serve = (o: HttpStatus.HttpStatusOptions) => Effect.provideContext(HttpStatus.serve(o), ctx)
        const refused = yield* Effect.flip(serve({ listen: ma("/ip4/0.0.0.0/tcp/0") }))
        expect(refused.reason).toBe("NotLoopback")
        const bad = yield* Effect.flip(serve({ listen: ma("/unix/tmp/x.sock") }))
        expect(bad.reason).toBe("BadAddress")
        const open = yield* serve({ listen: ma("/ip4/0.0.0.0/tcp/0"), public: true })
        expect(open.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+\/$/)
        const six = yield* serve({ listen: ma("/ip6/::1/tcp/0") })
        expect(six.url).toMatch(/^http:\/\/\[::1\]:\d+\/$/)
      }),
    60_000
  )

  it.live(
    "caps: beyond maxConnections sockets are dropped; beyond maxConcurrentRequests the answer is 503",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode({ maxConnections: 2, maxConcurrentRequests: 0 })
        expect((yield* get(`${a.url}metrics`)).status).toBe(503)
        // two idle sockets take the slots; a third is closed by the server at once
        const hold = () =>
          Effect.acquireRelease(
            Effect.callback<Net.Socket>((resume) => {
              const s = Net.connect(a.port, "127.0.0.1", () => resume(Effect.succeed(s)))
              s.on("error", () => {})
            }),
            (s) => Effect.sync(() => s.destroy())
          )
        yield* hold()
        yield* hold()
        const third = yield* raw(a.port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 3_000)
        expect(third.closed).toBe(true)
        expect(third.response).toBe("")
      }),
    60_000
  )

  it.live(
    "a slow client cannot stall the node: dribbled headers are cut at headersTimeout while others are served and pings run",
    () =>
      Effect.gen(function*() {
        const a = yield* httpNode({ headersTimeout: 1_000 })
        const b = yield* tcpNode()
        // slowloris: a request line and one header, then nothing
        const slow = yield* Effect.forkChild(raw(a.port, "GET /metrics HTTP/1.1\r\nHost: x\r\n", 10_000))
        // a client that asks and never reads its answer
        const unread = Net.connect(a.port, "127.0.0.1", () => {
          for (let i = 0; i < 50; i++) unread.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        })
        unread.pause()
        unread.on("error", () => {})
        yield* Effect.addFinalizer(() => Effect.sync(() => unread.destroy()))
        for (let i = 0; i < 5; i++) {
          expect((yield* get(`${a.url}api/status`)).status).toBe(200)
          yield* b.ping.ping(a.addr)
        }
        const cut = yield* Fiber.join(slow)
        expect(cut.closed).toBe(true)
        expect(cut.response === "" || cut.response.startsWith("HTTP/1.1 408 ")).toBe(true)
      }),
    60_000
  )
})
