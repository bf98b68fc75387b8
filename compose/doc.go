// Package compose turns a Compose project into engine calls: load, graph,
// observe, plan (pure) and apply, plus the log multiplexer.
package compose
