// Package image stores container images as an OCI image layout with a refs
// index, imports image archives and root filesystem tarballs, and unpacks
// untrusted layer tarballs safely.
package image
