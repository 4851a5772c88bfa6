/**
 * Traces (issue 16 item 4): the node's spans exported with OTLP over HTTP
 * (JSON) when `--otlp <url>` is given; off by default. Effect 4.1 ships the
 * exporter (`effect/observability/OtlpTracer`, batching, flushed when the
 * scope closes), so no `@effect/opentelemetry` or OpenTelemetry SDK is needed.
 *
 * Spans (attributes `libp2p.*`):
 * - `libp2p.dial`: one per address attempt (Host), with `libp2p.addr`, `libp2p.transport`;
 * - `libp2p.upgrade` (`libp2p.direction`, `libp2p.peer`) with children
 *   `libp2p.upgrade.security` (`libp2p.security`) and `libp2p.upgrade.muxer`
 *   (`libp2p.muxer`, `libp2p.muxer.early`) (Upgrader);
 * - `libp2p.stream.inbound`: a root span per inbound stream, for its whole
 *   life (`libp2p.protocol`, `libp2p.connection`, `libp2p.peer`), made only
 *   when the node was built with a tracer of its own (a span per stream cost
 *   ~20-30 % of the "new stream per request" bench with Effect's native tracer).
 * Kad queries add theirs in their room.
 *
 * Anchors: `effect:observability/OtlpTracer.ts`, the OTLP/HTTP spec
 * (`POST <endpoint>/v1/traces`), OpenTelemetry's `OTEL_EXPORTER_OTLP_ENDPOINT`
 * convention for the base URL.
 *
 * @since 0.1.0
 */
import { type Duration, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { type OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"

export interface OtlpOptions {
  /** The collector's base URL (`http://127.0.0.1:4318`): spans go to `<url>/v1/traces`. */
  readonly url: string
  /** `service.name` of the resource (default `effect-libp2p`). */
  readonly serviceName?: string | undefined
  /** How often batches are sent (default 5 s; whatever is left is sent when the layer's scope closes). */
  readonly exportInterval?: Duration.Input | undefined
}

/** The traces URL for a collector's base URL (a URL that already ends in `/v1/traces` is kept). */
export const tracesUrl = (base: string): string =>
  base.replace(/\/+$/, "").endsWith("/v1/traces") ? base : `${base.replace(/\/+$/, "")}/v1/traces`

/** A tracer exporting the node's spans; provide it to the node's layer (`Layer.provide`). */
export const layerOtlp = (options: OtlpOptions): Layer.Layer<OtlpExporter.Flusher> =>
  OtlpTracer.layer({
    url: tracesUrl(options.url),
    resource: { serviceName: options.serviceName ?? "effect-libp2p" },
    ...(options.exportInterval !== undefined ? { exportInterval: options.exportInterval } : {})
  }).pipe(Layer.provide(OtlpSerialization.layerJson), Layer.provide(FetchHttpClient.layer))
