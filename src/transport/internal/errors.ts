/**
 * A socket's dial or listen failure as a {@link Transport.TransportError}
 * (keeping the Node error as its `cause`), shared by the TCP, WebSocket and
 * Unix domain socket transports: which system error codes mean "refused",
 * "timed out" or "unreachable", and the message `<transport>: dial <addr>: …`.
 *
 * @since 0.1.0
 */
import type * as Multiaddr from "../../core/Multiaddr.ts"
import { errorCode, errorMessage } from "../../internal/errors.ts"
import * as Transport from "../Transport.ts"

/** Codes that say the address cannot be reached at all (no route, host down, name not found). */
const UNREACHABLE: ReadonlySet<string> = new Set([
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "ENONET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_NONAME",
  "EAI_NODATA",
  "EAI_FAIL",
  "EADDRNOTAVAIL"
])

/** The reason of a failed IP dial, from the socket error's code. */
export const dialReason = (err: unknown): Transport.TransportErrorReason => {
  const code = errorCode(err)
  return code === "ECONNREFUSED"
    ? "Refused"
    : code === "ETIMEDOUT"
    ? "Timeout"
    : code !== undefined && UNREACHABLE.has(code)
    ? "Unreachable"
    : "Io"
}

/** `name: dial <addr>: <the error's message>`, with `err` kept as the cause. */
export const dialError = (
  name: string,
  addr: Multiaddr.Multiaddr,
  err: unknown,
  reason: Transport.TransportErrorReason = dialReason(err)
): Transport.TransportError =>
  new Transport.TransportError({
    reason,
    address: addr.toString(),
    message: `${name}: dial ${addr.toString()}: ${errorMessage(err)}`,
    cause: err
  })

/** `name: listen <addr>: <the error's message>` (`AddressInUse` for EADDRINUSE), with `err` kept as the cause. */
export const listenError = (name: string, addr: Multiaddr.Multiaddr, err: unknown): Transport.TransportError =>
  new Transport.TransportError({
    reason: errorCode(err) === "EADDRINUSE" ? "AddressInUse" : "Io",
    address: addr.toString(),
    message: `${name}: listen ${addr.toString()}: ${errorMessage(err)}`,
    cause: err
  })
