/** Results in tests: unwrap a success a fixture needs, or read the reason of a failure. */
import { Result } from "effect"

/** The success of `r`; a failure throws an Error that shows it (the test then fails with it). */
export const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${JSON.stringify(r.failure)}`)
  return r.success
}

/** The `reason` of a failed `r`, or undefined for a success. */
export const failureReason = <A, E extends { readonly reason: string }>(r: Result.Result<A, E>): string | undefined =>
  Result.isFailure(r) ? r.failure.reason : undefined
