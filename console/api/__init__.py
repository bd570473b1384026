"""The JSON API under ``/api/v1``: every workflow action and listing, with the console's
permission checks (:mod:`console.deps`). Described at ``/openapi.json``."""
