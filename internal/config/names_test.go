package config

import (
	"strings"
	"testing"
)

// TestAzureNameRules: gallery and definition names follow Azure's rules
// (trailing '.', '_' or '-' refused; azemu refuses the same, see
// internal/azemu TestConformanceRules/GalleryNameRules and DefinitionNameRules).
func TestAzureNameRules(t *testing.T) {
	for _, tc := range []struct {
		attr, value string
		ok          bool
	}{
		{"gallery", "gal", true}, {"gallery", "g.h_i", true}, {"gallery", "gal.", false}, {"gallery", "gal_", false},
		{"gallery", "_gal", false}, {"gallery", "g-h", false}, {"gallery", strings.Repeat("g", 80), true}, {"gallery", strings.Repeat("g", 81), false},
		{"definition", "web", true}, {"definition", "web-1.0_x", true}, {"definition", "bad-", false}, {"definition", "bad.", false},
		{"definition", "bad_", false}, {"definition", "bad!x", false}, {"definition", "-bad", false},
	} {
		src := strings.Replace(minimal, map[string]string{"gallery": `gallery    = "gal"`, "definition": `definition = "web"`}[tc.attr], tc.attr+` = "`+tc.value+`"`, 1)
		_, err := Parse([]byte(src), "pipeline.hcl")
		if tc.ok && err != nil {
			t.Errorf("%s %q refused: %v", tc.attr, tc.value, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "invalid "+tc.attr)) {
			t.Errorf("%s %q: %v, want invalid %s", tc.attr, tc.value, err, tc.attr)
		}
	}
}
