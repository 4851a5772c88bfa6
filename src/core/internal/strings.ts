/**
 * String storage helpers for long-lived strings (no spec: a memory concern,
 * issue 6 item 3).
 *
 * Strings built piece by piece (`s += c`, as multiformats' base-x encoders and
 * protobufjs's short-string UTF-8 reader do) are V8 "cons strings": ropes with
 * one 32-byte node per piece, so a 52-character peer id kept as a rope costs
 * about 1.6 KiB instead of 80 bytes. {@link flat} returns the same text as one
 * flat, internalized string (identical texts then share one copy, e.g. the
 * protocol ids every peer reports), at a cost of well under a microsecond.
 *
 * @internal
 */

/** The same text as a flat, internalized string (a property key is always one). */
export const flat = (s: string): string => {
  if (s.length < 2) return s
  for (const key in { [s]: 0 }) return key
  return s
}
