"""Message templates a provider approved (WhatsApp): the only messages it delivers outside its reply window."""
