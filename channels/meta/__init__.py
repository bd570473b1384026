"""Instagram Direct and WhatsApp through Meta's official APIs (issue 16): the webhook, the
payload parsers, media downloads and the Graph API stand-in."""
