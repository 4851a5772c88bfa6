/**
 * AutoNAT test nodes: the Default preset (TCP on 127.0.0.1) with an AutoNat
 * layer on top, raw protocol helpers for attackers and fake servers, and a
 * canary TCP listener that counts the connections a server makes to it.
 */
import { Context, Effect, Layer } from "effect"
import * as Net from "node:net"
import * as Nodes from "../../../layers/Node.ts"
import type * as Duplex from "../../../src/core/Duplex.ts"
import * as LengthPrefixed from "../../../src/core/LengthPrefixed.ts"
import type * as Multiaddr from "../../../src/core/Multiaddr.ts"
import * as AutoNat from "../../../src/protocols/autonat/AutoNat.ts"
import { ma } from "../../support/multiaddr.ts"
import { type NodeServices, servicesOf } from "../../support/node.ts"

/** A TCP node on 127.0.0.1 with AutoNat (no background rounds unless asked: startupDelay 1 hour). */
export const autonatNode = (options: AutoNat.AutoNatOptions = {}, preset: Nodes.PresetOptions = {}) =>
  Effect.gen(function*() {
    const node = Nodes.Default({ listen: [ma("/ip4/127.0.0.1/tcp/0")], ...preset })
    const layer = AutoNat.layer({ startupDelay: "1 hour", ...options }).pipe(Layer.provideMerge(node))
    const ctx = yield* Effect.flatMap(Effect.scope, (scope) => Layer.buildWithScope(layer, scope))
    return {
      ...servicesOf(ctx as Context.Context<NodeServices>),
      autonat: Context.get(ctx, AutoNat.AutoNat),
      context: ctx
    }
  })

export type AutoNatNode = Effect.Success<ReturnType<typeof autonatNode>>

/** Dial `b` from `a` and identify, so `a`'s peerstore knows `b`'s protocols. */
export const connect = (
  a: { readonly host: AutoNatNode["host"]; readonly identify: AutoNatNode["identify"] },
  b: { readonly addr: Multiaddr.Multiaddr }
) => Effect.flatMap(a.host.dial(b.addr), (conn) => Effect.as(a.identify.identify(conn), conn))

/** A port on `host` where nothing listens (bound, then closed). */
export const closedPortOn = (host: string) =>
  Effect.promise(() =>
    new Promise<number>((resolve) => {
      const server = Net.createServer()
      server.listen(0, host, () => {
        const port = (server.address() as Net.AddressInfo).port
        server.close(() => resolve(port))
      })
    })
  )

/** A port on 127.0.0.1 where nothing listens. */
export const closedPort = closedPortOn("127.0.0.1")

/** A TCP listener on `host` that counts the connections made to it (and drops them), closed with the scope. */
export const canary = (host: string) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ readonly port: number; readonly connections: () => number; readonly server: Net.Server }>(
        (resolve) => {
          let count = 0
          const server = Net.createServer((socket) => {
            count++
            socket.destroy()
          })
          server.listen(
            0,
            host,
            () => resolve({ port: (server.address() as Net.AddressInfo).port, connections: () => count, server })
          )
        }
      )
    ),
    (c) => Effect.promise(() => new Promise<void>((resolve) => c.server.close(() => resolve())))
  )

/** Length-prefixed `Message`s on a stream: write one, read one (undefined at EOF or reset). */
export const rawMessages = (stream: Duplex.Duplex) => {
  const msgs = LengthPrefixed.messages(stream, { maxLength: AutoNat.MAX_MESSAGE_SIZE })
  return {
    send: (m: AutoNat.Message) => msgs.write(AutoNat.Message.encode(m)),
    sendRaw: (...frames: ReadonlyArray<Uint8Array>) => stream.write(frames),
    /** The next message; undefined when the stream ended or was reset. */
    next: Effect.map(
      Effect.result(msgs.read),
      (r): AutoNat.Message | undefined => {
        if (r._tag === "Failure" || r.success === undefined) return undefined
        const decoded = AutoNat.Message.decode(r.success)
        return decoded._tag === "Success" ? decoded.success : undefined
      }
    ),
    closeWrite: msgs.closeWrite
  }
}
