/**
 * Daemons for the daemon tests, each in a separate process: ours through the CLI
 * (`daemon --json`, like spec-tests/cli), and a js-libp2p node served by
 * `@libp2p/daemon-server` (harness/js-daemon.mjs). Both are driven by the same
 * `@libp2p/daemon-client` code, in this process.
 */
import { createClient, type DaemonClient } from "@libp2p/daemon-client"
import { type Request, Response } from "@libp2p/daemon-protocol"
import { lpStream } from "@libp2p/utils"
import { multiaddr } from "@multiformats/multiaddr"
import { Effect, Schema } from "effect"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import * as Keys from "../../src/core/Keys.ts"
import { type Cli, spawnCli } from "../cli/support.ts"
import * as Process from "../support/process.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const JS_DAEMON = fileURLToPath(new URL("./harness/js-daemon.mjs", import.meta.url))

export class ClientError extends Schema.TaggedError<ClientError>()("ClientError", {
  message: Schema.String
}) {}

/** A promise of the js client as an Effect; its rejection is a ClientError with the message. */
export const call = <A>(f: () => Promise<A>) =>
  Effect.tryPromise({
    try: f,
    catch: (e) => new ClientError({ message: e instanceof Error ? e.message : String(e) })
  })

/** `sh.read(codec)`, typed (the client and the protocol package resolve different uint8arraylist typings). */
export const readAs = <T>(sh: { readonly read: (codec: never) => Promise<unknown> }, codec: unknown) =>
  sh.read(codec as never) as Promise<T>

/** One raw request and its first response (for requests the js client has no method for). */
export const raw = (d: Daemon, request: Request) =>
  call(async () => {
    const sh = await d.client.send(request)
    const response = await readAs<Response>(sh, Response)
    await sh.unwrap().close()
    return response
  })

export interface Daemon {
  readonly pid: number
  readonly peerId: string
  /** The control address in the js multiaddr form (a /unix path URL-encoded). */
  readonly controlAddr: string
  readonly addrs: ReadonlyArray<string>
  readonly client: DaemonClient
  readonly stderr: () => string
  /** The status server's URL (`--http`), from the `daemon` line. */
  readonly http?: string
}

/** Our `/unix/<path>` as js writes it (`/unix/%2Ftmp%2Fx.sock`). */
export const jsForm = (addr: string) =>
  addr.startsWith("/unix/") ? `/unix/${encodeURIComponent(addr.slice("/unix".length))}` : addr

export interface OurDaemonOptions {
  readonly control?: string
  readonly args?: ReadonlyArray<string>
}

/** Our daemon (`daemon --control … --json`), killed when the scope closes. */
export const ourDaemon = (options: OurDaemonOptions = {}) =>
  Effect.gen(function*() {
    const cli: Cli = yield* spawnCli([
      "daemon",
      "--control",
      options.control ?? "/ip4/127.0.0.1/tcp/0",
      "--json",
      ...(options.args ?? [])
    ])
    const line = yield* cli.awaitLine((l) => l["event"] === "daemon", "60 seconds")
    const controlAddr = jsForm(String(line["controlAddr"]))
    const daemon: Daemon = {
      pid: cli.pid,
      peerId: String(line["peerId"]),
      controlAddr,
      addrs: line["addrs"] as ReadonlyArray<string>,
      client: createClient(multiaddr(controlAddr)),
      stderr: cli.stderr,
      ...(typeof line["http"] === "string" ? { http: line["http"] } : {})
    }
    return daemon
  })

export interface JsDaemonOptions {
  readonly privateKey?: Keys.PrivateKey
  readonly security?: ReadonlyArray<string>
  readonly muxers?: ReadonlyArray<string>
  readonly dht?: "server" | "client"
  readonly pubsub?: "gossipsub" | "floodsub"
  /** Reserve on these relays: `<relay addr>/p2p/<relay>/p2p-circuit` listen addresses. */
  readonly relayListen?: ReadonlyArray<string>
}

/** A js-libp2p node behind `@libp2p/daemon-server`, stopped when the scope closes. */
export const jsDaemon = (options: JsDaemonOptions = {}) =>
  Effect.gen(function*() {
    const config = {
      control: "/ip4/127.0.0.1/tcp/0",
      ...(options.privateKey !== undefined
        ? { privateKey: Buffer.from(Keys.privateKeyToProtobuf(options.privateKey)).toString("hex") }
        : {}),
      ...(options.security !== undefined ? { security: options.security } : {}),
      ...(options.muxers !== undefined ? { muxers: options.muxers } : {}),
      ...(options.dht !== undefined ? { dht: options.dht } : {}),
      ...(options.pubsub !== undefined ? { pubsub: options.pubsub } : {}),
      ...(options.relayListen !== undefined ? { relayListen: options.relayListen } : {})
    }
    const p = yield* Process.spawn(process.execPath, [JS_DAEMON, JSON.stringify(config)], { cwd: ROOT, stdin: true })
    const match = yield* p.awaitOutput(/^(\{"event":"daemon".*\})$/m, "60 seconds")
    const line = JSON.parse(match[1]!) as { controlAddr: string; peerId: string; addrs: Array<string> }
    const daemon: Daemon = {
      pid: p.pid,
      peerId: line.peerId,
      controlAddr: line.controlAddr,
      addrs: line.addrs.map((a) => a.replace(/\/p2p\/.*$/, "")),
      client: createClient(multiaddr(line.controlAddr)),
      stderr: p.stderr
    }
    return daemon
  })

/** A handler that echoes one length-prefixed message, as the interop clients do. */
export const echoHandler = async (stream: Parameters<Parameters<DaemonClient["registerStreamHandler"]>[1]>[0]) => {
  const lp = lpStream(stream)
  const msg = await lp.read()
  await lp.write(msg.subarray())
  await stream.close()
}

/** Open `protocol` to `peer` through `client`, send one length-prefixed message, read the echo. */
export const echoOver = async (
  client: DaemonClient,
  peer: Parameters<DaemonClient["openStream"]>[0],
  text: string,
  protocol = "/echo/1.0.0"
) => {
  const stream = await client.openStream(peer, protocol)
  const lp = lpStream(stream)
  await lp.write(new TextEncoder().encode(text))
  const reply = await lp.read()
  await stream.close()
  return new TextDecoder().decode(reply.subarray())
}

/** Open file descriptors of a process (Linux /proc). */
export const fdCount = (pid: number) => Effect.sync(() => Fs.readdirSync(`/proc/${pid}/fd`).length)
