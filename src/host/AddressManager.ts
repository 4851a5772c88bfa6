/**
 * AddressManager: the addresses this node has and how reachable it is —
 * listen addresses (what our transports bound), observed addresses (what
 * peers tell us they see us at, identify's `observedAddr`), confirmed
 * addresses (dialed back successfully, set by AutoNAT) and the node's
 * reachability (`unknown`, `public`, `private`). The NAT work (AutoNAT,
 * relay, DCUtR) reads and writes it (docs/ARCHITECTURE.md §4.5, §2.3, §7).
 *
 * No libp2p spec defines it; it follows go-libp2p's `p2p/host/observedaddrs`
 * (thin-waist matching, distinct observers, an activation threshold) and
 * `p2p/host/basic/addrs_manager.go`:
 *
 * - **An observation** is about one of our listeners: its local address (the
 *   connection's) must be `/ip4|ip6/<ip>/tcp|udp/<port>` and match a listen
 *   address (same protocol and port; same IP or a wildcard listener), and the
 *   observed address must have that shape with the same IP version and the
 *   same transport. Observed loopback addresses (we know those) and relayed
 *   ones (they are the relay's) are ignored.
 * - **Observers**: the remote's IPv4 address, or its IPv6 /56, is one observer
 *   (many addresses of one host or one home network count once). One
 *   observer has one observation per listener: a newer one replaces it.
 * - **Trust**: an observed address is trusted once `activationThreshold` (4)
 *   distinct observers reported it within `observationTtl` (30 minutes); at
 *   most `maxPerListenAddr` (3) per listener, those with the most observers.
 *   A trusted address is advertised as the observed `ip/port` followed by the
 *   rest of the matching listen address (`/ws`, …).
 * - **Bounds**: at most `maxObservedAddrs` (128) observed addresses — a new
 *   one evicts one seen by a single observer (the least recently seen), or
 *   is dropped when every address has more —; at most `maxObserversPerAddr`
 *   (32) observers per address (the least recently seen one makes room);
 *   observations expire after `observationTtl`, read from `Clock`, checked on
 *   each use and by a fiber every `pruneInterval` (1 minute), so an expiry
 *   shows up in `events` without anyone asking; at most `maxConfirmedAddrs`
 *   (32) confirmed addresses (the oldest confirmation makes room).
 * - **Reachability** is what AutoNAT last said (`unknown` until then).
 * - **Confirmation**: while an AutoNAT client holds `requireConfirmation`,
 *   trusted observed addresses are advertised only once AutoNAT confirmed them
 *   (they are its candidates); without one, nothing could confirm them, and
 *   they are advertised once trusted (as go-libp2p did before AutoNAT v2).
 * - **Announce** (`announce`, `--announce`): when given, these addresses are
 *   advertised instead of all the others; **no-announce** (`noAnnounce`,
 *   `--no-announce`) removes every advertised address that starts with one of
 *   its entries (`/ip4/10.0.0.1` removes every port on that IP; a whole
 *   address removes that address).
 * - **Events** (`events`, a sliding buffer of `eventBuffer` (64) per
 *   subscriber): `ReachabilityChanged`, and `AddressesChanged` whenever
 *   {@link AddressManager} `addrs` — listen, confirmed, then trusted observed
 *   addresses — changes.
 *
 * Addresses are classified with {@link MultiaddrNet.classify} and the
 * configured `publicCidrs` (`--public-cidr`).
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Option, PubSub, Schedule, type Scope, Stream } from "effect"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as MultiaddrNet from "../core/MultiaddrNet.ts"

export type Reachability = "unknown" | "public" | "private"

/** What a peer reported on one connection. */
export interface Observation {
  /** The address the peer sees us at (identify's `observedAddr`). */
  readonly observed: Multiaddr.Multiaddr
  /** The connection's local address: which of our listeners the observation is about. */
  readonly local: Multiaddr.Multiaddr
  /** The connection's remote address: who observed. */
  readonly remote: Multiaddr.Multiaddr
}

/** What became of an observation: `Recorded`, or why it was ignored. */
export type ObserveResult =
  | "Recorded"
  | "Loopback" // the observed address is a loopback address
  | "Relayed" // the observed address goes through a relay
  | "NotThinWaist" // the local or observed address is not ip/tcp|udp
  | "NotListening" // the local address is not one of our listeners
  | "TransportMismatch" // observed and local differ in IP version or transport
  | "UnknownObserver" // the remote address is not an IP
  | "Full" // maxObservedAddrs reached and every address has more than one observer

/** An observed address (its `ip/port`) for one listener, as the manager holds it. */
export interface ObservedAddr {
  /** The listener's `ip/port` as the connection saw it. */
  readonly local: Multiaddr.Multiaddr
  /** The observed `ip/port`. */
  readonly observed: Multiaddr.Multiaddr
  /** Distinct observers whose observation has not expired. */
  readonly observers: number
  /** At least `activationThreshold` observers, and among the best `maxPerListenAddr` of its listener. */
  readonly trusted: boolean
  readonly addressClass: MultiaddrNet.AddressClass
  /** Clock time (ms) of the latest observation. */
  readonly lastSeen: number
}

export type AddressEvent =
  | {
    readonly _tag: "ReachabilityChanged"
    readonly reachability: Reachability
    /** The addresses the verdict covers. */
    readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
  }
  | { readonly _tag: "AddressesChanged"; readonly addrs: ReadonlyArray<Multiaddr.Multiaddr> }

export interface AddressManagerOptions {
  /** Distinct observers before an observed address is trusted (default 4, go-libp2p's `ActivationThresh`). */
  readonly activationThreshold?: number | undefined
  /** How long an observation counts (default 30 minutes, go-libp2p's observed-address TTL). */
  readonly observationTtl?: Duration.Input | undefined
  /** Observed addresses held at most, over all listeners (default 128). */
  readonly maxObservedAddrs?: number | undefined
  /** Observers held per observed address (default 32; at least `activationThreshold`). */
  readonly maxObserversPerAddr?: number | undefined
  /** Trusted observed addresses advertised per listener (default 3). */
  readonly maxPerListenAddr?: number | undefined
  /** Confirmed addresses held at most (default 32). */
  readonly maxConfirmedAddrs?: number | undefined
  /** How often expired observations are dropped without a call (default 1 minute). */
  readonly pruneInterval?: Duration.Input | undefined
  /** Events buffered per subscriber; the oldest are dropped beyond (default 64). */
  readonly eventBuffer?: number | undefined
  /** Networks to treat as public although they are private or reserved (`--public-cidr`; default none). */
  readonly publicCidrs?: ReadonlyArray<MultiaddrNet.Cidr> | undefined
  /** Advertise exactly these addresses instead of the listen, confirmed and observed ones (`--announce`). */
  readonly announce?: ReadonlyArray<Multiaddr.Multiaddr> | undefined
  /** Never advertise an address that starts with one of these (`--no-announce`). */
  readonly noAnnounce?: ReadonlyArray<Multiaddr.Multiaddr> | undefined
}

export const defaults = {
  activationThreshold: 4,
  observationTtl: Duration.minutes(30),
  maxObservedAddrs: 128,
  maxObserversPerAddr: 32,
  maxPerListenAddr: 3,
  maxConfirmedAddrs: 32,
  pruneInterval: Duration.minutes(1),
  eventBuffer: 64
} as const

export class AddressManager extends Context.Service<AddressManager, {
  /** Our listen addresses, in the order they were added. */
  readonly listenAddrs: () => ReadonlyArray<Multiaddr.Multiaddr>
  readonly addListenAddrs: (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => Effect.Effect<void>
  readonly removeListenAddrs: (addrs: ReadonlyArray<Multiaddr.Multiaddr>) => Effect.Effect<void>
  /** Record what a peer reported (identify's `observedAddr` on a connection). */
  readonly observe: (observation: Observation) => Effect.Effect<ObserveResult>
  /** Every observed address held, most observers first. */
  readonly observed: Effect.Effect<ReadonlyArray<ObservedAddr>>
  /** AutoNAT dialed us back at `addr`. */
  readonly confirm: (addr: Multiaddr.Multiaddr) => Effect.Effect<void>
  /** `addr` is no longer confirmed. */
  readonly unconfirm: (addr: Multiaddr.Multiaddr) => Effect.Effect<void>
  readonly confirmed: () => ReadonlyArray<Multiaddr.Multiaddr>
  readonly reachability: () => Reachability
  /** AutoNAT's verdict, for `addrs` (published as `ReachabilityChanged` when it changes). */
  readonly setReachability: (
    reachability: Reachability,
    addrs?: ReadonlyArray<Multiaddr.Multiaddr>
  ) => Effect.Effect<void>
  /**
   * What to advertise: listen addresses (wildcards left out), confirmed, then trusted observed ones
   * (confirmed ones only while `requireConfirmation` is held); `announce` instead when configured;
   * `noAnnounce` filtered out.
   */
  readonly addrs: Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>>
  /**
   * What to advertise given the caller's own listen addresses `base` (the Host's): `announce`
   * when configured, else `base` followed by `addrs`; a wildcard of `base` (`0.0.0.0`, `::`) is
   * replaced by the machine's interface addresses of its family (as go's
   * `ResolveUnspecifiedAddresses` and js's TCP listener do: a wildcard names no host a peer
   * could dial); `noAnnounce` filtered out.
   */
  readonly advertise: (base: ReadonlyArray<Multiaddr.Multiaddr>) => Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>>
  /** While the current scope lasts, trusted observed addresses are advertised only once confirmed (AutoNAT). */
  readonly requireConfirmation: Effect.Effect<void, never, Scope.Scope>
  /** {@link MultiaddrNet.classify} with the configured public CIDRs. */
  readonly classify: (addr: Multiaddr.Multiaddr) => MultiaddrNet.AddressClass
  readonly events: Stream.Stream<AddressEvent>
}>()("effect-libp2p/AddressManager") {}

// ---------------------------------------------------------------------------
// helpers (pure)

const count = (n: number | undefined, fallback: number, min: number): number =>
  n === undefined || !Number.isFinite(n) ? fallback : Math.max(min, Math.floor(n))

const millis = (d: Duration.Input | undefined, fallback: Duration.Duration): number =>
  Duration.toMillis(d === undefined ? fallback : Option.getOrElse(Duration.fromInput(d), () => fallback))

/**
 * Who observed: the remote's IPv4 address, or the /56 of its IPv6 address
 * (go-libp2p observedaddrs `getObserver`); `undefined` when it is not an IP.
 */
export const observerOf = (remote: Multiaddr.Multiaddr): string | undefined => {
  const ip = Multiaddr.ipBytes(remote)
  if (ip === undefined) return undefined
  return ip.length === 4 ? ip.join(".") : Array.from(ip.subarray(0, 7), (b) => b.toString(16)).join(":") + "::/56"
}

/** `listen` (a thin waist, maybe a wildcard) accepts connections whose local thin waist is `local`. */
const listensOn = (listen: Multiaddr.Multiaddr, local: Multiaddr.Multiaddr): boolean => {
  const [li, lt] = Multiaddr.components(listen)
  const [ci, ct] = Multiaddr.components(local)
  if (li === undefined || lt === undefined || ci === undefined || ct === undefined) return false
  if (li.code !== ci.code || lt.code !== ct.code || lt.value !== ct.value) return false
  return li.value === ci.value || Multiaddr.isUnspecified(listen)
}

/** The components of `prefix` begin `addr` (`/ip4/10.0.0.1` begins `/ip4/10.0.0.1/tcp/4001`). */
export const startsWith = (addr: Multiaddr.Multiaddr, prefix: Multiaddr.Multiaddr): boolean => {
  const a = Multiaddr.components(addr)
  const p = Multiaddr.components(prefix)
  return p.length > 0 && p.length <= a.length && p.every((c, i) => c.code === a[i]!.code && c.value === a[i]!.value)
}

/** Same IP version and same transport (tcp/udp). */
const consistent = (a: Multiaddr.Multiaddr, b: Multiaddr.Multiaddr): boolean => {
  const [ai, at] = Multiaddr.components(a)
  const [bi, bt] = Multiaddr.components(b)
  return ai?.code === bi?.code && at?.code === bt?.code
}

// ---------------------------------------------------------------------------
// state

interface Entry {
  readonly key: string
  readonly localKey: string
  readonly local: Multiaddr.Multiaddr
  readonly observed: Multiaddr.Multiaddr
  /** Observer → Clock time (ms) of its latest observation; insertion order is recency (oldest first). */
  readonly observers: Map<string, number>
}

const lastSeen = (e: Entry): number => {
  let latest = 0
  for (const t of e.observers.values()) latest = Math.max(latest, t)
  return latest
}

/** Most observers first; then the address text, so the order is stable. */
const byStrength = (a: Entry, b: Entry): number =>
  b.observers.size - a.observers.size || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/** The observed addresses and who observed them, bounded as the module doc says. */
class Observations {
  readonly entries = new Map<string, Entry>()
  /** `observer listener` → the key of the entry holding that observer's observation. */
  readonly byObserver = new Map<string, string>()
  readonly ttl: number
  readonly maxAddrs: number
  readonly maxObservers: number
  constructor(ttl: number, maxAddrs: number, maxObservers: number) {
    this.ttl = ttl
    this.maxAddrs = maxAddrs
    this.maxObservers = maxObservers
  }

  dropObserver(e: Entry, observer: string): void {
    e.observers.delete(observer)
    const k = `${observer} ${e.localKey}`
    if (this.byObserver.get(k) === e.key) this.byObserver.delete(k)
    if (e.observers.size === 0) this.entries.delete(e.key)
  }

  /** Drop observations older than the TTL. */
  prune(now: number): void {
    for (const e of Array.from(this.entries.values())) {
      for (const [observer, t] of Array.from(e.observers)) if (t + this.ttl <= now) this.dropObserver(e, observer)
    }
  }

  /** Make room for a new entry: evict a single-observer entry (least recently seen), or refuse. */
  makeRoom(): boolean {
    if (this.entries.size < this.maxAddrs) return true
    let victim: Entry | undefined
    for (const e of this.entries.values()) {
      if (e.observers.size === 1 && (victim === undefined || lastSeen(e) < lastSeen(victim))) victim = e
    }
    if (victim === undefined) return false
    for (const observer of Array.from(victim.observers.keys())) this.dropObserver(victim, observer)
    return true
  }

  record(local: Multiaddr.Multiaddr, observed: Multiaddr.Multiaddr, observer: string, now: number): ObserveResult {
    const localKey = Multiaddr.toString(local)
    const key = `${localKey} ${Multiaddr.toString(observed)}`
    const previous = this.byObserver.get(`${observer} ${localKey}`)
    let entry = this.entries.get(key)
    if (entry === undefined && !this.makeRoom()) return "Full"
    // one observation per observer and listener: a new one replaces the old
    if (previous !== undefined && previous !== key) {
      const old = this.entries.get(previous)
      if (old !== undefined) this.dropObserver(old, observer)
    }
    if (entry === undefined) {
      entry = { key, localKey, local, observed, observers: new Map() }
      this.entries.set(key, entry)
    }
    if (entry.observers.has(observer)) entry.observers.delete(observer) // re-inserted below: most recent last
    else if (entry.observers.size >= this.maxObservers) {
      const oldest = entry.observers.keys().next()
      if (oldest.done !== true) this.dropObserver(entry, oldest.value)
    }
    entry.observers.set(observer, now)
    this.entries.set(key, entry) // (again, if making room for the observer emptied it)
    this.byObserver.set(`${observer} ${localKey}`, key)
    return "Recorded"
  }

  /** The trusted entries: at least `threshold` observers, the best `perListener` of each listener. */
  trusted(threshold: number, perListener: number): ReadonlyArray<Entry> {
    const byListener = new Map<string, Array<Entry>>()
    for (const e of this.entries.values()) {
      if (e.observers.size < threshold) continue
      const list = byListener.get(e.localKey)
      if (list === undefined) byListener.set(e.localKey, [e])
      else list.push(e)
    }
    const out: Array<Entry> = []
    for (const list of byListener.values()) out.push(...list.sort(byStrength).slice(0, perListener))
    return out
  }
}

// ---------------------------------------------------------------------------
// service

/** An AddressManager whose pruning fiber and event buffer live in the current scope. */
export const make = (
  options: AddressManagerOptions = {}
): Effect.Effect<AddressManager["Service"], never, Scope.Scope> =>
  Effect.gen(function*() {
    const threshold = count(options.activationThreshold, defaults.activationThreshold, 1)
    const perListener = count(options.maxPerListenAddr, defaults.maxPerListenAddr, 1)
    const maxConfirmed = count(options.maxConfirmedAddrs, defaults.maxConfirmedAddrs, 1)
    const observations = new Observations(
      millis(options.observationTtl, defaults.observationTtl),
      count(options.maxObservedAddrs, defaults.maxObservedAddrs, 1),
      count(options.maxObserversPerAddr, defaults.maxObserversPerAddr, threshold)
    )
    const classifyOptions: MultiaddrNet.ClassifyOptions = { publicCidrs: options.publicCidrs ?? [] }
    const classify = (addr: Multiaddr.Multiaddr) => MultiaddrNet.classify(addr, classifyOptions)
    const pubsub = yield* PubSub.sliding<AddressEvent>(count(options.eventBuffer, defaults.eventBuffer, 1))
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))

    let listen: ReadonlyArray<Multiaddr.Multiaddr> = []
    let confirmed: ReadonlyArray<Multiaddr.Multiaddr> = []
    let reachability: Reachability = "unknown"

    const announce = options.announce ?? []
    const noAnnounce = options.noAnnounce ?? []
    let confirmationHolders = 0
    const announceable = (a: Multiaddr.Multiaddr) => !noAnnounce.some((n) => startsWith(a, n))

    /** `lists` in order, no duplicates, `noAnnounce` left out. */
    const merged = (...lists: ReadonlyArray<ReadonlyArray<Multiaddr.Multiaddr>>): Array<Multiaddr.Multiaddr> => {
      const out: Array<Multiaddr.Multiaddr> = []
      const seen = new Set<string>()
      for (const list of lists) {
        for (const a of list) {
          const k = Multiaddr.toString(a)
          if (seen.has(k) || !announceable(a)) continue
          seen.add(k)
          out.push(a)
        }
      }
      return out
    }

    /** listen (wildcards left out), confirmed, trusted observed; or `announce`; no duplicates, `noAnnounce` out. */
    const advertised = (): ReadonlyArray<Multiaddr.Multiaddr> => {
      if (announce.length > 0) return merged(announce)
      const out: Array<Multiaddr.Multiaddr> = []
      const add = (a: Multiaddr.Multiaddr) => void out.push(a)
      for (const a of listen) if (!Multiaddr.isUnspecified(a)) add(a)
      for (const a of confirmed) add(a)
      const trusted = confirmationHolders > 0 ? [] : observations.trusted(threshold, perListener)
      for (const a of listen) {
        const split = MultiaddrNet.splitThinWaist(a)
        if (split === undefined) continue
        for (const e of trusted) {
          if (listensOn(split.thinWaist, e.local)) add(Multiaddr.encapsulate(e.observed, split.rest))
        }
      }
      return merged(out)
    }

    /** Run `change`, then publish `AddressesChanged` if the advertised list changed. */
    const changing = <A>(change: (now: number) => A): Effect.Effect<A> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const before = advertised().map(Multiaddr.toString).join(" ")
        observations.prune(now)
        const result = change(now)
        const after = advertised()
        return after.map(Multiaddr.toString).join(" ") === before
          ? Effect.succeed(result)
          : Effect.as(PubSub.publish(pubsub, { _tag: "AddressesChanged", addrs: after }), result)
      })

    const observe = (o: Observation): Effect.Effect<ObserveResult> =>
      changing((now): ObserveResult => {
        if (Multiaddr.isLoopback(o.observed)) return "Loopback"
        if (MultiaddrNet.isRelayed(o.observed)) return "Relayed"
        const local = MultiaddrNet.splitThinWaist(o.local)
        const observed = MultiaddrNet.splitThinWaist(o.observed)
        if (local === undefined || observed === undefined) return "NotThinWaist"
        const listening = listen.some((a) => {
          const split = MultiaddrNet.splitThinWaist(a)
          return split !== undefined && listensOn(split.thinWaist, local.thinWaist)
        })
        if (!listening) return "NotListening"
        if (!consistent(local.thinWaist, observed.thinWaist)) return "TransportMismatch"
        const observer = observerOf(o.remote)
        if (observer === undefined) return "UnknownObserver"
        return observations.record(local.thinWaist, observed.thinWaist, observer, now)
      })

    const observed = changing((): ReadonlyArray<ObservedAddr> => {
      const trusted = new Set(observations.trusted(threshold, perListener))
      return Array.from(observations.entries.values()).sort(byStrength).map((e) => ({
        local: e.local,
        observed: e.observed,
        observers: e.observers.size,
        trusted: trusted.has(e),
        addressClass: classify(e.observed),
        lastSeen: lastSeen(e)
      }))
    })

    const without = (list: ReadonlyArray<Multiaddr.Multiaddr>, drop: ReadonlyArray<Multiaddr.Multiaddr>) =>
      list.filter((a) => !drop.some((d) => Multiaddr.equals(a, d)))

    yield* Effect.forkScoped(Effect.schedule(
      changing(() => undefined),
      Schedule.spaced(Duration.millis(millis(options.pruneInterval, defaults.pruneInterval)))
    ))

    return AddressManager.of({
      listenAddrs: () => listen,
      addListenAddrs: (addrs) => changing(() => void (listen = [...listen, ...without(addrs, listen)])),
      removeListenAddrs: (addrs) => changing(() => void (listen = without(listen, addrs))),
      observe,
      observed,
      confirm: (addr) =>
        changing(() => {
          const next = [...without(confirmed, [addr]), addr]
          confirmed = next.length > maxConfirmed ? next.slice(next.length - maxConfirmed) : next
        }),
      unconfirm: (addr) => changing(() => void (confirmed = without(confirmed, [addr]))),
      confirmed: () => confirmed,
      reachability: () => reachability,
      setReachability: (next, addrs = []) =>
        Effect.suspend(() => {
          if (next === reachability) return Effect.void
          reachability = next
          return Effect.asVoid(PubSub.publish(pubsub, { _tag: "ReachabilityChanged", reachability: next, addrs }))
        }),
      addrs: changing(advertised),
      advertise: (base) =>
        Effect.flatMap(
          // a wildcard in noAnnounce leaves out what it stands for
          Effect.forEach(base.filter(announceable), MultiaddrNet.interfaceAddrs),
          (expanded) =>
            Effect.map(changing(advertised), (addrs) => announce.length > 0 ? addrs : merged(expanded.flat(), addrs))
        ),
      requireConfirmation: Effect.acquireRelease(
        changing(() => void confirmationHolders++),
        () => changing(() => void confirmationHolders--)
      ),
      classify,
      events: Stream.fromPubSub(pubsub)
    })
  })

/** The AddressManager as a Layer (its pruning fiber lives as long as the layer). */
export const layer = (options?: AddressManagerOptions) => Layer.effect(AddressManager, make(options))
