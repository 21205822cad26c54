"""Taobao/Tmall open platform (TOP): the shop's item activities, and assisted big-sale
enrolment (no public API); see docs/connectors.md."""
