package gomod

import (
	"testing"
	"time"
)

func TestAppearedBy(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	samples := []treeSample{{At: at(0), Size: 100}, {At: at(10 * time.Minute), Size: 120}, {At: at(25 * time.Hour), Size: 200}}
	tests := []struct {
		name      string
		rec       int64
		firstSeen time.Time
		want      time.Time
		ok        bool
	}{
		{"older than the first sample: no bound", 50, t0, time.Time{}, false},
		{"within the first interval", 110, time.Time{}, t0.Add(10 * time.Minute), true},
		{"seen before the sample after a pause", 150, t0.Add(20 * time.Minute), t0.Add(20 * time.Minute), true},
		{"seen after the sample that contains it", 110, t0.Add(time.Hour), t0.Add(10 * time.Minute), true},
		{"newer than every sample", 300, t0.Add(26 * time.Hour), t0.Add(26 * time.Hour), true},
		{"newer than every sample, never seen", 300, time.Time{}, time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := appearedBy(samples, tt.rec, tt.firstSeen)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%s: appearedBy = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}
