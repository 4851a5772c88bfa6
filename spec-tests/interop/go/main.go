// go-peer: a go-libp2p node (TCP and/or WebSocket, Noise and/or TLS, Yamux, identify, ping, and
// harness handlers for /echo/1.0.0 and /perf/1.0.0) run in its own process and driven over
// stdin/stdout with JSON lines, for the interop tests of ARCHITECTURE.md §6. It speaks the same
// line protocol as the js peer (spec-tests/interop/harness/js-peer.mjs), so one TypeScript driver
// (spec-tests/interop/harness/GoPeer.ts over JsPeer.ts's process driver) serves both.
//
// go-libp2p v0.52 ships no perf protocol (p2p/protocol has autonatv2, circuitv2, holepunch,
// identify, ping), so the perf server and client below follow
// https://github.com/libp2p/specs/blob/master/perf/perf.md like the js harness does: the client
// sends an 8-byte big-endian u64 "bytes to send back", then its upload, then closes its write
// side; the server discards until EOF, then sends that many bytes and closes.
// go-libp2p no longer ships mplex (removed from the defaults in v0.27 and from the repository
// since): muxers other than "yamux" are refused at start.
//
// Configuration: a JSON object as the first command-line argument, or in GO_PEER_CONFIG:
//
//	{ listen?: string[]                   default ["/ip4/127.0.0.1/tcp/0"]
//	  transports?: ("tcp"|"websockets")[] default ["tcp"]
//	  privateKey?: string                 hex of the protobuf-encoded private key
//	  services?: { identify?, ping?, echo?, perf?: boolean }   default true (identify is always on
//	                                        in go-libp2p; false only stops reporting it)
//	  userAgent?: string                  default "go-libp2p/<version>", e.g. "go-libp2p/v0.52.0"
//	  encrypters?: ("noise"|"tls")[]      preference order, default ["noise"]
//	  muxers?: ("yamux")[]                default ["yamux"]
//	  pubsub?: {...}                      gossipsub: see pubsub.go
//	  kad?: {...}                         Kad-DHT: see kad.go
//	  relay?: {...}                       circuit relay v2: see relay.go
//	  autonat?: {...}                     AutoNAT v2: see autonat.go
//	  holepunch?: {...} }                 DCUtR hole punching: see holepunch.go
//
// Output (stdout, one JSON object per line), as js-peer.mjs:
//
//	{"event":"ready","peerId","addrs":[".../p2p/<id>"],"node":"go1.x","libp2p":"v0.52.0"}  once, first
//	{"event":"peer:connect"|"peer:disconnect","peerId"}
//	{"event":"connection:open"|"connection:close","peerId","remoteAddr","direction","id","limited"}
//	{"event":"peer:identify","peerId","agentVersion","protocolVersion","protocols","listenAddrs",
//	  "observedAddr","signedPeerRecord":{"seq","addrs"}|null,"connectionId"}
//	{"event":"identify:error","peerId","error"}
//	{"event":"handler:error","protocol","streamId","error"}
//	{"id":N,"ok":true,...result}  or  {"id":N,"ok":false,"error":"...","errorName":"..."}
//
// Input (stdin): {"id":N,"cmd":"<name>",...args}; commands run concurrently, answers may come out of
// order. A target is {"addr":multiaddr} (dials if needed) or {"peerId":id}. `negotiateFully` is
// accepted and ignored: go-libp2p itself decides when to negotiate lazily (it does when identify
// already told it the peer supports the protocol).
//
//	dial {addr}            → {peerId, remoteAddr, direction, encryption, multiplexer, connectionId}
//	hangup {peerId}        → {}
//	ping {target, count=1} → {rtts:[ms]}   go-libp2p's ping service, one stream, fractional ms
//	identify {peerId, timeoutMs=5000} → the peer:identify fields plus peerRecordVerified,
//	    peerRecordError, peerRecord:{peerId,seq,addrs}|null (the envelope identify accepted,
//	    marshalled and opened again with record.ConsumeEnvelope, its key and peer id checked: go-libp2p
//	    v0.52 keeps no signed records in its peer store, identify's consumeSignedPeerRecord only
//	    takes their addresses)
//	echo {target, protocol="/echo/1.0.0", bytes=1024, streams=1} → {bytes, streams, ms}
//	perf {target, uploadBytes, downloadBytes, protocol="/perf/1.0.0"}
//	    → {seconds, uploadSeconds, uploadBytes, downloadBytes}
//	negotiate {target, protocols:[...]} → {protocol}
//	handle {protocol, behavior="echo"|"perf"|"sink"} → {}   unhandle {protocol} → {}
//	peerInfo {peerId} → {peerId, protocols, addrs, agentVersion, protocolVersion}  (go's peer store)
//	peers → {peers:[{peerId, addrs}]}   connections → {count, connections:[...]}   addrs → {peerId, addrs}
//	echoLoop {target, count, size=1} → {us}   perfLoop {target, count} → {us}
//	dialLoop {addr, count} → {us, seconds}   cpu {gc=false} → {user, system (µs), heapUsed, rss, monoUs}
//	    (for bench/, as in js-peer.mjs; rss is the peak RSS, from getrusage)
//	stop → {} then exit 0
//
// Kad-DHT (kad.go) and gossipsub (pubsub.go) add their commands to this table in their init.
// Later protocols (relay, AutoNAT v2, DCUtR) are added as more entries of the
// `commands` table and more `services` keys; nothing else changes.
// Closing stdin (or SIGTERM/SIGINT) stops the node and exits 0.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/record"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	ma "github.com/multiformats/go-multiaddr"
)

const (
	echoProto = "/echo/1.0.0"
	perfProto = "/perf/1.0.0"
	chunk     = 64 * 1024
)

// ---------------------------------------------------------------- output

var outMu sync.Mutex

func emit(obj map[string]any) {
	b, err := json.Marshal(obj)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"event": "emit:error", "error": err.Error()})
	}
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[go-peer %d] "+format+"\n", append([]any{os.Getpid()}, args...)...)
}

// ---------------------------------------------------------------- config

type servicesConfig struct {
	Identify *bool `json:"identify"`
	Ping     *bool `json:"ping"`
	Echo     *bool `json:"echo"`
	Perf     *bool `json:"perf"`
}

type config struct {
	Listen     []string         `json:"listen"`
	Transports []string         `json:"transports"`
	PrivateKey string           `json:"privateKey"`
	Services   servicesConfig   `json:"services"`
	UserAgent  string           `json:"userAgent"`
	Encrypters []string         `json:"encrypters"`
	Muxers     []string         `json:"muxers"`
	Pubsub     *pubsubConfig    `json:"pubsub"`
	Kad        *kadConfig       `json:"kad"`
	Relay      *relayConfig     `json:"relay"`
	Autonat    *autonatConfig   `json:"autonat"`
	Holepunch  *holepunchConfig `json:"holepunch"`
}

func on(b *bool) bool { return b == nil || *b }

func parseConfig() (config, error) {
	raw := "{}"
	if len(os.Args) > 1 {
		raw = os.Args[1]
	} else if env := os.Getenv("GO_PEER_CONFIG"); env != "" {
		raw = env
	}
	var c config
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("bad config: %w", err)
	}
	if len(c.Listen) == 0 {
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	if len(c.Transports) == 0 {
		c.Transports = []string{"tcp"}
	}
	if len(c.Encrypters) == 0 {
		c.Encrypters = []string{"noise"}
	}
	if len(c.Muxers) == 0 {
		c.Muxers = []string{"yamux"}
	}
	return c, nil
}

func libp2pVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/libp2p/go-libp2p" {
				return d.Version
			}
		}
	}
	return "unknown"
}

func options(c config) ([]libp2p.Option, error) {
	opts := []libp2p.Option{
		libp2p.ListenAddrStrings(c.Listen...),
		libp2p.Ping(on(c.Services.Ping)),
		libp2p.DisableMetrics(),
		// the tests open many streams and move hundreds of MiB: no resource limits in the way
		libp2p.ResourceManager(&network.NullResourceManager{}),
	}
	if c.PrivateKey != "" {
		raw, err := hex.DecodeString(strings.TrimPrefix(c.PrivateKey, "0x"))
		if err != nil {
			return nil, fmt.Errorf("bad privateKey hex: %w", err)
		}
		key, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("bad privateKey: %w", err)
		}
		opts = append(opts, libp2p.Identity(key))
	}
	// go-libp2p's default agent is the main module's path ("effect-libp2p/interop/go-peer"): say what runs
	if c.UserAgent == "" {
		c.UserAgent = "go-libp2p/" + libp2pVersion()
	}
	opts = append(opts, libp2p.UserAgent(c.UserAgent))
	pick := func(kind string, names []string, table map[string]libp2p.Option) error {
		for _, name := range names {
			opt, ok := table[name]
			if !ok {
				return fmt.Errorf("unknown %s %q", kind, name)
			}
			opts = append(opts, opt)
		}
		return nil
	}
	if err := pick("transport", c.Transports, map[string]libp2p.Option{
		"tcp":        libp2p.Transport(tcp.NewTCPTransport),
		"websockets": libp2p.Transport(websocket.New),
	}); err != nil {
		return nil, err
	}
	if err := pick("encrypter", c.Encrypters, map[string]libp2p.Option{
		"noise": libp2p.Security(noise.ID, noise.New),
		"tls":   libp2p.Security(libp2ptls.ID, libp2ptls.New),
	}); err != nil {
		return nil, err
	}
	for _, m := range c.Muxers {
		switch m {
		case "yamux":
			opts = append(opts, libp2p.Muxer(yamux.ID, yamux.DefaultTransport))
		case "mplex":
			return nil, errors.New("mplex: go-libp2p v0.52 does not ship mplex")
		default:
			return nil, fmt.Errorf("unknown muxer %q", m)
		}
	}
	opts = append(opts, holepunchOptions(c.Holepunch)...)
	return opts, nil
}

// ---------------------------------------------------------------- the node

var (
	node     host.Host
	services config
	// identify results by peer (the latest EvtPeerIdentificationCompleted), and who waits for one
	idMu      sync.Mutex
	idResults = map[peer.ID]map[string]any{}
	idErrors  = map[peer.ID]string{}
	idRecords = map[peer.ID]*record.Envelope{}
	idWaiters = map[peer.ID][]chan struct{}{}
)

func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

func protoStrings(ps []protocol.ID) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, string(p))
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func connJSON(c network.Conn) map[string]any {
	st := c.ConnState()
	return map[string]any{
		"peerId":       c.RemotePeer().String(),
		"remoteAddr":   c.RemoteMultiaddr().String(),
		"direction":    direction(c.Stat().Direction),
		"encryption":   nullable(string(st.Security)),
		"multiplexer":  nullable(string(st.StreamMultiplexer)),
		"connectionId": c.ID(),
	}
}

func direction(d network.Direction) string {
	switch d {
	case network.DirInbound:
		return "inbound"
	case network.DirOutbound:
		return "outbound"
	}
	return "unknown"
}

func identifyJSON(e event.EvtPeerIdentificationCompleted) map[string]any {
	var observed any
	if e.ObservedAddr != nil {
		observed = e.ObservedAddr.String()
	}
	var spr any
	if e.SignedPeerRecord != nil {
		if r, err := e.SignedPeerRecord.Record(); err == nil {
			if pr, ok := r.(*peer.PeerRecord); ok {
				spr = map[string]any{"seq": fmt.Sprint(pr.Seq), "addrs": addrStrings(pr.Addrs)}
			}
		}
	}
	var connID any
	if e.Conn != nil {
		connID = e.Conn.ID()
	}
	return map[string]any{
		"peerId":           e.Peer.String(),
		"agentVersion":     nullable(e.AgentVersion),
		"protocolVersion":  nullable(e.ProtocolVersion),
		"protocols":        protoStrings(e.Protocols),
		"listenAddrs":      addrStrings(e.ListenAddrs),
		"observedAddr":     observed,
		"signedPeerRecord": spr,
		"connectionId":     connID,
	}
}

func wakeIdentify(p peer.ID) {
	for _, w := range idWaiters[p] {
		close(w)
	}
	delete(idWaiters, p)
}

func watchEvents(h host.Host) error {
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtPeerIdentificationFailed),
		new(event.EvtPeerConnectednessChanged),
	})
	if err != nil {
		return err
	}
	go func() {
		for ev := range sub.Out() {
			switch e := ev.(type) {
			case event.EvtPeerIdentificationCompleted:
				fields := identifyJSON(e)
				idMu.Lock()
				idResults[e.Peer] = fields
				idRecords[e.Peer] = e.SignedPeerRecord
				delete(idErrors, e.Peer)
				wakeIdentify(e.Peer)
				idMu.Unlock()
				if on(services.Services.Identify) {
					out := map[string]any{"event": "peer:identify"}
					for k, v := range fields {
						out[k] = v
					}
					emit(out)
				}
			case event.EvtPeerIdentificationFailed:
				idMu.Lock()
				idErrors[e.Peer] = e.Reason.Error()
				wakeIdentify(e.Peer)
				idMu.Unlock()
				emit(map[string]any{"event": "identify:error", "peerId": e.Peer.String(), "error": e.Reason.Error()})
			case event.EvtPeerConnectednessChanged:
				switch e.Connectedness {
				case network.Connected:
					emit(map[string]any{"event": "peer:connect", "peerId": e.Peer.String()})
				case network.NotConnected:
					emit(map[string]any{"event": "peer:disconnect", "peerId": e.Peer.String()})
				}
			}
		}
	}()
	connEvent := func(name string) func(network.Network, network.Conn) {
		return func(_ network.Network, c network.Conn) {
			emit(map[string]any{"event": name, "peerId": c.RemotePeer().String(),
				"remoteAddr": c.RemoteMultiaddr().String(), "direction": direction(c.Stat().Direction), "id": c.ID(),
				"limited": c.Stat().Limited})
		}
	}
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    connEvent("connection:open"),
		DisconnectedF: connEvent("connection:close"),
	})
	return nil
}

// ---------------------------------------------------------------- protocol handlers

func handlerError(s network.Stream, err error) {
	logf("%s handler: %v", s.Protocol(), err)
	emit(map[string]any{"event": "handler:error", "protocol": string(s.Protocol()), "streamId": s.ID(),
		"error": err.Error()})
	_ = s.Reset()
}

func echoHandler(s network.Stream) {
	if _, err := io.Copy(s, s); err != nil {
		handlerError(s, err)
		return
	}
	_ = s.Close()
}

func sinkHandler(s network.Stream) {
	if _, err := io.Copy(io.Discard, s); err != nil {
		handlerError(s, err)
		return
	}
	_ = s.Close()
}

var zeros = make([]byte, chunk)

func writeN(w io.Writer, n uint64) error {
	for n > 0 {
		k := uint64(chunk)
		if n < k {
			k = n
		}
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// perfHandler: perf spec §Protocol, server side.
func perfHandler(s network.Stream) {
	var header [8]byte
	if _, err := io.ReadFull(s, header[:]); err != nil {
		handlerError(s, fmt.Errorf("perf: reading the 8-byte header: %w", err))
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		handlerError(s, err)
		return
	}
	if err := writeN(s, binary.BigEndian.Uint64(header[:])); err != nil {
		handlerError(s, err)
		return
	}
	_ = s.Close()
}

var behaviors = map[string]network.StreamHandler{"echo": echoHandler, "perf": perfHandler, "sink": sinkHandler}

// ---------------------------------------------------------------- commands

type args map[string]any

func (a args) str(k string) string {
	s, _ := a[k].(string)
	return s
}

func (a args) num(k string, def float64) float64 {
	if v, ok := a[k].(float64); ok {
		return v
	}
	return def
}

func (a args) strs(k string) []string {
	raw, _ := a[k].([]any)
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// target resolves {addr} (dialing it) or {peerId}.
func target(ctx context.Context, a args) (peer.ID, error) {
	if addr := a.str("addr"); addr != "" {
		m, err := ma.NewMultiaddr(addr)
		if err != nil {
			return "", err
		}
		info, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return "", err
		}
		if err := node.Connect(ctx, *info); err != nil {
			return "", err
		}
		return info.ID, nil
	}
	if id := a.str("peerId"); id != "" {
		return peer.Decode(id)
	}
	return "", errors.New("need addr or peerId")
}

func protocols(a args, def string) []protocol.ID {
	if ps := a.strs("protocols"); len(ps) > 0 {
		return protocol.ConvertFromStrings(ps)
	}
	if p := a.str("protocol"); p != "" {
		return []protocol.ID{protocol.ID(p)}
	}
	return []protocol.ID{protocol.ID(def)}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// pattern: deterministic bytes per stream (xorshift32), as in js-peer.mjs.
func pattern(n int, seed uint32) []byte {
	out := make([]byte, n)
	x := seed*0x9e3779b1 + 0x7f4a7c15
	if x == 0 {
		x = 1
	}
	for i := 0; i+4 <= n; i += 4 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		binary.LittleEndian.PutUint32(out[i:], x)
	}
	for i := n &^ 3; i < n; i++ {
		out[i] = byte(i*31 + int(seed))
	}
	return out
}

func echoOne(ctx context.Context, p peer.ID, protos []protocol.ID, size int, seed uint32) error {
	s, err := node.NewStream(ctx, p, protos...)
	if err != nil {
		return err
	}
	data := pattern(size, seed)
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(data)
		if err == nil {
			err = s.CloseWrite()
		}
		werr <- err
	}()
	got, err := io.ReadAll(io.LimitReader(s, int64(size)+1))
	if err != nil {
		_ = s.Reset()
		return err
	}
	if err := <-werr; err != nil {
		_ = s.Reset()
		return err
	}
	_ = s.Close()
	if len(got) != size {
		return fmt.Errorf("echo stream %d: sent %d bytes, got back %d", seed, size, len(got))
	}
	for i := range got {
		if got[i] != data[i] {
			return fmt.Errorf("echo stream %d: bytes differ at offset %d", seed, i)
		}
	}
	return nil
}

type perfResult struct{ seconds, uploadSeconds float64 }

// perfRequest: perf spec §Protocol, client side: the u64 download size, the upload, close the write
// side, then read to EOF and check the count.
func perfRequest(ctx context.Context, p peer.ID, protos []protocol.ID, upload, download uint64) (perfResult, error) {
	t0 := time.Now()
	s, err := node.NewStream(ctx, p, protos...)
	if err != nil {
		return perfResult{}, err
	}
	var header [8]byte
	binary.BigEndian.PutUint64(header[:], download)
	uploaded := make(chan error, 1)
	var uploadDone time.Time
	go func() {
		_, err := s.Write(header[:])
		if err == nil {
			err = writeN(s, upload)
		}
		if err == nil {
			err = s.CloseWrite()
		}
		uploadDone = time.Now()
		uploaded <- err
	}()
	got, err := io.Copy(io.Discard, s)
	if err == nil {
		err = <-uploaded
	}
	if err != nil {
		_ = s.Reset()
		return perfResult{}, err
	}
	t1 := time.Now()
	_ = s.Close()
	if uint64(got) != download {
		return perfResult{}, fmt.Errorf("perf: asked for %d bytes, got %d", download, got)
	}
	return perfResult{seconds: t1.Sub(t0).Seconds(), uploadSeconds: uploadDone.Sub(t0).Seconds()}, nil
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

var processStart = time.Now()

type command func(ctx context.Context, a args) (map[string]any, error)

var commands = map[string]command{
	"dial": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		conns := node.Network().ConnsToPeer(p)
		if len(conns) == 0 {
			return nil, fmt.Errorf("connected to %s but no connection left", p)
		}
		return connJSON(conns[0]), nil
	},

	"hangup": func(_ context.Context, a args) (map[string]any, error) {
		p, err := peer.Decode(a.str("peerId"))
		if err != nil {
			return nil, err
		}
		return map[string]any{}, node.Network().ClosePeer(p)
	},

	"ping": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		count := int(a.num("count", 1))
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		results := ping.Ping(ctx, node, p)
		rtts := make([]float64, 0, count)
		for len(rtts) < count {
			r, ok := <-results
			if !ok {
				return nil, fmt.Errorf("ping ended after %d pings", len(rtts))
			}
			if r.Error != nil {
				return nil, r.Error
			}
			rtts = append(rtts, ms(r.RTT))
		}
		return map[string]any{"rtts": rtts}, nil
	},

	"identify": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := peer.Decode(a.str("peerId"))
		if err != nil {
			return nil, err
		}
		timeout := time.Duration(a.num("timeoutMs", 5000)) * time.Millisecond
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if ids, ok := node.(interface{ IDService() identify.IDService }); ok {
			for _, c := range node.Network().ConnsToPeer(p) {
				ids.IDService().IdentifyWait(c) // starts identify if it has not run on c yet
			}
		}
		for {
			idMu.Lock()
			fields, done := idResults[p]
			env := idRecords[p]
			failed, hasErr := idErrors[p]
			var wait chan struct{}
			if !done && !hasErr {
				wait = make(chan struct{})
				idWaiters[p] = append(idWaiters[p], wait)
			}
			idMu.Unlock()
			if done {
				out := map[string]any{}
				for k, v := range fields {
					out[k] = v
				}
				for k, v := range verifyPeerRecord(p, env) {
					out[k] = v
				}
				return out, nil
			}
			if hasErr {
				return nil, fmt.Errorf("identify %s failed: %s", p, failed)
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, fmt.Errorf("no identify result for %s within %s", p, timeout)
			}
		}
	},

	"echo": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		size, streams := int(a.num("bytes", 1024)), int(a.num("streams", 1))
		protos := protocols(a, echoProto)
		t0 := time.Now()
		errs := make(chan error, streams)
		for i := range streams {
			go func() { errs <- echoOne(ctx, p, protos, size, uint32(i+1)) }()
		}
		var first error
		for range streams {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return nil, first
		}
		return map[string]any{"bytes": size * streams, "streams": streams, "ms": ms(time.Since(t0))}, nil
	},

	// perf client, perf spec §Protocol
	"perf": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		upload, download := uint64(a.num("uploadBytes", 0)), uint64(a.num("downloadBytes", 0))
		r, err := perfRequest(ctx, p, protocols(a, perfProto), upload, download)
		if err != nil {
			return nil, err
		}
		return map[string]any{"seconds": r.seconds, "uploadSeconds": r.uploadSeconds,
			"uploadBytes": upload, "downloadBytes": download}, nil
	},

	"negotiate": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		s, err := node.NewStream(ctx, p, protocols(a, echoProto)...)
		if err != nil {
			return nil, err
		}
		defer s.Reset()
		return map[string]any{"protocol": string(s.Protocol())}, nil
	},

	"handle": func(_ context.Context, a args) (map[string]any, error) {
		behavior := a.str("behavior")
		if behavior == "" {
			behavior = "echo"
		}
		h, ok := behaviors[behavior]
		if !ok {
			return nil, fmt.Errorf("unknown behavior %s", behavior)
		}
		node.SetStreamHandler(protocol.ID(a.str("protocol")), h)
		return map[string]any{}, nil
	},

	"unhandle": func(_ context.Context, a args) (map[string]any, error) {
		node.RemoveStreamHandler(protocol.ID(a.str("protocol")))
		return map[string]any{}, nil
	},

	"peers": func(context.Context, args) (map[string]any, error) {
		byPeer := map[peer.ID][]string{}
		var order []peer.ID
		for _, c := range node.Network().Conns() {
			p := c.RemotePeer()
			if _, seen := byPeer[p]; !seen {
				order = append(order, p)
			}
			byPeer[p] = append(byPeer[p], c.RemoteMultiaddr().String())
		}
		peers := make([]map[string]any, 0, len(order))
		for _, p := range order {
			peers = append(peers, map[string]any{"peerId": p.String(), "addrs": byPeer[p]})
		}
		return map[string]any{"peers": peers}, nil
	},

	"connections": func(context.Context, args) (map[string]any, error) {
		conns := node.Network().Conns()
		out := make([]map[string]any, 0, len(conns))
		for _, c := range conns {
			j := connJSON(c)
			j["id"] = j["connectionId"]
			delete(j, "connectionId")
			j["status"] = "open"
			j["streams"] = len(c.GetStreams())
			out = append(out, j)
		}
		return map[string]any{"count": len(out), "connections": out}, nil
	},

	// bench/ commands (as js-peer.mjs and bench/ours-peer.ts; times in µs)

	// echoLoop: `count` round trips of `size` bytes on one /echo/1.0.0 stream
	"echoLoop": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		s, err := node.NewStream(ctx, p, echoProto)
		if err != nil {
			return nil, err
		}
		payload := make([]byte, int(a.num("size", 1)))
		back := make([]byte, len(payload))
		us := []float64{}
		for range int(a.num("count", 1)) {
			t0 := time.Now()
			if _, err := s.Write(payload); err != nil {
				_ = s.Reset()
				return nil, err
			}
			if _, err := io.ReadFull(s, back); err != nil {
				_ = s.Reset()
				return nil, err
			}
			us = append(us, micros(time.Since(t0)))
		}
		_ = s.Close()
		return map[string]any{"us": us}, nil
	},

	// perfLoop: `count` perf requests of 1 byte each way, a new stream each
	"perfLoop": func(ctx context.Context, a args) (map[string]any, error) {
		p, err := target(ctx, a)
		if err != nil {
			return nil, err
		}
		us := []float64{}
		for range int(a.num("count", 1)) {
			t0 := time.Now()
			if _, err := perfRequest(ctx, p, []protocol.ID{perfProto}, 1, 1); err != nil {
				return nil, err
			}
			us = append(us, micros(time.Since(t0)))
		}
		return map[string]any{"us": us}, nil
	},

	// dialLoop: `count` times dial + security + muxer + /echo/1.0.0 stream + 1-byte echo (timed), hang up
	"dialLoop": func(ctx context.Context, a args) (map[string]any, error) {
		m, err := ma.NewMultiaddr(a.str("addr"))
		if err != nil {
			return nil, err
		}
		info, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return nil, err
		}
		_ = node.Network().ClosePeer(info.ID)
		us := []float64{}
		one := []byte{0x2a}
		start := time.Now()
		for range int(a.num("count", 1)) {
			t0 := time.Now()
			// the address is dialed again each time (Connect would reuse a connection still closing)
			node.Peerstore().AddAddrs(info.ID, info.Addrs, time.Minute)
			s, err := node.NewStream(network.WithForceDirectDial(ctx, "bench"), info.ID, echoProto)
			if err != nil {
				return nil, err
			}
			if _, err := s.Write(one); err == nil {
				_, err = io.ReadFull(s, one)
			}
			if err != nil {
				_ = s.Reset()
				return nil, err
			}
			us = append(us, micros(time.Since(t0)))
			_ = s.Close()
			_ = node.Network().ClosePeer(info.ID)
		}
		return map[string]any{"us": us, "seconds": time.Since(start).Seconds()}, nil
	},

	// cpu: this process's CPU time (µs) and memory; gc: collect garbage first
	"cpu": func(_ context.Context, a args) (map[string]any, error) {
		if v, _ := a["gc"].(bool); v {
			runtime.GC()
		}
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return nil, err
		}
		var mem runtime.MemStats
		runtime.ReadMemStats(&mem)
		return map[string]any{
			"user": ru.Utime.Sec*1e6 + int64(ru.Utime.Usec), "system": ru.Stime.Sec*1e6 + int64(ru.Stime.Usec),
			"heapUsed": mem.HeapAlloc, "rss": ru.Maxrss * 1024, "external": 0, "arrayBuffers": 0,
			"monoUs": micros(time.Since(processStart)),
		}, nil
	},

	// peerInfo: what go's peer store holds for a peer (identify and identify/push fill it)
	"peerInfo": func(_ context.Context, a args) (map[string]any, error) {
		p, err := peer.Decode(a.str("peerId"))
		if err != nil {
			return nil, err
		}
		ps := node.Peerstore()
		protos, err := ps.GetProtocols(p)
		if err != nil {
			return nil, err
		}
		info := map[string]any{"peerId": p.String(), "protocols": protoStrings(protos),
			"addrs": addrStrings(ps.Addrs(p))}
		for _, key := range []string{"AgentVersion", "ProtocolVersion"} {
			v, err := ps.Get(p, key)
			if s, ok := v.(string); err == nil && ok {
				info[strings.ToLower(key[:1])+key[1:]] = s
			} else {
				info[strings.ToLower(key[:1])+key[1:]] = nil
			}
		}
		return info, nil
	},

	"addrs": func(context.Context, args) (map[string]any, error) {
		return map[string]any{"peerId": node.ID().String(), "addrs": fullAddrs()}, nil
	},
}

// verifyPeerRecord: the envelope identify accepted from p, opened again (RFC 0003).
func verifyPeerRecord(p peer.ID, env *record.Envelope) map[string]any {
	out := map[string]any{"peerRecordVerified": false, "peerRecordError": nil, "peerRecord": nil}
	if env == nil {
		out["peerRecordError"] = "no signed peer record"
		return out
	}
	raw, err := env.Marshal()
	if err != nil {
		out["peerRecordError"] = err.Error()
		return out
	}
	_, rec, err := record.ConsumeEnvelope(raw, peer.PeerRecordEnvelopeDomain)
	if err != nil {
		out["peerRecordError"] = err.Error()
		return out
	}
	pr, ok := rec.(*peer.PeerRecord)
	if !ok {
		out["peerRecordError"] = fmt.Sprintf("not a peer record: %T", rec)
		return out
	}
	out["peerRecord"] = map[string]any{"peerId": pr.PeerID.String(), "seq": fmt.Sprint(pr.Seq),
		"addrs": addrStrings(pr.Addrs)}
	signer, err := peer.IDFromPublicKey(env.PublicKey)
	if err != nil || signer != p || pr.PeerID != p {
		out["peerRecordError"] = fmt.Sprintf("record of %s signed by %s, expected %s (%v)", pr.PeerID, signer, p, err)
		return out
	}
	out["peerRecordVerified"] = true
	return out
}

func fullAddrs() []string {
	suffix := "/p2p/" + node.ID().String()
	out := []string{}
	for _, a := range node.Addrs() {
		out = append(out, a.String()+suffix)
	}
	return out
}

// ---------------------------------------------------------------- main loop

var stopOnce sync.Once

func shutdown() {
	stopOnce.Do(func() {
		done := make(chan struct{})
		go func() {
			if err := node.Close(); err != nil {
				logf("stop: %v", err)
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			logf("stop: node.Close still running after 3 s")
		}
	})
}

func handleLine(ctx context.Context, line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	var msg args
	if err := json.Unmarshal([]byte(line), &msg); err != nil {
		emit(map[string]any{"id": nil, "ok": false, "error": "bad JSON: " + line, "errorName": "BadRequest"})
		return
	}
	id := msg["id"]
	cmd := msg.str("cmd")
	if cmd == "stop" {
		shutdown()
		emit(map[string]any{"id": id, "ok": true})
		os.Exit(0)
	}
	fn, ok := commands[cmd]
	if !ok {
		emit(map[string]any{"id": id, "ok": false, "error": "unknown command: " + cmd, "errorName": "BadRequest"})
		return
	}
	// streams on limited (relayed) connections are allowed for every command (relay.go)
	result, err := fn(network.WithAllowLimitedConn(ctx, "harness"), msg)
	if err != nil {
		emit(map[string]any{"id": id, "ok": false, "error": err.Error(), "errorName": fmt.Sprintf("%T", err)})
		return
	}
	result["id"] = id
	result["ok"] = true
	emit(result)
}

func main() {
	c, err := parseConfig()
	if err != nil {
		logf("%v", err)
		os.Exit(2)
	}
	services = c
	opts, err := options(c)
	if err != nil {
		logf("%v", err)
		os.Exit(2)
	}
	node, err = libp2p.New(opts...)
	if err != nil {
		logf("start: %v", err)
		os.Exit(1)
	}
	if err := watchEvents(node); err != nil {
		logf("events: %v", err)
		os.Exit(1)
	}
	if on(c.Services.Echo) {
		node.SetStreamHandler(echoProto, echoHandler)
	}
	if on(c.Services.Perf) {
		node.SetStreamHandler(perfProto, perfHandler)
	}
	ctx := context.Background()
	if err := startPubsub(ctx, c.Pubsub); err != nil {
		logf("pubsub: %v", err)
		os.Exit(1)
	}
	if err := startKad(c.Kad); err != nil {
		logf("kad: %v", err)
		os.Exit(1)
	}
	if err := startRelay(c.Relay); err != nil {
		logf("relay: %v", err)
		os.Exit(1)
	}
	if err := startAutonat(c.Autonat); err != nil {
		logf("autonat: %v", err)
		os.Exit(1)
	}
	startHolepunch(c.Holepunch)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		shutdown()
		os.Exit(0)
	}()
	emit(map[string]any{"event": "ready", "peerId": node.ID().String(), "addrs": fullAddrs(),
		"node": runtime.Version(), "libp2p": libp2pVersion()})
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	var running sync.WaitGroup
	for scanner.Scan() {
		line := scanner.Text()
		running.Add(1)
		go func() {
			defer running.Done()
			handleLine(ctx, line)
		}()
	}
	shutdown()
	os.Exit(0)
}
