// Package kube turns a loaded Compose project into Kubernetes objects (berth
// convert): a pure function of the project, with no cluster needed.
//
// Each service becomes a Deployment, a StatefulSet when it mounts named
// volumes, or a Job when other services wait for it to complete; a headless
// Service named after it keeps Compose's DNS names, a second Service carries
// its published ports, and one NetworkPolicy per Compose network reproduces
// the network's isolation. Keys with no faithful equivalent produce a
// Warning naming the service and key, never silence.
package kube
