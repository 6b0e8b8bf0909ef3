"""Tags (labels) on tickets: a team-wide list of names with a colour, put on tickets by agents, filtered by."""
