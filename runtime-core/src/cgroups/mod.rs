//! Control groups of a container on cgroup v1, v2 and hybrid hosts.
