/**
 * Reading an error's chain the way a caller would, by tag: the error's `_tag`,
 * its `reason` (a literal, or a nested tagged error followed in turn), then its
 * `cause` when that is a tagged error. No message parsing.
 */

const isTagged = (u: unknown): u is { readonly _tag: string; readonly reason?: unknown; readonly cause?: unknown } =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string"

/** e.g. `["DialError", "UpgradeError", "Security", "SecurityError", "InvalidSignature"]`. */
export const chain = (error: unknown): ReadonlyArray<string> => {
  const out: Array<string> = []
  let e: unknown = error
  while (isTagged(e)) {
    out.push(e._tag)
    if (typeof e.reason === "string") out.push(e.reason)
    else if (isTagged(e.reason)) {
      e = e.reason
      continue
    }
    e = e.cause
  }
  return out
}
