"""The outside world behind small interfaces (geocoder, SMTP, 116117 client, clock)."""
