/**
 * A LAN of network namespaces for the mDNS tests (multicast does not cross
 * namespaces): a hub namespace holding a bridge (multicast snooping off), and
 * one namespace per host, each with a veth `eth0` on the bridge, an address
 * `10.77.0.<i>/24`, loopback up and a route for 224.0.0.0/4. Every name
 * carries the prefix {@link PREFIX}; `cleanStale` removes what an earlier run
 * left, `remove` what this one made (afterAll, also when a test failed).
 * Needs Linux, root and `ip`: `skipReason` says why not.
 */
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"

export const PREFIX = "eld-"

const ip = (...args: ReadonlyArray<string>) => ChildProcess.execFileSync("ip", args, { stdio: "pipe" }).toString()

/** Why the namespace tests cannot run here, or `undefined`. */
export const skipReason = (): string | undefined => {
  if (Os.platform() !== "linux") return "network namespaces need Linux"
  if (process.getuid?.() !== 0) return "network namespaces need root"
  try {
    ip("netns", "list")
  } catch {
    return "the `ip` command (iproute2) is missing"
  }
  return undefined
}

const namespaces = () =>
  ip("netns", "list").split("\n").map((l) => l.split(" ")[0] ?? "").filter((n) => n.startsWith(PREFIX))

/** Delete every namespace with our prefix (their veths go with them). */
export const cleanStale = () => {
  for (const ns of namespaces()) ip("netns", "del", ns)
}

export interface Lan {
  /** Host name → its namespace. */
  readonly ns: (host: string) => string
  /** Host name → its address on the LAN. */
  readonly addr: (host: string) => string
  readonly remove: () => void
}

/** Build the LAN: `tag` keeps names short and distinct (interface names are at most 15 bytes). */
export const make = (tag: string, hosts: ReadonlyArray<string>): Lan => {
  const hub = `${PREFIX}${tag}-hub`
  const made: Array<string> = []
  const remove = () => {
    for (const ns of made.reverse()) {
      try {
        ip("netns", "del", ns)
      } catch {
        // already gone
      }
    }
  }
  try {
    ip("netns", "add", hub)
    made.push(hub)
    ip("-n", hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
    ip("-n", hub, "link", "set", "br0", "up")
    hosts.forEach((h, i) => {
      const ns = `${PREFIX}${tag}-${h}`
      ip("netns", "add", ns)
      made.push(ns)
      const a = `${PREFIX}${tag}${i}a`
      const b = `${PREFIX}${tag}${i}b`
      ip("link", "add", a, "type", "veth", "peer", "name", b)
      ip("link", "set", a, "netns", ns)
      ip("link", "set", b, "netns", hub)
      ip("-n", ns, "link", "set", a, "name", "eth0")
      ip("-n", ns, "addr", "add", `10.77.0.${i + 1}/24`, "dev", "eth0")
      ip("-n", ns, "link", "set", "eth0", "up")
      ip("-n", ns, "link", "set", "lo", "up")
      ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
      ip("-n", hub, "link", "set", b, "master", "br0")
      ip("-n", hub, "link", "set", b, "up")
    })
  } catch (e) {
    remove()
    throw e
  }
  return {
    ns: (h) => `${PREFIX}${tag}-${h}`,
    addr: (h) => `10.77.0.${hosts.indexOf(h) + 1}`,
    remove
  }
}
