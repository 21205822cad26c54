"""Pinduoduo open platform connector (limited-time discounts); see docs/connectors.md."""
