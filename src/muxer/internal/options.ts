/**
 * Option resolution shared by the muxers (no spec): the options Yamux and
 * Mplex both take, with the same meaning and the same bounds, resolved once
 * here; each muxer's `resolve` adds its own.
 *
 * @internal
 */
import type { Duration } from "effect"
import { clampInt, duration } from "../../internal/options.ts"

/** The options every muxer takes (documented on `YamuxOptions` / `MplexOptions`). */
export interface CommonOptions {
  readonly maxInboundStreams?: number
  readonly maxOutboundStreams?: number
  readonly maxFrameSize?: number
  readonly closeTimeout?: Duration.Input
  readonly writeHighWater?: number
}

export interface CommonConfig {
  readonly maxInboundStreams: number
  readonly maxOutboundStreams: number
  readonly maxFrameSize: number
  readonly closeTimeout: Duration.Duration
  readonly writeHighWater: number
}

/**
 * Defaults filled in; stream limits at least 0, the frame size within
 * [1 KiB, `maxFrameSize`], the write high-water mark at least one byte.
 */
export const resolveCommon = (
  options: CommonOptions,
  defaults: CommonConfig,
  maxFrameSize: number
): CommonConfig => ({
  maxInboundStreams: atLeast(options.maxInboundStreams, defaults.maxInboundStreams, 0),
  maxOutboundStreams: atLeast(options.maxOutboundStreams, defaults.maxOutboundStreams, 0),
  maxFrameSize: clampInt(options.maxFrameSize, defaults.maxFrameSize, 1024, maxFrameSize),
  closeTimeout: duration(options.closeTimeout, defaults.closeTimeout),
  writeHighWater: atLeast(options.writeHighWater, defaults.writeHighWater, 1)
})

/** An integer option of at least `min` (and at most 2^53 - 1). */
export const atLeast = (value: number | undefined, fallback: number, min: number): number =>
  clampInt(value, fallback, min, Number.MAX_SAFE_INTEGER)

export { clampInt, duration }
