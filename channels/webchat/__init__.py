"""The web-chat channel: an embeddable widget talking to a WebSocket endpoint."""
