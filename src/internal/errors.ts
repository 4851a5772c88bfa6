/**
 * Reading the fields of a thrown or emitted value that is not ours (a Node
 * system error, a `ws` error, a rejected promise): its `code` (`ECONNREFUSED`
 * …) and its message, without trusting its type. Used wherever a host API's
 * failure becomes one of our typed errors (which then keeps the original as
 * its `cause`).
 *
 * @internal
 */

/** The `code` of a Node system error (`ECONNREFUSED` …), if any. */
export const errorCode = (err: unknown): string | undefined =>
  typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : undefined

/** The `message` of an error-like value, or the value as text. */
export const errorMessage = (err: unknown): string =>
  typeof err === "object" && err !== null && "message" in err && typeof err.message === "string"
    ? err.message
    : String(err)
