"""Imports every table module so SQLModel.metadata knows them all (Alembic, tests).

A feature that adds tables in its own module adds one import line here.
"""

from storage import (
    models,  # noqa: F401
    models_approval,  # noqa: F401
    models_auth,  # noqa: F401
    models_connectors,  # noqa: F401
    models_costs,  # noqa: F401
    models_data,  # noqa: F401
    models_results,  # noqa: F401
    models_watch,  # noqa: F401
)
