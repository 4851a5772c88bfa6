/**
 * Child process of `DcutrNat.test.ts`, on the public host: a stand-in for a
 * circuit relay that counts every byte it moves (and does nothing else: no
 * reservation, no hop/stop protocol). It listens on `0.0.0.0:<argv[2]>`; a
 * connection whose first byte is `L` waits to be paired, one whose first
 * byte is `D` is paired with the oldest waiting `L` and the two are piped
 * together (bytes after the first, both ways). Prints `listening`, and on
 * the stdin line `stats` prints `bytes <n>`: every byte piped so far.
 */
import * as Net from "node:net"
import * as Readline from "node:readline"

const port = Number(process.argv[2])
const waiting: Array<Net.Socket> = []
let bytes = 0

const pipe = (from: Net.Socket, to: Net.Socket) => {
  from.on("data", (chunk: Buffer) => {
    bytes += chunk.byteLength
    to.write(chunk)
  })
  from.on("end", () => to.end())
  from.on("error", () => to.destroy())
  from.on("close", () => to.destroy())
}

const server = Net.createServer((socket) => {
  socket.on("error", () => socket.destroy())
  socket.once("readable", function first() {
    const head = socket.read(1) as Buffer | null
    if (head === null) return socket.once("readable", first)
    if (head[0] === 0x4c) return void waiting.push(socket) // "L"
    const other = waiting.shift()
    if (head[0] !== 0x44 || other === undefined) return void socket.destroy() // not "D", or nobody to reach
    pipe(socket, other)
    pipe(other, socket) // bytes buffered behind the first one flow out with the 'data' events
  })
})

server.listen({ host: "0.0.0.0", port }, () => process.stdout.write("listening\n"))
Readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "stats") process.stdout.write(`bytes ${bytes}\n`)
})
