"""JD open platform (京东开放平台 / JOS) connector: the shop's own promotions; see docs/connectors.md."""
