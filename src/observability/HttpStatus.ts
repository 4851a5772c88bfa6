/**
 * The node's HTTP status server (docs/ARCHITECTURE.md §7, `node --http
 * <multiaddr>`): `GET /metrics` (Prometheus text format 0.0.4), `GET
 * /api/status` (JSON, {@link Status.snapshot}), `GET /` (the status page) and
 * its favicon. Effect's HTTP server over `node:http` (`NodeHttpServer.make`),
 * living in the current scope.
 *
 * Bad input (the server faces whoever can reach it):
 * - it binds a loopback address only, unless `public` is set (`--http-public`);
 * - only `GET` (and `HEAD`) on the paths above: another method on them is 405
 *   with `Allow`, any other path 404;
 * - a request with a body is refused (413) without reading it, headers are
 *   capped (`maxHeaderBytes`, Node answers 431), and so are open sockets
 *   (`maxConnections`: Node drops the rest) and requests being answered at
 *   once (`maxConcurrentRequests`: 503 beyond it);
 * - a slow client cannot hold anything: the headers must arrive within
 *   `headersTimeout` (slowloris), a socket idle for `idleTimeout` (a client
 *   that stops reading its response) is destroyed, and every response is
 *   built in memory from a snapshot, so nothing of the node waits on a socket.
 *
 * Anchors: `effect:observability/PrometheusMetrics.ts` (`layerHttp` serves
 * the same text; we route by hand for the 405/404 rules),
 * `@effect/platform-node/NodeHttpServer.ts` (`make` and Node's timeouts),
 * go-libp2p's `examples/metrics-and-dashboards`.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { Effect, Option, Schema, Scope, Semaphore } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Http from "node:http"
import type { Registrar } from "../connection/Registrar.ts"
import type { ResourceManager } from "../connection/ResourceManager.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import type { AddressManager } from "../host/AddressManager.ts"
import type { Host } from "../host/Host.ts"
import * as Metrics from "./Metrics.ts"
import * as Page from "./page/page.ts"
import * as Status from "./Status.ts"

export class HttpStatusError extends Schema.TaggedError<HttpStatusError>()("HttpStatusError", {
  reason: Schema.Literals(["BadAddress", "NotLoopback", "Listen"]),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

export interface HttpStatusOptions {
  /** Where to listen: `/ip4/<ip>/tcp/<port>` or `/ip6/<ip>/tcp/<port>` (port 0: a free one). */
  readonly listen: Multiaddr.Multiaddr
  /** Allow a non-loopback address (default false: `NotLoopback`). */
  readonly public?: boolean | undefined
  /** Open sockets at once (default 64; Node closes the ones beyond). */
  readonly maxConnections?: number | undefined
  /** Requests being answered at once (default 16; 503 beyond). */
  readonly maxConcurrentRequests?: number | undefined
  /** Request line + headers (default 8 KiB; Node answers 431 beyond). */
  readonly maxHeaderBytes?: number | undefined
  /** Milliseconds to receive the headers (default 10 s). */
  readonly headersTimeout?: number | undefined
  /** Milliseconds a socket may stay idle, also while its response is unread (default 30 s). */
  readonly idleTimeout?: number | undefined
}

export interface HttpStatusServer {
  /** `http://<host>:<port>/` */
  readonly url: string
  readonly addr: Multiaddr.Multiaddr
}

/** The paths served, each GET (and HEAD) only. */
export const PATHS: ReadonlyArray<string> = ["/", "/metrics", "/api/status", "/favicon.ico", "/favicon.svg"]

const noStore = { "cache-control": "no-store" }

const text = (status: number, body: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.text(body, { status, headers: { ...noStore, ...headers } })

/** The routing and the request rules, as an Effect HTTP app. */
const app = (collector: Metrics.Collector, status: Effect.Effect<Status.Status>, permits: Semaphore.Semaphore) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?", 1)[0] ?? "/"
    if (!PATHS.includes(path)) return text(404, "not found\n")
    if (request.method !== "GET" && request.method !== "HEAD") {
      return text(405, "method not allowed\n", { allow: "GET, HEAD" })
    }
    const length = request.headers["content-length"]
    if ((length !== undefined && length !== "0") || request.headers["transfer-encoding"] !== undefined) {
      return text(413, "a GET has no body\n", { connection: "close" })
    }
    const answered = yield* permits.withPermitsIfAvailable(1)(Effect.gen(function*() {
      switch (path) {
        case "/metrics":
          return text(200, yield* collector.scrape, { "content-type": "text/plain; version=0.0.4; charset=utf-8" })
        case "/api/status":
          return HttpServerResponse.jsonUnsafe(yield* status, { headers: noStore })
        case "/favicon.ico":
        case "/favicon.svg":
          return HttpServerResponse.text(Page.favicon, {
            contentType: "image/svg+xml",
            headers: { "cache-control": "max-age=86400" }
          })
        default:
          return HttpServerResponse.html(Page.html).pipe(HttpServerResponse.setHeaders(noStore))
      }
    }))
    return Option.getOrElse(answered, () => text(503, "busy\n", { "retry-after": "1" }))
  })

/**
 * Serve the node's status over HTTP while the current scope lasts. Needs the
 * node's services (build it with the node's context).
 */
export const serve = (
  options: HttpStatusOptions
): Effect.Effect<
  HttpStatusServer,
  HttpStatusError,
  Scope.Scope | Host | AddressManager | Status.StatusSections | Registrar | ResourceManager
> =>
  Effect.gen(function*() {
    const target = Multiaddr.toNodeAddress(options.listen)
    if (target._tag === "Failure" || target.success.transport !== "tcp" || target.success.family === 0) {
      return yield* new HttpStatusError({
        reason: "BadAddress",
        message: `--http takes /ip4/<ip>/tcp/<port> or /ip6/<ip>/tcp/<port>, not ${Multiaddr.toString(options.listen)}`
      })
    }
    if (options.public !== true && !Multiaddr.isLoopback(options.listen)) {
      return yield* new HttpStatusError({
        reason: "NotLoopback",
        message:
          `${Multiaddr.toString(options.listen)} is not a loopback address (the status server would be public: ` +
          `give --http-public to allow it)`
      })
    }
    const { host, port } = target.success
    const collector = yield* Metrics.makeCollector
    const context = yield* Effect.context<Host | AddressManager | Status.StatusSections>()
    const status = Effect.provideContext(Status.snapshot, context)
    const permits = yield* Semaphore.make(options.maxConcurrentRequests ?? 16)
    const headersTimeout = options.headersTimeout ?? 10_000
    const server = yield* NodeHttpServer.make(() => {
      const s = Http.createServer({
        maxHeaderSize: options.maxHeaderBytes ?? 8 * 1024,
        headersTimeout,
        requestTimeout: headersTimeout,
        keepAliveTimeout: 5_000,
        connectionsCheckingInterval: Math.min(1_000, headersTimeout)
      })
      s.maxConnections = options.maxConnections ?? 64
      s.setTimeout(options.idleTimeout ?? 30_000)
      return s
    }, { host, port }).pipe(
      Effect.mapError((e) => new HttpStatusError({ reason: "Listen", message: `http: ${e.message}`, cause: e })),
      Effect.provideService(Scope.Scope, yield* Effect.scope)
    )
    yield* HttpServer.serveEffect()(app(collector, status, permits)).pipe(
      Effect.provideService(HttpServer.HttpServer, server)
    )
    const address = server.address
    if (address._tag === "UnixPathAddress") {
      return yield* new HttpStatusError({ reason: "Listen", message: "http: not a TCP address" })
    }
    const bound = address.port
    const hostPart = host.includes(":") ? `[${host}]` : host
    const family = host.includes(":") ? "ip6" : "ip4"
    const addr = yield* Effect.orDie(Effect.fromResult(Multiaddr.fromString(`/${family}/${host}/tcp/${bound}`)))
    return { url: `http://${hostPart}:${bound}/`, addr }
  })
