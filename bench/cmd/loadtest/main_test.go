package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// The harness's bodies are valid JSON of exactly the size asked for: the
// proxy redacts them as JSON, as it would a real API's answer.
func TestLLMJSONIsValidJSONOfTheSize(t *testing.T) {
	for _, size := range []int{1 << 10, 50 << 10} {
		b := llmJSON(rand.New(rand.NewPCG(1, 2)), size)
		if len(b) != size || !json.Valid(b) {
			t.Errorf("size %d: got %d bytes, valid JSON %v", size, len(b), json.Valid(b))
		}
	}
}
