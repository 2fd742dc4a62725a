package fit

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressBar draws one status line in place (carriage return + erase line) on a terminal.
type progressBar struct {
	w        io.Writer
	last     time.Time
	drawn    bool
	interval time.Duration
}

// progressLine is what one redraw shows.
type progressLine struct {
	epoch, epochs int
	step, steps   int
	loss, lr      float64
	imagesPerSec  float64
	eta           time.Duration
}

func (p *progressBar) draw(l progressLine, force bool) {
	if p == nil || p.w == nil {
		return
	}
	now := time.Now()
	if !force && p.drawn && now.Sub(p.last) < p.interval {
		return
	}
	const width = 24
	filled := 0
	if l.steps > 0 {
		filled = min(width, width*l.step/l.steps)
	}
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	fmt.Fprintf(p.w, "\r\x1b[Kepoch %d/%d [%s] %d/%d loss %.4f lr %.3g %.0f img/s ETA %s",
		l.epoch, l.epochs, bar, l.step, l.steps, l.loss, l.lr, l.imagesPerSec, formatDuration(l.eta))
	p.last = now
	p.drawn = true
}

// clear erases the status line so that a log line can be written.
func (p *progressBar) clear() {
	if p == nil || p.w == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.drawn = false
}

func formatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	h, m := s/3600, (s%3600)/60
	s %= 60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%02ds", h, m, s)
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}
