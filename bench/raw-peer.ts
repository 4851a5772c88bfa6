/**
 * raw-peer: the physical limit for bench/main.ts — plain `node:net` over
 * loopback, no security, no muxer, in its own process, driven with the same
 * JSON-lines commands as bench/ours-peer.ts (a subset).
 *
 * Wire format (ours, not a libp2p protocol): the client's first byte picks the
 * mode.
 * - `P` perf-like (the shape of the perf spec, https://github.com/libp2p/specs/blob/master/perf/perf.md):
 *   an 8-byte big-endian download size, the upload, client half-closes; the
 *   server discards until EOF, then sends the download and ends.
 * - `E` echo: everything is written back until EOF (Nagle off both sides).
 *
 * Output: {"event":"ready","peerId":"raw","addrs":["/ip4/127.0.0.1/tcp/N"],"node":"v24..."}, then answers.
 * Commands (stdin, {"id":N,"cmd":...}):
 *   perf {addr, uploadBytes, downloadBytes} → {seconds, uploadSeconds, uploadBytes, downloadBytes}
 *   echoLoop {addr, count, size=1}          → {us:[µs per round trip]}  on one connection
 *   cpu                                     → {user, system (µs), heapUsed, rss, external, arrayBuffers, monoUs}
 *   stop                                    → exit 0
 *
 * Writes are 64 KiB views of one zero buffer, waiting for 'drain' when asked,
 * the same chunk size the js-libp2p harness writes.
 *
 * Run: node bench/raw-peer.ts
 */
import * as Net from "node:net"
import * as Readline from "node:readline"

const CHUNK = 64 * 1024
const ZEROS = new Uint8Array(CHUNK)

const emit = (obj: Record<string, unknown>): void => {
  process.stdout.write(JSON.stringify(obj) + "\n")
}

/** Write `count` bytes of zeros, honouring backpressure. */
const writeZeros = (socket: Net.Socket, count: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let left = count
    const onError = (err: Error) => reject(err)
    socket.once("error", onError)
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, CHUNK)
        left -= n
        if (!socket.write(n === CHUNK ? ZEROS : ZEROS.subarray(0, n))) {
          socket.once("drain", pump)
          return
        }
      }
      socket.off("error", onError)
      resolve()
    }
    pump()
  })

// ---------------------------------------------------------------- server

const server = Net.createServer({ allowHalfOpen: true }, (socket) => {
  socket.setNoDelay(true)
  let mode = 0
  let header: Array<Buffer> = []
  let headerBytes = 0
  let download = -1
  socket.on("error", () => socket.destroy())
  socket.on("data", (data: Buffer) => {
    if (mode === 0) {
      mode = data[0]!
      data = data.subarray(1)
    }
    if (mode === 0x45) { // 'E'
      if (data.length > 0) socket.write(data)
      return
    }
    if (download < 0 && data.length > 0) {
      header.push(data)
      headerBytes += data.length
      if (headerBytes >= 8) {
        const all = Buffer.concat(header)
        download = Number(all.readBigUInt64BE(0))
        header = []
      }
    }
  })
  socket.on("end", () => {
    if (mode === 0x45) {
      socket.end()
      return
    }
    void writeZeros(socket, Math.max(download, 0)).then(() => socket.end(), () => socket.destroy())
  })
})

await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const address = server.address() as Net.AddressInfo

// ---------------------------------------------------------------- client

const portOf = (addr: string): number => {
  const m = /\/tcp\/(\d+)/.exec(addr)
  if (m === null) throw new Error(`no /tcp/ port in ${addr}`)
  return Number(m[1])
}

const connect = (addr: string): Promise<Net.Socket> =>
  new Promise((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port: portOf(addr), allowHalfOpen: true }, () => resolve(socket))
    socket.setNoDelay(true)
    socket.once("error", reject)
  })

const perf = async (addr: string, upload: number, download: number) => {
  const t0 = performance.now()
  const socket = await connect(addr)
  let got = 0
  const done = new Promise<void>((resolve, reject) => {
    socket.on("data", (d: Buffer) => {
      got += d.length
    })
    socket.on("end", () => resolve())
    socket.on("error", reject)
  })
  const head = Buffer.alloc(9)
  head[0] = 0x50 // 'P'
  head.writeBigUInt64BE(BigInt(download), 1)
  socket.write(head)
  await writeZeros(socket, upload)
  socket.end()
  const uploaded = performance.now()
  await done
  const t1 = performance.now()
  socket.destroy()
  if (got !== download) throw new Error(`raw perf: asked for ${download} bytes, got ${got}`)
  return { seconds: (t1 - t0) / 1000, uploadSeconds: (uploaded - t0) / 1000, uploadBytes: upload, downloadBytes: got }
}

const echoLoop = async (addr: string, count: number, size: number) => {
  const socket = await connect(addr)
  const payload = new Uint8Array(size).fill(0x2a)
  let got = 0
  let target = 0
  let wake: (() => void) | undefined
  socket.on("data", (d: Buffer) => {
    got += d.length
    if (wake !== undefined && got >= target) {
      const w = wake
      wake = undefined
      w()
    }
  })
  socket.write(Uint8Array.of(0x45)) // 'E'
  const us: Array<number> = []
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    target = (i + 1) * size
    const arrived = new Promise<void>((r) => {
      if (got >= target) r()
      else wake = r
    })
    socket.write(payload)
    await arrived
    us.push((performance.now() - t0) * 1000)
  }
  socket.destroy()
  return { us }
}

// ---------------------------------------------------------------- commands

type Args = Readonly<Record<string, unknown>>
const num = (args: Args, key: string, dflt: number): number => {
  const v = args[key]
  return typeof v === "number" ? v : dflt
}
const addrOf = (args: Args): string => {
  const v = args["addr"]
  if (typeof v !== "string") throw new Error("need addr")
  return v
}

const commands: Record<string, (args: Args) => Promise<Record<string, unknown>>> = {
  perf: (args) => perf(addrOf(args), num(args, "uploadBytes", 0), num(args, "downloadBytes", 0)),
  echoLoop: (args) => echoLoop(addrOf(args), num(args, "count", 1), num(args, "size", 1)),
  cpu: async () => {
    const c = process.cpuUsage()
    const m = process.memoryUsage()
    return {
      user: c.user,
      system: c.system,
      heapUsed: m.heapUsed,
      rss: m.rss,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      monoUs: Number(process.hrtime.bigint() / 1000n)
    }
  }
}

const handleLine = async (line: string): Promise<void> => {
  if (line.trim() === "") return
  const { id, cmd, ...args } = JSON.parse(line) as Record<string, unknown>
  if (cmd === "stop") {
    server.close()
    process.stdout.write(JSON.stringify({ id, ok: true }) + "\n", () => process.exit(0))
    return
  }
  const fn = typeof cmd === "string" && Object.hasOwn(commands, cmd) ? commands[cmd] : undefined
  if (fn === undefined) {
    emit({ id, ok: false, error: `unknown command: ${String(cmd)}`, errorName: "BadRequest" })
    return
  }
  try {
    emit({ id, ok: true, ...(await fn(args)) })
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    emit({ id, ok: false, error: `${e.name}: ${e.message}`, errorName: e.name })
  }
}

const rl = Readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
rl.on("line", (line) => void handleLine(line))
rl.on("close", () => process.exit(0))

emit({ event: "ready", peerId: "raw", addrs: [`/ip4/127.0.0.1/tcp/${address.port}`], node: process.version })
