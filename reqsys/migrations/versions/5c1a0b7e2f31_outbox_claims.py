"""outbox: relays claim rows (claimed_by, claimed_at) so two relays never send one row

Revision ID: 5c1a0b7e2f31
Revises: be4a94e5abce
Create Date: 2026-12-02 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '5c1a0b7e2f31'
down_revision = 'be4a94e5abce'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_events_claimed_by'), ['claimed_by'], unique=False)


def downgrade():
    with op.batch_alter_table('outbox_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_events_claimed_by'))
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')
