"""The server's HTTP face: routes, wire representations, request bodies, authentication."""
