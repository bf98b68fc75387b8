// Package build turns a Dockerfile and its context into an image: it parses
// with buildkit's Dockerfile parser, runs each step (RUN as a short-lived
// container, COPY and ADD into a mounted root), commits each step's changes
// as a layer and keeps a cache of steps keyed by their inputs.
package build
