"""data pool, rules knowledge base, rejection learning (issue #9)

Revision ID: 0004_data
Revises: 0003_approval
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel
import storage.types


revision = '0004_data'
down_revision = '0003_approval'
branch_labels = None
depends_on = None


def _s(n: int):
    return sqlmodel.sql.sqltypes.AutoString(length=n)


def _t():
    return storage.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('product_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('category', _s(128), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sku', 'platform', name='uq_product_category'),
    )
    op.create_index('ix_product_categories_sku', 'product_categories', ['sku'])
    op.create_table('price_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('price', storage.types.Money(precision=14, scale=2), nullable=False),
    sa.Column('observed_at', _t(), nullable=False),
    sa.Column('source', _s(32), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sku', 'platform', 'observed_at', 'source', name='uq_price_record'),
    )
    op.create_index('ix_price_history_lookup', 'price_history', ['sku', 'platform', 'observed_at'])
    op.create_table('rule_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('author', _s(128), nullable=False),
    sa.Column('source', _s(32), nullable=False),
    sa.Column('checksum', _s(64), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', _t(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'version', name='uq_rule_version'),
    )
    op.create_index('ix_rule_versions_platform', 'rule_versions', ['platform'])
    op.create_table('rejection_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('declaration_version', sa.Integer(), nullable=False),
    sa.Column('sku', _s(64), nullable=False),
    sa.Column('reason_code', _s(64), nullable=False),
    sa.Column('reason_text', sa.Text(), nullable=False),
    sa.Column('category', _s(32), nullable=False),
    sa.Column('signature', _s(160), nullable=False),
    sa.Column('created_at', _t(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id', 'declaration_version', 'sku', name='uq_rejection_line'),
    )
    op.create_index('ix_rejections_signature', 'rejection_records', ['platform', 'signature'])
    op.create_table('rule_proposals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('platform', _s(32), nullable=False),
    sa.Column('signature', _s(160), nullable=False),
    sa.Column('category', _s(32), nullable=False),
    sa.Column('reason_code', _s(64), nullable=False),
    sa.Column('sample_text', sa.Text(), nullable=False),
    sa.Column('occurrences', sa.Integer(), nullable=False),
    sa.Column('rule', sa.JSON(), nullable=False),
    sa.Column('state', _s(16), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('decided_at', _t(), nullable=True),
    sa.Column('rule_version', sa.Integer(), nullable=True),
    sa.Column('created_at', _t(), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id']),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('platform', 'signature', name='uq_rule_proposal'),
    )
    op.create_table('document_alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('document_id', sa.Integer(), nullable=False),
    sa.Column('valid_until', _t(), nullable=False),
    sa.Column('sent_at', _t(), nullable=False),
    sa.ForeignKeyConstraint(['document_id'], ['qualification_documents.id']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('document_id', 'valid_until', name='uq_document_alert'),
    )


def downgrade() -> None:
    op.drop_table('document_alerts')
    op.drop_table('rule_proposals')
    op.drop_index('ix_rejections_signature', table_name='rejection_records')
    op.drop_table('rejection_records')
    op.drop_index('ix_rule_versions_platform', table_name='rule_versions')
    op.drop_table('rule_versions')
    op.drop_index('ix_price_history_lookup', table_name='price_history')
    op.drop_table('price_history')
    op.drop_index('ix_product_categories_sku', table_name='product_categories')
    op.drop_table('product_categories')
