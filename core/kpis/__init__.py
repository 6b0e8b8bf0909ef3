"""KPI reports over any date range (issue 12 scopes 2 and 5): per-ticket facts folded into small rollups."""
