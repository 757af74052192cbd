"""TF Serving's gRPC API: a client (MIDI <-> tokens happens here) and a local server."""
