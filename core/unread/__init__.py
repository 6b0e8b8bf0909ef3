"""Unread markers: when each person last looked at each ticket, so the inbox can show what is new to them."""
