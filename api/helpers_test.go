package api_test

import (
	"context"

	"github.com/cygni/usage/api"
	"github.com/cygni/usage/store"
)

// staticTokens is a token verifier over a fixed map of tokens, for tests whose subject is not
// the store.
type staticTokens map[string]api.Principal

func (s staticTokens) VerifyToken(_ context.Context, token string) (api.Principal, error) {
	p, ok := s[token]
	if !ok {
		return api.Principal{}, store.ErrInvalidToken
	}
	return p, nil
}
