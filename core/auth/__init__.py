"""Sign-in protection (failed-login throttling and account locks) and the request rate limits."""
