"""I/O adapters: store, spool, listeners, pollers, outbox, scheduler."""
