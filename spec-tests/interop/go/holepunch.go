// DCUtR hole punching (go-libp2p's p2p/protocol/holepunch, relay/DCUtR.md) for the go peer, so a
// test can put go behind a NAT (spec-tests/protocols/dcutr/DcutrGoNat.test.ts).
//
// Config: holepunch?: { forcePrivate?: boolean (default true) } — libp2p.EnableHolePunching with
// a tracer, and ForceReachabilityPrivate so go acts as a NATed host. TCP listens where `listen`
// says (a fixed port): go's TCP transport uses reuseport by default, so its dials leave from the
// listening port and a relay observes go's NAT mapping of it. Go's hole punch service answers
// and starts DCUtR only once it has a public address to offer (HolePunchAddrs: listen addresses
// and observed addresses with at least 1 observer, manet.IsPublicAddr), so a test reserves on a
// relay first (relay.go's `relayReserve`: its identify brings the observation) and waits for
// `holepunch:ready`.
//
// Events (stdout JSON lines):
//
//	{"event":"holepunch:ready"}   go registered /libp2p/dcutr (it has a public address)
//	{"event":"holepunch","type","remote", ...}   go's holepunch.EventTracer, one line per event:
//	    DirectDial {success, ms, error?}        B's plain dial before the protocol
//	    ProtocolError {error}
//	    StartHolePunch {remoteAddrs, rttMs}     the addresses go dials, after CONNECT/SYNC
//	    HolePunchAttempt {attempt}              counts the peer's attempts (both sides)
//	    EndHolePunch {success, ms, error?}      one simultaneous connect
//	connection:open|close (main.go) carry `limited` (a relayed connection with limits)
//
// Commands:
//
//	pingConn {peerId, count=1, allowLimited=false} → {rtts:[ms], remoteAddr, limited, direction}
//	    /ipfs/ping/1.0.0 by hand on one stream, reporting the connection the stream went over;
//	    without allowLimited go refuses limited (relayed) connections, so success means direct
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

type holepunchConfig struct {
	ForcePrivate *bool `json:"forcePrivate"`
}

type holepunchTracer struct{}

func (holepunchTracer) Trace(evt *holepunch.Event) {
	out := map[string]any{"event": "holepunch", "type": evt.Type, "remote": evt.Remote.String()}
	outcome := func(success bool, took time.Duration, err string) {
		out["success"], out["ms"] = success, ms(took)
		if err != "" {
			out["error"] = err
		}
	}
	switch e := evt.Evt.(type) {
	case *holepunch.DirectDialEvt:
		outcome(e.Success, e.EllapsedTime, e.Error)
	case *holepunch.ProtocolErrorEvt:
		out["error"] = e.Error
	case *holepunch.StartHolePunchEvt:
		out["remoteAddrs"], out["rttMs"] = e.RemoteAddrs, ms(e.RTT)
	case *holepunch.EndHolePunchEvt:
		outcome(e.Success, e.EllapsedTime, e.Error)
	case *holepunch.HolePunchAttemptEvt:
		out["attempt"] = e.Attempt
	}
	emit(out)
}

func holepunchOptions(c *holepunchConfig) []libp2p.Option {
	if c == nil {
		return nil
	}
	opts := []libp2p.Option{libp2p.EnableHolePunching(holepunch.WithTracer(holepunchTracer{}))}
	if on(c.ForcePrivate) {
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	return opts
}

// startHolepunch: say when go's hole punch service registered its handler (it has a public address).
func startHolepunch(c *holepunchConfig) {
	if c == nil {
		return
	}
	go func() {
		for !slices.Contains(node.Mux().Protocols(), holepunch.Protocol) {
			time.Sleep(100 * time.Millisecond)
		}
		// the hole puncher (B's side) is made right after the handler is set
		time.Sleep(200 * time.Millisecond)
		emit(map[string]any{"event": "holepunch:ready"})
	}()
}

func init() {
	commands["pingConn"] = func(ctx context.Context, a args) (map[string]any, error) {
		p, err := peer.Decode(a.str("peerId"))
		if err != nil {
			return nil, err
		}
		if allow, _ := a["allowLimited"].(bool); !allow {
			// handleLine's context allows limited connections: start from one that does not
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := node.NewStream(ctx, p, ping.ID)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(30 * time.Second))
		rtts := []float64{}
		buf, back := make([]byte, ping.PingSize), make([]byte, ping.PingSize)
		for range int(a.num("count", 1)) {
			if _, err := rand.Read(buf); err != nil {
				return nil, err
			}
			t0 := time.Now()
			if _, err := s.Write(buf); err != nil {
				_ = s.Reset()
				return nil, err
			}
			if _, err := io.ReadFull(s, back); err != nil {
				_ = s.Reset()
				return nil, err
			}
			if !bytes.Equal(buf, back) {
				_ = s.Reset()
				return nil, errors.New("ping: the answer differs")
			}
			rtts = append(rtts, ms(time.Since(t0)))
		}
		c := s.Conn()
		return map[string]any{"rtts": rtts, "remoteAddr": c.RemoteMultiaddr().String(), "limited": c.Stat().Limited,
			"direction": direction(c.Stat().Direction)}, nil
	}
}
