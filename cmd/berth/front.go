//go:build berth_helper

// The front path's constructor (front_linux.c) is built with the front
// it hands commands to: only a binary that carries one has it.

package main

import "C"
