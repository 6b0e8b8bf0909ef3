"""The email channel: IMAP (IDLE with a polling fallback) in, SMTP out."""
