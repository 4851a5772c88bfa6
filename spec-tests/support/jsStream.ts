/**
 * An adapter for in-process interop with js-libp2p modules: a js-libp2p
 * `Stream` (an `AbstractStream`) whose bytes travel over one end of our
 * `Duplex`, so js's multistream-select, Noise, TLS, yamux or mplex can run
 * against ours over `Duplex.pair()`.
 */
import type { Stream } from "@libp2p/interface"
import { defaultLogger } from "@libp2p/logger"
import type { SendResult } from "@libp2p/utils"
import { AbstractStream } from "@libp2p/utils"
import { Bytes, Effect, Exit } from "effect"
import type * as Duplex from "../../src/core/Duplex.ts"

let nextId = 0

export interface DuplexStreamOptions {
  /** The log component's middle part (`test:<name>:<direction>:<id>`). */
  readonly name?: string
  /** Close the js stream once the remote ended its writes (what a js muxer's connection needs). */
  readonly closeOnRemoteEnd?: boolean
}

/** A js-libp2p Stream backed by one end of our Duplex. */
export class DuplexStream extends AbstractStream {
  readonly duplex: Duplex.Duplex
  readonly #closeOnRemoteEnd: boolean
  #writes: Promise<void> = Promise.resolve()

  constructor(duplex: Duplex.Duplex, direction: "inbound" | "outbound", options: DuplexStreamOptions = {}) {
    const id = `${nextId++}`
    const name = options.name ?? "duplex-stream"
    super({ id, direction, log: defaultLogger().forComponent(`test:${name}:${direction}:${id}`) })
    this.duplex = duplex
    this.#closeOnRemoteEnd = options.closeOnRemoteEnd ?? false
    void this.#pump()
  }

  async #pump(): Promise<void> {
    while (true) {
      const exit = await Effect.runPromiseExit(this.duplex.read)
      if (Exit.isFailure(exit)) {
        this.onRemoteReset()
        return
      }
      if (exit.value.length === 0) {
        this.onRemoteCloseWrite()
        if (this.#closeOnRemoteEnd) void this.close()
        return
      }
      for (const chunk of exit.value) this.onData(chunk)
    }
  }

  sendData(data: Parameters<AbstractStream["sendData"]>[0]): SendResult {
    const chunks = [...data].map((c) => c.slice())
    this.#writes = this.#writes.then(() => Effect.runPromise(Effect.ignore(this.duplex.write(chunks))))
    return { sentBytes: data.byteLength, canSendMore: true }
  }
  sendReset(): void {
    void Effect.runPromise(this.duplex.reset)
  }
  sendPause(): void {}
  sendResume(): void {}
  async sendCloseWrite(): Promise<void> {
    await this.#writes
    await Effect.runPromise(this.duplex.closeWrite)
  }
  async sendCloseRead(): Promise<void> {}
}

/** The bytes of a js-libp2p stream chunk (a Uint8Array or a Uint8ArrayList). */
export const toBytes = (chunk: Uint8Array | { subarray: () => Uint8Array }): Uint8Array =>
  chunk instanceof Uint8Array ? chunk : chunk.subarray()

/** js: echo a stream back, then close its write side. */
export const jsEcho = async (stream: Stream): Promise<void> => {
  for await (const chunk of stream) {
    if (!stream.send(chunk)) await stream.onDrain()
  }
  await stream.close()
}

/** js: send `data` in pieces, close, and collect everything the stream returns. */
export const jsRoundTrip = async (stream: Stream, data: Uint8Array, piece = 50_000): Promise<Uint8Array> => {
  const received: Array<Uint8Array> = []
  const reading = (async () => {
    for await (const chunk of stream) received.push(toBytes(chunk).slice())
  })()
  for (let at = 0; at < data.byteLength; at += piece) {
    if (!stream.send(data.subarray(at, at + piece))) await stream.onDrain()
  }
  await stream.close()
  await reading
  return Bytes.concat(received)
}

/** A byte pattern that is cheap to make in any size (i·131 + seed·7). */
export const linearPattern = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 131 + seed * 7) & 0xff)
