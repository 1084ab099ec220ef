package harness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/moby/moby/client"
)

// explainEngineLoss adds what happened when the Docker engine went away in
// the middle of a run (stopped, crashed, restarted): the client's own
// error is a bare "error during connect ... EOF". An engine that restarts
// stops every container of the run; what is left is removed by the next
// run's sweep, as for a killed run.
func explainEngineLoss(cli *client.Client, err error) error {
	if cli == nil || err == nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, perr := cli.Ping(ctx, client.PingOptions{})
	switch {
	case perr != nil:
		return fmt.Errorf("%w\nthe Docker engine stopped answering during the run (%v): start it again; the next run removes what this one left", err, perr)
	case strings.Contains(err.Error(), "error during connect"), strings.Contains(err.Error(), "connection reset"):
		return fmt.Errorf("%w\nthe Docker engine closed the connection during the run (did it restart?); if it restarted it stopped this run's containers, and the next run removes them", err)
	}
	return err
}
