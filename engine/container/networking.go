package container

// Networking is a container's network settings beyond its attachments and
// ports, as the service's keys give them.
type Networking struct {
	// Mode is "" (the attachments' bridges), "none", "host", or
	// "container:<name or ID>" to join another container's namespace.
	Mode       string `json:"mode,omitempty"`
	Domainname string `json:"domainname,omitempty"`
	// MacAddress is the service-level mac_address: the first network's.
	MacAddress string   `json:"mac_address,omitempty"`
	DNS        []string `json:"dns,omitempty"` // resolvers names are forwarded to
	DNSSearch  []string `json:"dns_search,omitempty"`
	DNSOptions []string `json:"dns_opt,omitempty"`
	// ExtraHosts are /etc/hosts entries, "name:address"; the address
	// host-gateway stands for the host as the container reaches it.
	ExtraHosts []string `json:"extra_hosts,omitempty"`
	// Links are names only this container resolves, each to the name of
	// the container it stands for (links, external_links).
	Links map[string]string `json:"links,omitempty"`
}

// Network modes.
const (
	NetworkModeNone          = "none"
	NetworkModeHost          = "host"
	NetworkModeContainerPref = "container:"
)
