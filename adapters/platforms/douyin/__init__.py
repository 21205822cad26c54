"""抖店开放平台 connector: 精选联盟 colonel (团长) activities; see docs/connectors.md."""
