/**
 * Pubsub on the command line (ARCHITECTURE.md §7, docs/CLI.md): the
 * `--pubsub`/`--subscribe` part of `node` (message lines and the stdin
 * `publish` command) and the one-shot `pubsub publish <topic> <text>`.
 *
 * @since 0.2.0
 */
import { Context, Duration, Effect, Layer, Option, Schema, type Scope, Stream } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { ConnectionManager } from "../../connection/ConnectionManager.ts"
import type { Registrar, RegistrarError } from "../../connection/Registrar.ts"
import type { Identity } from "../../core/Identity.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { Host } from "../../host/Host.ts"
import * as KeepConnected from "../../host/KeepConnected.ts"
import * as Floodsub from "../../protocols/pubsub/floodsub/Floodsub.ts"
import * as Gossipsub from "../../protocols/pubsub/gossipsub/Gossipsub.ts"
import { Pubsub, type PubsubMessage } from "../../protocols/pubsub/Pubsub.ts"
import { json, parseDuration, parseMultiaddr, stackFlags, stackOptions } from "../flags.ts"
import { emit, usageAsHelp, UsageError } from "../output.ts"
import * as StdinCommands from "../stdinCommands.ts"
import { withClient } from "./client.ts"

export const routerNames = ["gossipsub", "floodsub"] as const
export type RouterName = typeof routerNames[number]

/** `--pubsub` / `--router`: a router name (anything else is a usage error). */
export const routerFlag = (name: string, description: string) =>
  Flag.Literals(name, routerNames).pipe(Flag.withDescription(description))

/** The Pubsub service of `router` on top of a node's services. */
export const build = (
  router: RouterName,
  node: Context.Context<Host | Registrar | Identity>
): Effect.Effect<Pubsub["Service"], RegistrarError, Scope.Scope> =>
  Effect.map(
    Layer.build(
      (router === "floodsub" ? Floodsub.layer() : Gossipsub.layer()).pipe(Layer.provide(Layer.succeedContext(node)))
    ),
    (ctx) => Context.get(ctx, Pubsub)
  )

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The text of `bytes` when they are valid UTF-8, otherwise undefined. */
const textOf = (bytes: Uint8Array): string | undefined => {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** The §7 message line: `data` for UTF-8 text, `dataBase64` otherwise; `seqno` in lowercase hex. */
export const messageEvent = (m: PubsubMessage) => {
  const text = textOf(m.data)
  return {
    event: "message",
    topic: m.topic,
    from: m.from !== undefined ? PeerId.toString(m.from) : null,
    seqno: m.seqno !== undefined ? m.seqno.toString(16) : null,
    ...(text !== undefined ? { data: text } : { dataBase64: Buffer.from(m.data).toString("base64") })
  }
}

const publishedEvent = (json: boolean, topic: string, peers: number) =>
  emit(json, { event: "published", topic, peers }, `published on ${topic} to ${peers} peers`)

/**
 * `node --pubsub <router> --subscribe <topic>…`: start the router on the node,
 * subscribe (a `subscribed` line per topic), print every message received,
 * and run the stdin `publish` commands; all in the current scope.
 */
export const runOnNode = (
  node: Context.Context<Host | Registrar | Identity>,
  options: { readonly router: RouterName; readonly topics: ReadonlyArray<string>; readonly json: boolean }
) =>
  Effect.gen(function*() {
    const pubsub = yield* build(options.router, node)
    for (const topic of new Set(options.topics)) {
      const messages = yield* pubsub.subscribe(topic)
      yield* emit(options.json, { event: "subscribed", topic }, `subscribed to ${topic}`)
      yield* Effect.forkScoped(Stream.runForEach(messages, (m) => {
        const e = messageEvent(m)
        const body = "data" in e ? e.data : `(base64) ${e.dataBase64}`
        return emit(options.json, e, `${m.topic} from ${e.from ?? "?"}: ${body}`)
      }))
    }
    yield* Effect.forkScoped(StdinCommands.run(options.json, ({ publish }) =>
      Effect.flatMap(
        pubsub.publish(publish.topic, new TextEncoder().encode(publish.data)),
        (r) => publishedEvent(options.json, publish.topic, r.recipients)
      )))
  })

/** `pubsub publish` found no peer in the topic within `--timeout`. */
export class NoTopicPeers extends Schema.TaggedError<NoTopicPeers>()("NoTopicPeers", {
  topic: Schema.String,
  message: Schema.String
}) {}

const DEFAULT_TIMEOUT = "10 seconds"

const publishCommand = Command.make(
  "publish",
  {
    topic: Argument.String("topic").pipe(Argument.withDescription("the topic")),
    text: Argument.String("text").pipe(Argument.withDescription("the message, sent as its UTF-8 bytes")),
    bootstrap: Flag.String("bootstrap").pipe(
      Flag.withDescription("multiaddr of a peer to join through (repeatable, at least one)"),
      Flag.atLeast(1)
    ),
    router: routerFlag("router", "the pubsub router (default gossipsub)").pipe(Flag.withDefault("gossipsub" as const)),
    timeout: Flag.String("timeout").pipe(
      Flag.withDescription(`how long to wait for a peer in the topic, e.g. 5s (default ${DEFAULT_TIMEOUT})`),
      Flag.optional
    ),
    json,
    ...stackFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const preset = yield* stackOptions(flags)
      const bootstrap = yield* Effect.forEach(flags.bootstrap, parseMultiaddr)
      const timeout = Option.isSome(flags.timeout)
        ? parseDuration(flags.timeout.value)
        : Duration.fromInputUnsafe(DEFAULT_TIMEOUT)
      if (timeout === undefined) {
        return yield* new UsageError({
          message: `--timeout: not a duration: ${Option.getOrElse(flags.timeout, () => "")}`
        })
      }
      yield* withClient(preset, ({ context, host }) =>
        Effect.gen(function*() {
          const pubsub = yield* build(flags.router, context)
          const connectionManager = Context.get(context, ConnectionManager)
          for (const addr of bootstrap) {
            // kept connected (tagged, redialed with backoff) while the command runs
            yield* KeepConnected.keepConnected(host, connectionManager, addr, {
              onDialFailure: (e) => Effect.logWarning(`dial ${Multiaddr.toString(addr)}: ${e.message}`)
            })
          }
          // gossipsub publishes to topic peers it is not meshed with (fanout), so a peer in the topic is enough
          yield* Effect.gen(function*() {
            while (pubsub.peers(flags.topic).length === 0) yield* Effect.sleep("20 millis")
          }).pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () =>
                Effect.fail(
                  new NoTopicPeers({
                    topic: flags.topic,
                    message: `no peer subscribed to ${flags.topic} within ${Duration.format(timeout)}`
                  })
                )
            })
          )
          const r = yield* pubsub.publish(flags.topic, new TextEncoder().encode(flags.text))
          yield* pubsub.flush.pipe(Effect.timeoutOption(timeout))
          yield* publishedEvent(flags.json, flags.topic, r.recipients)
        }).pipe(Effect.scoped))
    }).pipe(usageAsHelp(["effect-libp2p", "pubsub", "publish"]))
).pipe(Command.withDescription("join a topic through --bootstrap peers, publish one message, exit"))

export const command = Command.make("pubsub").pipe(
  Command.withDescription("one-shot pubsub operations through a temporary node"),
  Command.withSubcommands([publishCommand])
)
