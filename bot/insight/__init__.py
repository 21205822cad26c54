"""Decisions: what a promotion costs and earns, and what the team's work costs.

Part 1 (costs, margin, guards, scenarios) and part 3 (team cost metrics ``metrics``, the
review report ``review``, the BI export ``bi_export``) live here; docs/insight.md.
"""
