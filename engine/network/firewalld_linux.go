package network

import "context"

// firewalldRunning reports whether firewalld manages the host's firewall.
func firewalldRunning() bool { return false }

func firewalldEnsure(ctx context.Context, instance string) error { return nil }

func firewalldPresent(ctx context.Context, instance string) bool { return true }

func firewalldRemove(ctx context.Context, instance string) error { return nil }
