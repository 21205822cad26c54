"""console login: user_credentials (password hashes)

Revision ID: 0005_auth
Revises: 0004_data
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0005_auth'
down_revision = '0004_data'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('user_credentials',
    sa.Column('user_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('password_hash', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
    sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id'),
    )


def downgrade() -> None:
    op.drop_table('user_credentials')
