"""The pure core: no sockets, no SQL, no clock, no environment. `now` is an argument."""
