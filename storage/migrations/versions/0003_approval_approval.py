"""approval rounds, escalations, submission runs (#8)

Revision ID: 0003_approval
Revises: 0002_watch
"""
from alembic import op
import sqlalchemy as sa
import storage.types


revision = '0003_approval'
down_revision = '0002_watch'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'approval_rounds',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), sa.ForeignKey('tasks.id'), nullable=False),
        sa.Column('declaration_version', sa.Integer(), nullable=False),
        sa.Column('opened_version', sa.Integer(), nullable=False),
        sa.Column('requested_by', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('state', sa.String(length=24), nullable=False),
        sa.Column('step_ids', sa.JSON(), nullable=False),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.Column('auto', sa.JSON(), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('closed_at', storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_approval_rounds_task_id', 'approval_rounds', ['task_id'])
    op.create_table(
        'approval_escalations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.Integer(), sa.ForeignKey('approval_steps.id'), nullable=False),
        sa.Column('task_id', sa.Integer(), sa.ForeignKey('tasks.id'), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('escalated_to', sa.JSON(), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('step_id', 'level', name='uq_escalation_step_level'),
    )
    op.create_index('ix_approval_escalations_step_id', 'approval_escalations', ['step_id'])
    op.create_index('ix_approval_escalations_task_id', 'approval_escalations', ['task_id'])
    op.create_table(
        'submission_runs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('task_id', sa.Integer(), sa.ForeignKey('tasks.id'), nullable=False),
        sa.Column('declaration_version', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=128), nullable=False),
        sa.Column('channels', sa.JSON(), nullable=False),
        sa.Column('channel_index', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('assignee', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('tried', sa.JSON(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('handoff', sa.JSON(), nullable=False),
        sa.Column('created_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_at', storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('task_id', 'declaration_version', name='uq_submission_run'),
    )
    op.create_index('ix_submission_runs_task_id', 'submission_runs', ['task_id'])


def downgrade() -> None:
    op.drop_index('ix_submission_runs_task_id', table_name='submission_runs')
    op.drop_table('submission_runs')
    op.drop_index('ix_approval_escalations_task_id', table_name='approval_escalations')
    op.drop_index('ix_approval_escalations_step_id', table_name='approval_escalations')
    op.drop_table('approval_escalations')
    op.drop_index('ix_approval_rounds_task_id', table_name='approval_rounds')
    op.drop_table('approval_rounds')
