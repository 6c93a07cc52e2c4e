"""request ids that carry the parent's account; the verified address for emails; the class's version

request_id grows to 64 (new ids carry a tag of the parent's account; existing rows keep theirs), in the
applications and the enrolments. `notify_email` is where the parent's emails go (existing rows: their
parent_email, as before). class_capacities.version is bumped by every offer that takes a place (the
conditional update that checks a place is free).

Revision ID: 8e4b2d61f0a7
Revises: 8d2e4f6a9b13
Create Date: 2026-12-02 17:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = '8e4b2d61f0a7'
down_revision = '8d2e4f6a9b13'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.alter_column('request_id', existing_type=sa.String(length=30), type_=sa.String(length=64),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('notify_email', sa.String(length=254), nullable=True))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.alter_column('request_id', existing_type=sa.String(length=30), type_=sa.String(length=64),
                              existing_nullable=False)
    with op.batch_alter_table('class_capacities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0', nullable=False))

    applications = sa.table('applications', sa.column('parent_email', sa.String), sa.column('notify_email', sa.String))
    op.get_bind().execute(applications.update().where(applications.c.notify_email.is_(None))
                          .values(notify_email=applications.c.parent_email))


def downgrade():
    with op.batch_alter_table('class_capacities', schema=None) as batch_op:
        batch_op.drop_column('version')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.alter_column('request_id', existing_type=sa.String(length=64), type_=sa.String(length=30),
                              existing_nullable=False)
    with op.batch_alter_table('applications', schema=None) as batch_op:
        batch_op.drop_column('notify_email')
        batch_op.alter_column('request_id', existing_type=sa.String(length=64), type_=sa.String(length=30),
                              existing_nullable=False)
