// A Delegated Routing V1 HTTP server for the interop test
// (spec-tests/interop/go-delegated-routing.test.ts): boxo's routing/http/server
// over an in-memory router. Three generated peers provide every CID and are
// the closest peers of every key; FindPeers knows them; IPNS records put are
// kept and returned. Prints one JSON line: {"url": ..., "peers": [...]}.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/routing/http/server"
	"github.com/ipfs/boxo/routing/http/types"
	"github.com/ipfs/boxo/routing/http/types/iter"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/multiformats/go-multiaddr"
)

type router struct {
	peers []*types.PeerRecord
	mu    sync.Mutex
	ipns  map[string]*ipns.Record
}

func (r *router) FindProviders(ctx context.Context, c cid.Cid, limit int) (iter.ResultIter[types.Record], error) {
	out := make([]types.Record, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, p)
	}
	return iter.ToResultIter[types.Record](iter.FromSlice(out)), nil
}

func (r *router) ProvideBitswap(ctx context.Context, req *server.BitswapWriteProvideRequest) (time.Duration, error) {
	return 0, routing.ErrNotSupported
}

func (r *router) FindPeers(ctx context.Context, pid peer.ID, limit int) (iter.ResultIter[*types.PeerRecord], error) {
	for _, p := range r.peers {
		if *p.ID == pid {
			return iter.ToResultIter[*types.PeerRecord](iter.FromSlice([]*types.PeerRecord{p})), nil
		}
	}
	return iter.ToResultIter[*types.PeerRecord](iter.FromSlice([]*types.PeerRecord{})), nil
}

func (r *router) GetIPNS(ctx context.Context, name ipns.Name) (*ipns.Record, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec, ok := r.ipns[name.String()]; ok {
		return rec, nil
	}
	return nil, routing.ErrNotFound
}

func (r *router) PutIPNS(ctx context.Context, name ipns.Name, record *ipns.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ipns[name.String()] = record
	return nil
}

func (r *router) GetClosestPeers(ctx context.Context, key cid.Cid) (iter.ResultIter[*types.PeerRecord], error) {
	return iter.ToResultIter[*types.PeerRecord](iter.FromSlice(r.peers)), nil
}

type peerJSON struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

func main() {
	r := &router{ipns: map[string]*ipns.Record{}}
	listed := []peerJSON{}
	for i := 0; i < 3; i++ {
		_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			panic(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			panic(err)
		}
		addr := fmt.Sprintf("/ip4/192.0.2.%d/tcp/4001", i+1)
		ma := multiaddr.StringCast(addr)
		r.peers = append(r.peers, &types.PeerRecord{
			Schema:    types.SchemaPeer,
			ID:        &id,
			Addrs:     []types.Multiaddr{{Multiaddr: ma}},
			Protocols: []string{"transport-bitswap"},
		})
		listed = append(listed, peerJSON{ID: id.String(), Addrs: []string{addr}})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	line, _ := json.Marshal(map[string]any{"url": "http://" + l.Addr().String(), "peers": listed})
	fmt.Println(string(line))
	go func() {
		// the test closes stdin to stop us
		buf := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				os.Exit(0)
			}
		}
	}()
	_ = http.Serve(l, server.Handler(r))
}
