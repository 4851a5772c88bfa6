/**
 * Option helpers (no spec): the resolution of a user's options object into
 * the configuration a service runs with — a default for what is missing,
 * numbers clamped to what the implementation or the spec allows, durations
 * decoded. An option that cannot be read (not finite, an unparseable
 * duration) falls back to its default rather than failing the layer.
 *
 * @internal
 */
import { Duration } from "effect"

/** `value` rounded down and clamped to [`min`, `max`]; `fallback` when absent or not finite. */
export const clampInt = (value: number | undefined, fallback: number, min: number, max: number): number => {
  const v = value === undefined || !Number.isFinite(value) ? fallback : Math.floor(value)
  return Math.min(Math.max(v, min), max)
}

/** `value` as a Duration; `fallback` when absent or not a valid duration. */
export const duration = (value: Duration.Input | undefined, fallback: Duration.Duration): Duration.Duration => {
  if (value === undefined) return fallback
  const d = Duration.fromInput(value)
  return d._tag === "Some" ? d.value : fallback
}
