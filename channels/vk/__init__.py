"""The VK channel (community messages): Callback API in, messages.send out, over plain httpx."""
