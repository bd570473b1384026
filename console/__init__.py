"""The web app: the coordinator's console (issue 5), the JSON API, probes and metrics."""
