/**
 * JsKad: typed Kad-DHT commands for a `JsPeer` started with `kad` (the js side is
 * js-kad.mjs). `node`: absent = the js peer itself, a number = that node of `start`.
 */
import { Effect, Schema } from "effect"
import type { CommandOptions, HarnessError, JsonObject, JsPeer } from "./JsPeer.ts"

const PeerInfo = Schema.Struct({ peerId: Schema.String, addrs: Schema.Array(Schema.String) })
export type PeerInfo = typeof PeerInfo.Type

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

const typed = <S extends Schema.ConstraintDecoder<unknown>>(
  js: JsPeer,
  schema: S,
  cmd: string,
  args: JsonObject,
  options?: CommandOptions
): Effect.Effect<S["Type"], HarnessError | Schema.SchemaError> =>
  Effect.flatMap(js.command(cmd, args, options), (v) => Schema.decodeUnknownEffect(schema)(v))

const at = (node: number | undefined): JsonObject => (node === undefined ? {} : { node })

/** Start `count` more js DHT servers in the js process, each dialing `dial` and the `mesh` nodes before it. */
export const start = (
  js: JsPeer,
  args: {
    readonly count: number
    readonly dial?: ReadonlyArray<string>
    readonly mesh?: number
    readonly protocol?: string
  },
  options?: CommandOptions
) =>
  typed(js, Schema.Struct({ nodes: Schema.Array(PeerInfo) }), "kadStart", {
    count: args.count,
    ...(args.dial !== undefined ? { dial: [...args.dial] } : {}),
    ...(args.mesh !== undefined ? { mesh: args.mesh } : {}),
    ...(args.protocol !== undefined ? { protocol: args.protocol } : {})
  }, options).pipe(Effect.map((r) => r.nodes))

export const dial = (js: JsPeer, node: number | undefined, addr: string) =>
  Effect.asVoid(js.command("kadDial", { ...at(node), addr }))

/** The peer ids in a js node's routing table. */
export const table = (js: JsPeer, node?: number) =>
  typed(js, Schema.Struct({ peers: Schema.Array(Schema.String) }), "kadTable", at(node)).pipe(
    Effect.map((r) => r.peers)
  )

export const findPeer = (js: JsPeer, node: number | undefined, peerId: string, options?: CommandOptions) =>
  typed(js, PeerInfo, "kadFindPeer", { ...at(node), peerId }, options)

export const put = (js: JsPeer, node: number | undefined, key: Uint8Array, value: Uint8Array) =>
  Effect.asVoid(js.command("kadPut", { ...at(node), key: hex(key), value: hex(value) }))

export const get = (js: JsPeer, node: number | undefined, key: Uint8Array) =>
  typed(js, Schema.Struct({ value: Schema.String }), "kadGet", { ...at(node), key: hex(key) }).pipe(
    Effect.map((r) => Uint8Array.from(Buffer.from(r.value, "hex")))
  )

export const provide = (js: JsPeer, node: number | undefined, cid: Uint8Array) =>
  Effect.asVoid(js.command("kadProvide", { ...at(node), cid: hex(cid) }))

export const findProviders = (js: JsPeer, node: number | undefined, cid: Uint8Array, limit?: number) =>
  typed(js, Schema.Struct({ providers: Schema.Array(PeerInfo) }), "kadFindProviders", {
    ...at(node),
    cid: hex(cid),
    ...(limit !== undefined ? { limit } : {})
  }).pipe(Effect.map((r) => r.providers))
