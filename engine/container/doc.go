// Package container keeps container records on disk and turns a record into
// an OCI runtime spec with Docker's default security settings.
package container
