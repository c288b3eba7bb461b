package npmsig

import (
	"testing"
	"time"
)

// Real registry signatures (dist.integrity and dist.signatures of three
// published versions, as quoted by public sources) tie the embedded key
// bytes to signatures the npm registry made. The publish times are
// approximate: only their side of the old key's expiry matters.
func TestRealSignatures(t *testing.T) {
	keys := DefaultKeys()
	tests := []struct {
		name, version, integrity, keyid, sig string
		published                            time.Time
	}{
		{"@anthropic-ai/claude-code", "2.1.97",
			"sha512-8lKM/rFctBl+82bQ+0g0Lkbt9tJU/zYKAjWisNUq436/386n/VZQbnyjnibGkyqqB6mrX/3ub/cpFlpCu4FXLg==",
			"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
			"MEUCICG6rML8JBFMxvrHFFDhofBztC5mvsOLqHbO7G4bdU4MAiEA/TuR+/HzSBvE2e/5XokcLHWOLaw604eahZ4Hy+IFTew=",
			time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"@anthropic-ai/claude-code", "2.1.98",
			"sha512-qecREauMWXHplkpjqsuDuUv4ww+NprMl71k9sMuLkZU7qwjLMkTPxRBjuKvZWWMrAPvZWdGZE9LljUTfCQ1lWQ==",
			"SHA256:DhQ8wR5APBvFHLF/+Tc+AYvPOdTpcIDqOhxsBHRwC7U",
			"MEQCIGvolW/eLJuocfuN94cinl0Vz9arMrshmIhulXk/9JEBAiAW18CskQ+uEkWf90x4Dc0TqDoRBQ7lmCAXhpXpqbEJDA==",
			time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"venv", "0.1.0",
			"sha512-RMdeiD0OJC+S2w4931iqdi5MB9xe2T/lXZbRrHxbsmQrSA+FwhPk2bIqIwbNDCmThPgNw841Q272O6EFSYhBjQ==",
			"SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA",
			"MEUCICKQJCEvvV3HdhCSj3TwH9qqIWLwc0GR1m/NED/s1bPIAiEAvkTmhIDIrD4MZoI2g27+HsuxoFJhC/evORT6T2UUwSc=",
			time.Date(2017, 8, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name+"@"+tt.version, func(t *testing.T) {
			r, err := keys.Verify(tt.name, tt.version, tt.integrity, []Signature{{KeyID: tt.keyid, Sig: tt.sig}}, tt.published, Options{UpstreamSigns: true})
			if err != nil || !r.OK() {
				t.Fatalf("Verify = %+v, %v", r, err)
			}
			// One changed byte of the integrity must break it.
			bad := tt.integrity[:10] + "A" + tt.integrity[11:]
			if bad == tt.integrity {
				bad = tt.integrity[:10] + "B" + tt.integrity[11:]
			}
			if _, err := keys.Verify(tt.name, tt.version, bad, []Signature{{KeyID: tt.keyid, Sig: tt.sig}}, tt.published, Options{}); err == nil {
				t.Fatal("tampered integrity verified")
			}
		})
	}
}
