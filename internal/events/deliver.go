package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"time"

	"imgpipe/internal/catalog"
)

// Deliverer sends the outbox's due events to their webhooks.
type Deliverer struct {
	Cat    *catalog.Catalog
	Client *http.Client // default: 10 s timeout
	// Lease is how long a claimed delivery is this deliverer's alone
	// (default 1 minute); Batch how many it claims at once (default 50).
	Lease time.Duration
	Batch int
	// MinBackoff and MaxBackoff bound the wait before a retry (default 5 s
	// and 1 hour); each wait doubles, with jitter so receivers that come
	// back are not hit by every event at once.
	MinBackoff, MaxBackoff time.Duration
	Now                    func() time.Time
}

// Result counts what one DeliverDue did.
type Result struct {
	Delivered int      `json:"delivered"`
	Failed    int      `json:"failed"`
	Errors    []string `json:"errors,omitempty"`
}

// maxSecret bounds a webhook secret file's read.
const maxSecret = 4 << 10

func (d *Deliverer) defaults() {
	if d.Client == nil {
		d.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if d.Lease == 0 {
		d.Lease = time.Minute
	}
	if d.Batch == 0 {
		d.Batch = 50
	}
	if d.MinBackoff == 0 {
		d.MinBackoff = 5 * time.Second
	}
	if d.MaxBackoff == 0 {
		d.MaxBackoff = time.Hour
	}
	if d.Now == nil {
		d.Now = time.Now
	}
}

// DeliverDue claims the due deliveries and sends each once. A failed one is
// rescheduled with backoff; nothing is dropped.
func (d *Deliverer) DeliverDue(ctx context.Context) (Result, error) {
	d.defaults()
	var res Result
	for {
		ds, err := d.Cat.ClaimDeliveries(ctx, d.Batch, d.Lease)
		if err != nil {
			return res, err
		}
		if len(ds) == 0 {
			return res, nil
		}
		for _, dl := range ds {
			if err := d.send(ctx, dl); err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				res.Failed++
				res.Errors = append(res.Errors, fmt.Sprintf("%s -> %s: %v", dl.Event.Type, dl.Webhook.Name, err))
				if err := d.Cat.DeliveryFailed(ctx, dl, err.Error(), d.Now().Add(d.backoff(dl.Attempts))); err != nil {
					return res, err
				}
				continue
			}
			res.Delivered++
			if err := d.Cat.DeliveryDone(ctx, dl); err != nil {
				return res, err
			}
		}
		if len(ds) < d.Batch {
			return res, nil
		}
	}
}

func (d *Deliverer) backoff(attempts int) time.Duration {
	b := d.MinBackoff << min(attempts, 20)
	if b <= 0 || b > d.MaxBackoff {
		b = d.MaxBackoff
	}
	return b/2 + rand.N(b/2+1)
}

func (d *Deliverer) send(ctx context.Context, dl catalog.Delivery) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dl.Webhook.URL, bytes.NewReader(dl.Event.Body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ContentType)
	req.Header.Set("User-Agent", "imgpipe-events")
	req.Header.Set("X-Imgpipe-Delivery-Attempt", strconv.Itoa(dl.Attempts+1))
	if dl.Webhook.SecretFile != "" {
		secret, err := readSecret(dl.Webhook.SecretFile)
		if err != nil {
			return err
		}
		req.Header.Set(SignatureHeader, Sign(secret, dl.Event.Body))
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

// readSecret reads a webhook's secret file, refusing one others can read.
func readSecret(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("webhook secret %s is readable by others (mode %04o): run `chmod 600 %s`", path, fi.Mode().Perm(), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecret+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecret {
		return nil, errors.New("webhook secret file is larger than 4 KiB")
	}
	s := bytes.TrimSpace(b)
	if len(s) == 0 {
		return nil, fmt.Errorf("webhook secret file %s is empty", path)
	}
	return s, nil
}

// Run delivers due events every interval until ctx ends.
func (d *Deliverer) Run(ctx context.Context, interval time.Duration, report func(Result, error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		res, err := d.DeliverDue(ctx)
		if report != nil && (err != nil || res.Delivered+res.Failed > 0) {
			report(res, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
