"""System plumbing below every component: crash-safe files, logging set-up, the
line to systemd, the data directory watch, the networkd file."""
