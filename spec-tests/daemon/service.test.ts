/**
 * The daemon service in this process (layers/Node.ts + `Daemon.layer`), so what a separate
 * process hides is visible: after bad input on the control socket (garbage, cut-off
 * requests, a vanished subscriber-less SUBSCRIBE, 200 idle connections, a refusing handler
 * address) every control-connection fiber has ended (`stats().controlConnections` back to 0,
 * counted by each connection fiber's finalizer) and the process's sockets and timers are back
 * to the baseline; the service keeps answering. Also: a control address that is neither
 * /unix nor loopback TCP is refused with `DaemonError { reason: "Control" }`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Net from "node:net"
import * as Nodes from "../../layers/Node.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as Daemon from "../../src/daemon/Daemon.ts"
import * as Messages from "../../src/daemon/messages.ts"
import { eventually, expectResourcesBack, settledResources } from "../support/attacker.ts"
import { ma } from "../support/multiaddr.ts"

const node = () => Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")] })

const startDaemon = Effect.gen(function*() {
  const ctx = yield* Layer.build(
    Layer.provideMerge(Daemon.layer({ control: ma("/ip4/127.0.0.1/tcp/0") }), node())
  )
  return Context.get(ctx, Daemon.Daemon)
})

const portOf = (d: Daemon.Daemon["Service"]) => Number(/\/tcp\/(\d+)/.exec(Multiaddr.toString(d.controlAddr))![1])

const frame = (body: Uint8Array) => Uint8Array.from([body.length, ...body])

/** Write `bytes` on a new control connection; resolves with what came back once the daemon closes (or we do). */
const send = (port: number, bytes: Uint8Array, destroy = false) =>
  Effect.promise(() =>
    new Promise<Buffer>((resolve) => {
      const s = Net.connect(port, "127.0.0.1")
      let data = Buffer.alloc(0)
      s.on("data", (c) => void (data = Buffer.concat([data, c])))
      s.on("error", () => resolve(data))
      s.on("close", () => resolve(data))
      s.on("end", () => s.end())
      s.write(bytes, () => void (destroy ? s.destroy() : undefined))
    })
  )

/** One request on a new control connection: the decoded response (then we close). */
const request = (port: number, req: Messages.Request) =>
  Effect.promise(() =>
    new Promise<Messages.Response | undefined>((resolve) => {
      const s = Net.connect(port, "127.0.0.1")
      let data = Buffer.alloc(0)
      s.on("data", (c) => {
        data = Buffer.concat([data, c])
        if (data.length >= 1 && data.length >= 1 + data[0]!) {
          s.destroy()
          const r = Messages.ResponseCodec.decode(data.subarray(1, 1 + data[0]!))
          resolve(r._tag === "Success" ? r.success : undefined)
        }
      })
      s.on("close", () => resolve(undefined))
      s.write(frame(Messages.RequestCodec.encode(req)))
    })
  )

describe("Daemon service (in process)", () => {
  it.live(
    "CONTROL.md bad input: every control-connection fiber ends, sockets and timers back to baseline",
    () =>
      Effect.gen(function*() {
        const daemon = yield* startDaemon
        const port = portOf(daemon)
        const before = yield* settledResources

        yield* send(port, frame(Uint8Array.from([0xff, 0xff, 0x01])))
        yield* send(port, new Uint8Array(11).fill(0xff))
        yield* send(port, Uint8Array.from([100, 0x08]), true)
        // a handler at an address that refuses (registered: the refusal shows when a stream comes)
        const registered = yield* request(port, {
          type: Messages.RequestType.STREAM_HANDLER,
          streamHandler: { addr: Multiaddr.toBytes(ma("/ip4/127.0.0.1/tcp/1")), proto: ["/refused/1.0.0"] }
        })
        expect(registered?.type).toBe(0)
        // 200 idle connections
        const idle = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: 200 }, () =>
              new Promise<Net.Socket>((resolve) => {
                const s = Net.connect(port, "127.0.0.1", () => resolve(s))
              }))
          )
        )
        expect(yield* eventually(Effect.sync(() => daemon.stats().controlConnections >= 200))).toBe(true)
        expect(daemon.stats().handlers).toBe(1)
        for (const s of idle) s.destroy()

        expect(yield* eventually(Effect.sync(() => daemon.stats().controlConnections === 0))).toBe(true)
        yield* expectResourcesBack(before)
        // still serving
        const reply = yield* request(port, { type: Messages.RequestType.LIST_PEERS })
        expect(reply).toEqual({ type: 0, peers: [] })
      }),
    60_000
  )

  it.live(
    "§7: a control address other than /unix or loopback TCP is refused (DaemonError Control)",
    () =>
      Effect.gen(function*() {
        for (const control of ["/ip4/0.0.0.0/tcp/0", "/ip4/127.0.0.1/tcp/0/ws", "/ip4/127.0.0.1/udp/0"]) {
          const exit = yield* Effect.exit(
            Layer.build(Layer.provideMerge(Daemon.layer({ control: ma(control) }), node()))
          )
          expect(exit._tag, control).toBe("Failure")
          if (exit._tag === "Failure") {
            expect(JSON.stringify(exit.cause)).toContain("Control")
          }
        }
      }),
    60_000
  )
})
