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

// Progress is a one-line progress bar for work counted in images (feature extraction,
// evaluation), redrawn in place on a terminal at most every 100 ms.
type Progress struct {
	bar   progressBar
	label string
	start time.Time
}

// NewProgress returns a bar labelled label that draws on w (a terminal).
func NewProgress(w io.Writer, label string) *Progress {
	return &Progress{bar: progressBar{w: w, interval: 100 * time.Millisecond}, label: label, start: time.Now()}
}

// Update redraws the bar: done of total images.
func (p *Progress) Update(done, total int) {
	if p == nil || p.bar.w == nil {
		return
	}
	now := time.Now()
	if p.bar.drawn && done < total && now.Sub(p.bar.last) < p.bar.interval {
		return
	}
	const width = 24
	filled := 0
	if total > 0 {
		filled = min(width, width*done/total)
	}
	elapsed := now.Sub(p.start)
	rate, eta := 0.0, time.Duration(0)
	if done > 0 {
		rate = float64(done) / max(elapsed.Seconds(), 1e-9)
		eta = time.Duration(float64(total-done) / rate * float64(time.Second))
	}
	fmt.Fprintf(p.bar.w, "\r\x1b[K%s [%s%s] %d/%d %.0f img/s ETA %s", p.label,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total, rate, formatDuration(eta))
	p.bar.last = now
	p.bar.drawn = true
}

// Done erases the bar so that a log line can follow.
func (p *Progress) Done() {
	if p != nil {
		p.bar.clear()
	}
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
