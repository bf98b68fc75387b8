package image

import (
	"context"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// hubAuthKey is the key Docker keeps Docker Hub's credentials under.
const hubAuthKey = "https://index.docker.io/v1/"

// authKey is the config.json key of a registry host ("" is Docker Hub).
func authKey(server string) (name.Registry, string, error) {
	if server == "" || server == "docker.io" || server == "index.docker.io" || server == hubAuthKey {
		reg, err := name.NewRegistry("index.docker.io")
		return reg, hubAuthKey, err
	}
	reg, err := name.NewRegistry(server, name.Insecure)
	if err != nil {
		return name.Registry{}, "", fmt.Errorf("registry %q: %v: %w", server, err, errdefs.ErrInvalidArgument)
	}
	return reg, reg.RegistryStr(), nil
}

// Login checks user and password against server's registry and saves them
// where Docker would: the credential helper the Docker configuration names
// (credsStore, credHelpers), else config.json's auths (base64, as Docker
// does). DOCKER_CONFIG chooses the configuration directory.
func Login(ctx context.Context, r *Registries, server, user, password string) error {
	reg, key, err := authKey(server)
	if err != nil {
		return err
	}
	if user == "" || password == "" {
		return fmt.Errorf("login %s: a username and a password are needed: %w", key, errdefs.ErrInvalidArgument)
	}
	base, err := r.transport(reg.RegistryStr())
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	t, err := transport.NewWithContext(ctx, reg, auth, base, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return registryError(key, err)
	}
	// With basic auth nothing was checked yet: ask the API root, which
	// answers 401 to wrong credentials.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return registryError(key, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("login %s: wrong username or password: %w", key, errdefs.ErrPermissionDenied)
	default:
		return fmt.Errorf("login %s: registry answered %s: %w", key, resp.Status, errdefs.ErrUnavailable)
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return fmt.Errorf("login: docker configuration: %w", err)
	}
	if err := cf.GetCredentialsStore(key).Store(types.AuthConfig{Username: user, Password: password, ServerAddress: key}); err != nil {
		return fmt.Errorf("login %s: save credentials: %w", key, err)
	}
	return cf.Save()
}

// Logout forgets server's credentials; it is NotFound when there are none.
func Logout(server string) (string, error) {
	_, key, err := authKey(server)
	if err != nil {
		return "", err
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return key, fmt.Errorf("logout: docker configuration: %w", err)
	}
	if _, ok := cf.AuthConfigs[key]; !ok && cf.CredentialsStore == "" && cf.CredentialHelpers[key] == "" {
		return key, fmt.Errorf("not logged in to %s: %w", key, errdefs.ErrNotFound)
	}
	if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
		return key, fmt.Errorf("logout %s: %w", key, err)
	}
	return key, cf.Save()
}
