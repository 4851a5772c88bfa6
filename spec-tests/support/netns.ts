/**
 * A NAT test network built from Linux network namespaces by the test itself
 * (issue 17): an "internet" bridge in its own namespace, a public host (the
 * relay of later tests), and two sites, each a router namespace doing
 * nftables masquerade for one host behind it.
 *
 * ```
 *                 inet ns: bridge elp-br, 203.0.113.0/24 (or `internet`)
 *        ┌───────────────────┼───────────────────────┐
 *   pub 203.0.113.10   router a .2 (wan)       router b .3 (wan)
 *                      10.0.1.1 (lan)           10.0.2.1 (lan)
 *                           │                        │
 *                      host a 10.0.1.2          host b 10.0.2.2
 * ```
 *
 * The routers' NAT (`kind`):
 * - `"endpoint-independent"`: `masquerade` — Linux conntrack keeps the source
 *   port when it is free, so a host's listening port is its public port too
 *   (what TCP hole punching needs);
 * - `"symmetric"`: `masquerade random,fully-random` — every connection gets a
 *   random public port, so the port a peer learnt is never the one used for
 *   the next destination and hole punching fails.
 *
 * Both routers drop unsolicited packets from the internet silently (no RST: a
 * RST would make the peer's simultaneous-open `connect` fail), as home NATs do.
 * 203.0.113.0/24 is a documentation range, "reserved" to `MultiaddrNet`: code
 * under test that filters public addresses is given `publicCidrs: [internet]`.
 *
 * Names: every namespace is `elp-<pid>-<n><random>-<role>` (another prefix with
 * `NatOptions.prefix`: a test file that wants its namespaces apart, e.g. `gp-`)
 * and every interface carries the `elp-` prefix; {@link cleanupStale} removes
 * those of processes that are gone, {@link teardown} (or the scope of
 * {@link acquire}) removes the network's own, {@link cleanupOwn} every one of a
 * prefix made by this process. Nothing is created in the caller's namespace.
 */
import { Duration, Effect, type Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Proc from "./process.ts"

export const PREFIX = "elp-"

export type NatKind = "endpoint-independent" | "symmetric"

export interface NetHost {
  /** The namespace the host's processes run in. */
  readonly ns: string
  /** Its own address. */
  readonly ip: string
}

export interface NatSite {
  readonly router: { readonly ns: string; readonly wanIp: string; readonly lanIp: string }
  /** The host behind the router. */
  readonly host: NetHost
  /** The address the internet sees the host's connections come from (the router's WAN address). */
  readonly publicIp: string
  readonly kind: NatKind
}

export interface NatTopology {
  readonly id: string
  /** The internet's namespace and network (the bridge is `elp-br` in it). */
  readonly internet: { readonly ns: string; readonly cidr: string }
  /** A host on the internet itself (no NAT): the relay. */
  readonly pub: NetHost
  readonly a: NatSite
  readonly b: NatSite
  /** Every namespace this network made. */
  readonly namespaces: ReadonlyArray<string>
}

export interface NatOptions {
  /** NAT of site a (default endpoint-independent). */
  readonly a?: NatKind
  /** NAT of site b (default endpoint-independent). */
  readonly b?: NatKind
  /**
   * The internet's /24, as its first three octets (default "203.0.113", a
   * documentation range). js-libp2p and go-libp2p never treat documentation
   * ranges as public (their DCUtR drops them, their AutoNAT refuses them):
   * give a public-looking one such as "5.5.5" when one of them runs in the
   * network (the namespaces are isolated, nothing leaves them).
   */
  readonly internet?: string
  /** The namespaces' name prefix (default {@link PREFIX}); {@link cleanupStale} and {@link cleanupOwn} take it too. */
  readonly prefix?: string
}

const run = (cmd: string, args: ReadonlyArray<string>, input?: string): string =>
  ChildProcess.execFileSync(cmd, args, {
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
    ...(input !== undefined ? { input } : {})
  })

const which = (cmd: string): boolean => {
  try {
    run("sh", ["-c", `command -v ${cmd}`])
    return true
  } catch {
    return false
  }
}

/**
 * Why the NAT network cannot be built here, or undefined when it can (Linux,
 * root, `ip` and `nft` installed, and a namespace can actually be made).
 */
export const unavailable = (): string | undefined => {
  if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return "network namespaces need root (ip netns, nftables)"
  if (!which("ip")) return "the `ip` command (iproute2) is not installed"
  if (!which("nft")) return "the `nft` command (nftables) is not installed"
  const probe = `${PREFIX}${process.pid}-probe-${Crypto.randomBytes(3).toString("hex")}`
  try {
    run("ip", ["netns", "add", probe])
    run("ip", ["netns", "exec", probe, "nft", "list", "ruleset"])
  } catch (e) {
    return `cannot create a network namespace with nftables: ${String((e as { stderr?: unknown }).stderr ?? e)}`
  } finally {
    try {
      run("ip", ["netns", "del", probe])
    } catch {
      // never made
    }
  }
  return undefined
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

/** Our namespaces (`elp-…`, or `prefix…`), with the pid of the process that made them. */
const ours = (prefix: string = PREFIX): ReadonlyArray<{ readonly name: string; readonly pid: number }> => {
  let out: string
  try {
    out = run("ip", ["netns", "list"])
  } catch {
    return []
  }
  return out.split("\n").flatMap((line) => {
    const name = line.trim().split(/\s+/)[0] ?? ""
    if (!name.startsWith(prefix)) return []
    const pid = Number(name.slice(prefix.length).split("-")[0])
    return Number.isInteger(pid) ? [{ name, pid }] : []
  })
}

/** The `elp-` (or `prefix`) namespaces that exist now (any process's). */
export const existing = (prefix: string = PREFIX): ReadonlyArray<string> => ours(prefix).map((n) => n.name)

const delNs = (name: string): void => {
  try {
    run("ip", ["netns", "del", name])
  } catch {
    // already gone
  }
}

/** Remove the `elp-` (or `prefix`) namespaces of processes that no longer run (a test run that was killed). */
export const cleanupStale = (prefix: string = PREFIX): ReadonlyArray<string> => {
  const stale = ours(prefix).filter((n) => n.pid !== process.pid && !alive(n.pid)).map((n) => n.name)
  stale.forEach(delNs)
  return stale
}

/**
 * Remove the `prefix` namespaces of this process and of processes that are
 * gone (for an `afterAll`: whatever a failed test's scope left behind).
 */
export const cleanupOwn = (prefix: string): ReadonlyArray<string> => {
  const own = ours(prefix).filter((n) => n.pid === process.pid).map((n) => n.name)
  own.forEach(delNs)
  return [...own, ...cleanupStale(prefix)]
}

/** Remove the network's namespaces (their interfaces, bridge and rules go with them). */
export const teardown = (topology: Pick<NatTopology, "namespaces">): void => {
  topology.namespaces.forEach(delNs)
}

let seq = 0

const INTERNET = "203.0.113"

const natRules = (kind: NatKind): string => `
table ip elp_nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "elp-wan" masquerade${kind === "symmetric" ? " random,fully-random" : ""}
  }
}
table ip elp_filter {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "elp-wan" ct state established,related accept
    iifname "elp-wan" drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "elp-wan" ct state established,related accept
    iifname "elp-wan" drop
  }
}
`

/**
 * Build the network (synchronously; a few hundred milliseconds). On failure
 * whatever was made is removed before the error is thrown.
 */
export const setup = (options: NatOptions = {}): NatTopology => {
  const prefix = options.prefix ?? PREFIX
  cleanupStale(prefix)
  // the pid for cleanupStale; a random part as well: a worker process may run several test files in turn
  const id = `${process.pid}-${seq++}${Crypto.randomBytes(2).toString("hex")}`
  const ns = (role: string) => `${prefix}${id}-${role}`
  const inet = ns("inet")
  const net = options.internet ?? INTERNET
  if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(net)) throw new Error(`netns: internet must be three octets, not ${net}`)
  const site = (name: "a" | "b", n: number, kind: NatKind): NatSite => ({
    router: { ns: ns(`r${name}`), wanIp: `${net}.${n + 1}`, lanIp: `10.0.${n}.1` },
    host: { ns: ns(`h${name}`), ip: `10.0.${n}.2` },
    publicIp: `${net}.${n + 1}`,
    kind
  })
  const a = site("a", 1, options.a ?? "endpoint-independent")
  const b = site("b", 2, options.b ?? "endpoint-independent")
  const pub: NetHost = { ns: ns("pub"), ip: `${net}.10` }
  const namespaces = [inet, pub.ns, a.router.ns, a.host.ns, b.router.ns, b.host.ns]
  const topology: NatTopology = { id, internet: { ns: inet, cidr: `${net}.0/24` }, pub, a, b, namespaces }
  const inNs = (name: string, ...args: Array<string>) => run("ip", ["-n", name, ...args])
  try {
    for (const name of namespaces) {
      run("ip", ["netns", "add", name])
      inNs(name, "link", "set", "lo", "up")
    }
    inNs(inet, "link", "add", "elp-br", "type", "bridge")
    inNs(inet, "link", "set", "elp-br", "up")
    /** A veth pair from `name`'s `dev` into the internet bridge (port `port`). */
    const plugIn = (name: string, dev: string, port: string, cidr: string) => {
      run("ip", ["link", "add", "name", dev, "netns", name, "type", "veth", "peer", "name", port, "netns", inet])
      inNs(inet, "link", "set", port, "master", "elp-br")
      inNs(inet, "link", "set", port, "up")
      inNs(name, "addr", "add", cidr, "dev", dev)
      inNs(name, "link", "set", dev, "up")
    }
    plugIn(pub.ns, "elp-eth0", "elp-pub", `${pub.ip}/24`)
    for (const [s, tag] of [[a, "a"], [b, "b"]] as const) {
      plugIn(s.router.ns, "elp-wan", `elp-r${tag}`, `${s.router.wanIp}/24`)
      run("ip", [
        "link",
        "add",
        "name",
        "elp-lan",
        "netns",
        s.router.ns,
        "type",
        "veth",
        "peer",
        "name",
        "elp-eth0",
        "netns",
        s.host.ns
      ])
      inNs(s.router.ns, "addr", "add", `${s.router.lanIp}/24`, "dev", "elp-lan")
      inNs(s.router.ns, "link", "set", "elp-lan", "up")
      inNs(s.host.ns, "addr", "add", `${s.host.ip}/24`, "dev", "elp-eth0")
      inNs(s.host.ns, "link", "set", "elp-eth0", "up")
      inNs(s.host.ns, "route", "add", "default", "via", s.router.lanIp)
      run("ip", ["netns", "exec", s.router.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
      run("ip", ["netns", "exec", s.router.ns, "nft", "-f", "-"], natRules(s.kind))
    }
    return topology
  } catch (e) {
    teardown(topology)
    throw e
  }
}

/** The network as a scoped resource: built on acquire, removed when the scope closes (also on failure). */
export const acquire = (options: NatOptions = {}): Effect.Effect<NatTopology, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => setup(options)),
    (t) => Effect.sync(() => teardown(t))
  )

/** Run a command in a namespace and return its stdout (throws on a non-zero exit). */
export const exec = (ns: string, cmd: string, args: ReadonlyArray<string>): string =>
  run("ip", ["netns", "exec", ns, cmd, ...args])

/**
 * Run a Node program (a `.ts` file runs as is: Node 24 strips the types) in a
 * namespace as a scoped child process (`Proc.spawn`: SIGKILLed when the scope
 * closes). The same Node binary as the test's.
 */
export const spawnNode = (
  ns: string,
  script: string,
  args: ReadonlyArray<string>,
  options: Omit<Proc.SpawnOptions, "cwd"> & { readonly cwd?: string } = {}
): Effect.Effect<Proc.Process, Proc.ProcessError, Scope.Scope> =>
  Proc.spawn("ip", ["netns", "exec", ns, process.execPath, script, ...args], {
    cwd: options.cwd ?? process.cwd(),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ...(options.stdin !== undefined ? { stdin: options.stdin } : {})
  })

/** A temporary file with `text`, removed when the scope closes (a script for {@link spawnNode}). */
export const tempScript = (name: string, text: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), PREFIX))
      const file = Path.join(dir, name)
      Fs.writeFileSync(file, text)
      return file
    }),
    (file) => Effect.sync(() => Fs.rmSync(Path.dirname(file), { recursive: true, force: true }))
  )

/** The lines of a child's stdout so far that start with `prefix`. */
export const outputLines = (proc: Proc.Process, prefix: string): ReadonlyArray<string> =>
  proc.stdout().split("\n").filter((l) => l.startsWith(prefix))

/** The `n`-th (1-based) line of a child's stdout starting with `prefix`, once it is there (a minute at most). */
export const nthOutputLine = (proc: Proc.Process, prefix: string, n: number): Effect.Effect<string> =>
  Effect.gen(function*() {
    for (let i = 0; i < 600; i++) {
      const found = outputLines(proc, prefix)
      if (found.length >= n) return found[n - 1]!
      yield* Effect.sleep(Duration.millis(100))
    }
    return yield* Effect.die(`no line ${n} starting with "${prefix}" in:\n${proc.stdout()}\n${proc.stderr()}`)
  })
