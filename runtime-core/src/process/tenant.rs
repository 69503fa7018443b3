//! A process exec'd into a running container (`exec`).
