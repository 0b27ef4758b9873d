"""The server's HTTP face: routes, wire representations, URL paths, request bodies, and
who is calling (``auth``) and what they may do (``access``)."""
