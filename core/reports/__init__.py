"""Aggregates for supervisors: the team board today, the KPI reports next."""
