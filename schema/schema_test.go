package schema

import (
	"encoding/json"
	"testing"
)

func TestXBerthIsJSONSchema(t *testing.T) {
	t.Parallel()
	var s struct {
		Type       string                     `json:"type"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(XBerth, &s); err != nil {
		t.Fatalf("x-berth schema is not JSON: %v", err)
	}
	if s.Type != "object" {
		t.Errorf("type = %q, want object", s.Type)
	}
	if _, ok := s.Properties["network_pool"]; !ok {
		t.Errorf("properties lack network_pool: %v", s.Properties)
	}
}
