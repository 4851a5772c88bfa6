/**
 * A TCP node (Default preset) with its status server (`HttpStatus.serve`) on
 * 127.0.0.1, both in the current test scope, and small HTTP helpers.
 */
import { Effect, Layer } from "effect"
import * as Http from "node:http"
import * as Net from "node:net"
import * as Nodes from "../../layers/Node.ts"
import * as HttpStatus from "../../src/observability/HttpStatus.ts"
import { ma } from "../support/multiaddr.ts"
import { servicesOf } from "../support/node.ts"

export const httpNode = (http: Partial<HttpStatus.HttpStatusOptions> = {}, preset: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const ctx = yield* Layer.buildWithScope(
      Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")], ...preset }),
      yield* Effect.scope
    )
    const server = yield* HttpStatus.serve({ listen: ma("/ip4/127.0.0.1/tcp/0"), ...http }).pipe(
      Effect.provideContext(ctx)
    )
    return { ...servicesOf(ctx), url: server.url, port: Number(new URL(server.url).port) }
  })

export interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

export const get = (url: string, init: RequestInit = {}): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
    return { status: r.status, headers: r.headers, body: await r.text() }
  })

/**
 * Send `request` as raw bytes on a new TCP connection to 127.0.0.1:`port` and
 * return what came back until the server closed it (or `timeoutMs` passed:
 * then `closed` is false).
 */
export const raw = (port: number, request: string | Uint8Array, timeoutMs = 5_000) =>
  Effect.callback<{ readonly response: string; readonly closed: boolean }>((resume) => {
    const chunks: Array<Buffer> = []
    const socket = Net.connect(port, "127.0.0.1", () => socket.write(request))
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.succeed({ response: Buffer.concat(chunks).toString("latin1"), closed: false }))
    }, timeoutMs)
    socket.on("data", (b: Buffer) => chunks.push(b))
    socket.on("error", () => {})
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ response: Buffer.concat(chunks).toString("latin1"), closed: true }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** A collector on 127.0.0.1: every request's path and JSON body. */
export const collector = Effect.acquireRelease(
  Effect.callback<{ server: Http.Server; url: string; requests: Array<{ path: string; body: any }> }>((resume) => {
    const requests: Array<{ path: string; body: any }> = []
    const server = Http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (c: Buffer) => chunks.push(c))
      req.on("end", () => {
        requests.push({ path: req.url ?? "", body: JSON.parse(Buffer.concat(chunks).toString("utf8")) })
        res.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port
      resume(Effect.succeed({ server, url: `http://127.0.0.1:${port}`, requests }))
    })
  }),
  ({ server }) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
)

export interface Span {
  readonly name: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly attributes: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

/** The spans of every OTLP/JSON request the collector got. */
export const spansOf = (requests: ReadonlyArray<{ body: any }>): Array<Span> =>
  requests.flatMap((r) =>
    (r.body.resourceSpans ?? []).flatMap((rs: any) => (rs.scopeSpans ?? []).flatMap((ss: any) => ss.spans ?? []))
  )
