"""Temu-style partner API connector (asynchronous enrolment); see docs/connectors.md."""
