"""The console's HTML pages (server-rendered Jinja2, htmx for live parts)."""
