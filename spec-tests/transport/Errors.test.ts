/**
 * A socket's failure becomes a typed error that keeps the socket's own error
 * as its `cause` (STYLE §7): the shared dial/listen errors of the TCP,
 * WebSocket and Unix transports, and the socket Duplex's read/write errors.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Errors from "../../src/transport/internal/errors.ts"
import * as SocketDuplex from "../../src/transport/SocketDuplex.ts"
import { ma } from "../support/multiaddr.ts"

const sysError = (code: string, message: string) => Object.assign(new Error(message), { code })

describe("transport errors keep the socket's error", () => {
  it("dial: ECONNREFUSED is Refused, ETIMEDOUT Timeout, no route Unreachable, anything else Io; the error is the cause", () => {
    const addr = ma("/ip4/127.0.0.1/tcp/1")
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["ECONNREFUSED", "Refused"],
      ["ETIMEDOUT", "Timeout"],
      ["EHOSTUNREACH", "Unreachable"],
      ["ENOTFOUND", "Unreachable"],
      ["EPROTO", "Io"]
    ]
    for (const [code, reason] of cases) {
      const err = sysError(code, `connect ${code} 127.0.0.1:1`)
      const e = Errors.dialError("tcp", addr, err)
      expect([e.reason, e.address, e.message, e.cause]).toEqual([
        reason,
        Multiaddr.toString(addr),
        `tcp: dial /ip4/127.0.0.1/tcp/1: connect ${code} 127.0.0.1:1`,
        err
      ])
    }
    // a transport may classify by its own rules (Unix: ENOENT is a refusal)
    expect(Errors.dialError("unix", addr, sysError("ENOENT", "no file"), "Refused").reason).toBe("Refused")
  })

  it("listen: EADDRINUSE is AddressInUse, anything else Io; the error is the cause", () => {
    const addr = ma("/ip4/127.0.0.1/tcp/1")
    const inUse = sysError("EADDRINUSE", "listen EADDRINUSE")
    const e = Errors.listenError("ws", addr, inUse)
    expect([e.reason, e.message, e.cause]).toEqual([
      "AddressInUse",
      "ws: listen /ip4/127.0.0.1/tcp/1: listen EADDRINUSE",
      inUse
    ])
    expect(Errors.listenError("ws", addr, sysError("EACCES", "denied")).reason).toBe("Io")
  })

  it("socket read/write: a reset is DuplexError Reset with the socket's error as the cause", () => {
    const reset = sysError("ECONNRESET", "read ECONNRESET")
    const e = SocketDuplex.mapSocketError(reset)
    expect([e.reason, e.cause]).toEqual(["Reset", reset])
    expect(SocketDuplex.mapSocketError(sysError("EIO", "boom")).cause).toBeInstanceOf(Error)
  })
})
