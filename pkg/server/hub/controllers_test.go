package hub

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/clusternet/clusternet/pkg/server/hub/approver"
	"github.com/clusternet/clusternet/pkg/server/hub/sockets"
	"github.com/clusternet/clusternet/pkg/tunnel"
)

// newTestContext builds a Context for an unreachable parent: nothing in
// these tests talks to it.
func newTestContext(t *testing.T) *Context {
	t.Helper()
	c, err := newControllerContext(&rest.Config{Host: "https://127.0.0.1:1"},
		sockets.NewTransports(tunnel.NewRegistry(), 1), 1, nil, approver.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// runUntilDone is a starter whose controller runs until ctx ends and marks
// stopped on its way out.
func runUntilDone(stopped *atomic.Bool) controllerStarter {
	return controllerStarter{name: "running", start: func(ctx context.Context, c *Context) error {
		c.Go(func() {
			<-ctx.Done()
			stopped.Store(true)
		})
		return nil
	}}
}

func TestContextLifecycle(t *testing.T) {
	errBroken := errors.New("broken")
	tests := []struct {
		name     string
		starters func(stopped *atomic.Bool) []controllerStarter
		wantErr  error
		// shutdown is called after a successful start.
		shutdown bool
	}{
		{
			name: "a failing starter stops the ones started before it",
			starters: func(stopped *atomic.Bool) []controllerStarter {
				return []controllerStarter{runUntilDone(stopped),
					{name: "broken", start: func(context.Context, *Context) error { return errBroken }}}
			},
			wantErr: errBroken,
		},
		{
			name:     "shutdown returns once the controllers stopped",
			starters: func(stopped *atomic.Bool) []controllerStarter { return []controllerStarter{runUntilDone(stopped)} },
			shutdown: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stopped atomic.Bool
			c := newTestContext(t)
			err := c.start(t.Context(), tc.starters(&stopped))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("start = %v, want %v", err, tc.wantErr)
			}
			if tc.shutdown {
				c.shutdown()
			}
			if !stopped.Load() {
				t.Error("the controller still runs after start failed or shutdown returned")
			}
		})
	}
}
