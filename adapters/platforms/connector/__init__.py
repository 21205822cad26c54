"""Marketplace connectors: the base (``base.ConnectorBase``), errors and their retry
classes, request signing, the encrypted credentials store, the enrolment ledger, the
configuration (``config/connectors.yaml``) and the plugin. One platform per package beside
this one (``adapters/platforms/pdd/``, ``adapters/platforms/temu/``): docs/connectors.md
says how to add one."""
