"""SMS through Kavenegar (issue 4): the API transport, the stand-in, the receive webhook
and the receive poller."""
