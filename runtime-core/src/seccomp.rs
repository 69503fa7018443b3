//! Seccomp filters from the OCI spec's `linux.seccomp`.
