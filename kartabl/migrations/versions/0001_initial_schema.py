"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-12-04 14:56:32.879119
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import kartabl.models


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_cursor",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("text_value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_channel_cursor")),
    )
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_into_id"], ["customer.id"], name=op.f("fk_customer_merged_into_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
    )
    op.create_table(
        "login_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempt")),
    )
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.create_index("ix_login_attempt_ip", ["ip", "at"], unique=False)
        batch_op.create_index("ix_login_attempt_username", ["username", "at"], unique=False)

    op.create_table(
        "mailbox_state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_mailbox_state")),
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "coordinator",
                "agent",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("can_merge", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("username", name=op.f("uq_person_username")),
    )
    op.create_table(
        "poller_state",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("last_ok_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("failing_since", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_poller_state")),
    )
    op.create_table(
        "sandbox_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=500), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_delivery")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_sandbox_delivery_idempotency_key")),
    )
    op.create_table(
        "team",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_team")),
        sa.UniqueConstraint("name", name=op.f("uq_team_name")),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("expires_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_api_token_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_token_token_hash")),
    )
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_token_person_id"), ["person_id"], unique=False)

    op.create_table(
        "canned_response",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("shortcut", sa.String(length=40), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("body_fa", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.Column("use_count", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["person.id"],
            name=op.f("fk_canned_response_created_by_id_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["team.id"],
            name=op.f("fk_canned_response_team_id_team"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_response")),
        sa.UniqueConstraint("shortcut", name=op.f("uq_canned_response_shortcut")),
    )
    with op.batch_alter_table("canned_response", schema=None) as batch_op:
        batch_op.create_index("ix_canned_response_team", ["team_id", "shortcut"], unique=False)

    op.create_table(
        "identity",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("display", sa.String(length=320), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_identity_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity")),
        sa.UniqueConstraint("kind", "address", name="uq_identity_kind_address"),
    )
    with op.batch_alter_table("identity", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_identity_customer_id"), ["customer_id"], unique=False)

    op.create_table(
        "password_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("used_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["person.id"], name=op.f("fk_password_reset_created_by_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_password_reset_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_password_reset_token_hash")),
    )
    op.create_table(
        "team_member",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_team_member_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_team_member_team_id_team"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "person_id", name=op.f("pk_team_member")),
    )
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.Column("flash", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_web_session_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_web_session_token_hash")),
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.create_index("ix_web_session_person", ["person_id", "revoked_at"], unique=False)

    op.create_table(
        "webchat_widget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("origins", sa.JSON(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("color", sa.String(length=16), nullable=False),
        sa.Column("text_color", sa.String(length=16), nullable=False),
        sa.Column("greeting_fa", sa.Text(), nullable=False),
        sa.Column("greeting_en", sa.Text(), nullable=False),
        sa.Column("offline_fa", sa.Text(), nullable=False),
        sa.Column("offline_en", sa.Text(), nullable=False),
        sa.Column("ask_phone", sa.Boolean(), nullable=False),
        sa.Column("ask_email", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["team.id"],
            name=op.f("fk_webchat_widget_team_id_team"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webchat_widget")),
        sa.UniqueConstraint("public_id", name=op.f("uq_webchat_widget_public_id")),
    )
    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "sms",
                "telegram",
                "bale",
                "webchat",
                "api",
                "instagram",
                "whatsapp",
                "rubika",
                name="channel",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "open",
                "waiting",
                "snoozed",
                "closed",
                name="conversation_status",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("previous_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("first_response_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("resolved_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("last_message_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("snoozed_until", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("to_identity_id", sa.Integer(), nullable=True),
        sa.Column("from_address", sa.String(length=320), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("first_response_due_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("resolution_due_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("first_response_warn_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("resolution_warn_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("satisfaction_score", sa.Integer(), nullable=True),
        sa.Column("satisfaction_comment", sa.Text(), nullable=True),
        sa.Column("satisfaction_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["person.id"], name=op.f("fk_conversation_assignee_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_conversation_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_merged_into_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["previous_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_previous_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["started_by_id"], ["person.id"], name=op.f("fk_conversation_started_by_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["team.id"], name=op.f("fk_conversation_team_id_team")
        ),
        sa.ForeignKeyConstraint(
            ["to_identity_id"],
            ["identity.id"],
            name=op.f("fk_conversation_to_identity_id_identity"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation")),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_assignee_status",
            ["assignee_id", "status", "last_message_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_conversation_counts",
            ["status", "team_id"],
            unique=False,
            postgresql_include=[
                "assignee_id",
                "opened_at",
                "first_response_at",
                "channel",
                "first_response_due_at",
                "resolution_due_at",
            ],
        )
        batch_op.create_index(
            "ix_conversation_customer_channel_status",
            ["customer_id", "channel", "status"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_first_response_due_at"),
            ["first_response_due_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_resolution_due_at"), ["resolution_due_at"], unique=False
        )
        batch_op.create_index(
            "ix_conversation_scope",
            ["id"],
            unique=False,
            postgresql_include=["assignee_id", "team_id"],
        )
        batch_op.create_index(
            "ix_conversation_status_last", ["status", "last_message_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_conversation_status_opened",
            ["status", "opened_at", "first_response_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_conversation_team_status",
            ["team_id", "status", "last_message_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_conversation_triage",
            ["last_message_at", "id"],
            unique=False,
            postgresql_where=sa.text("status = 'open' AND assignee_id IS NULL"),
            sqlite_where=sa.text("status = 'open' AND assignee_id IS NULL"),
        )

    op.create_table(
        "webchat_visitor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("widget_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("identity_kind", sa.String(length=10), nullable=True),
        sa.Column("identity_address", sa.String(length=320), nullable=True),
        sa.Column("contact_kind", sa.String(length=10), nullable=True),
        sa.Column("contact_address", sa.String(length=320), nullable=True),
        sa.Column("locale", sa.String(length=5), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("stream_seen_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["widget_id"],
            ["webchat_widget.id"],
            name=op.f("fk_webchat_visitor_widget_id_webchat_widget"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webchat_visitor")),
        sa.UniqueConstraint("key", name=op.f("uq_webchat_visitor_key")),
    )
    with op.batch_alter_table("webchat_visitor", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webchat_visitor_widget_id"), ["widget_id"], unique=False
        )

    op.create_table(
        "conversation_pause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("started_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("ended_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_pause_conversation_id_conversation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_pause")),
    )
    with op.batch_alter_table("conversation_pause", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_pause_conversation", ["conversation_id", "started_at"], unique=False
        )

    op.create_table(
        "conversation_seen",
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("last_message_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("seen_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_seen_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_conversation_seen_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", "conversation_id", name=op.f("pk_conversation_seen")),
    )
    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "sms",
                "telegram",
                "bale",
                "webchat",
                "api",
                "instagram",
                "whatsapp",
                "rubika",
                name="channel",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "in", "out", name="direction", native_enum=False, create_constraint=True, length=24
            ),
            nullable=False,
        ),
        sa.Column(
            "kind",
            sa.Enum(
                "message",
                "auto_reply",
                "bounce",
                name="message_kind",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("sender_name", sa.String(length=200), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=1000), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=True),
        sa.Column("safe_html", sa.Text(), nullable=True),
        sa.Column("in_reply_to", sa.String(length=1000), nullable=True),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("attachments", sa.JSON(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("received_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("routed_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("origin_conversation_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_message_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_message_customer_id_customer")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message")),
        sa.UniqueConstraint("channel", "external_id", name="uq_message_channel_external_id"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_conversation_time", ["conversation_id", "received_at", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_message_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index("ix_message_unrouted", ["routed_at", "id"], unique=False)

    op.create_table(
        "reply",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "draft",
                "pending_approval",
                "approved",
                "sending",
                "sent",
                "delivered",
                "failed",
                "rejected",
                name="reply_state",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "sms",
                "telegram",
                "bale",
                "webchat",
                "api",
                "instagram",
                "whatsapp",
                "rubika",
                name="channel",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("original_body", sa.Text(), nullable=True),
        sa.Column("template", sa.String(length=100), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("review_comment", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=500), nullable=True),
        sa.Column("provider_id", sa.String(length=500), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("approved_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("sending_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("sent_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("send_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("scheduled_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("schedule_held_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("origin_conversation_id", sa.Integer(), nullable=True),
        sa.Column("to_identity_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["person.id"], name=op.f("fk_reply_approved_by_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["person.id"], name=op.f("fk_reply_author_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_reply_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["to_identity_id"], ["identity.id"], name=op.f("fk_reply_to_identity_id_identity")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reply_idempotency_key")),
    )
    with op.batch_alter_table("reply", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reply_conversation_sent", ["conversation_id", "sent_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_reply_conversation_unsent",
            ["conversation_id", "created_at", "id"],
            unique=False,
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        )
        batch_op.create_index(
            "ix_reply_panel",
            ["conversation_id", "id"],
            unique=False,
            postgresql_where=sa.text(
                "state = 'pending_approval' OR state = 'draft' OR state = 'rejected'"
            ),
            sqlite_where=sa.text(
                "state = 'pending_approval' OR state = 'draft' OR state = 'rejected'"
            ),
        )
        batch_op.create_index(
            "ix_reply_state",
            ["state", "updated_at"],
            unique=False,
            postgresql_include=["conversation_id"],
        )

    op.create_table(
        "search_doc",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_search_doc_conversation_id_conversation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_doc")),
        sa.UniqueConstraint("source", "source_id", name="uq_search_doc_source"),
    )
    with op.batch_alter_table("search_doc", schema=None) as batch_op:
        batch_op.create_index("ix_search_doc_at", ["at", "id"], unique=False)
        batch_op.create_index("ix_search_doc_conversation", ["conversation_id", "at"], unique=False)

    op.create_table(
        "webchat_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=600), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["visitor_id"],
            ["webchat_visitor.id"],
            name=op.f("fk_webchat_event_visitor_id_webchat_visitor"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webchat_event")),
        sa.UniqueConstraint("visitor_id", "key", name="uq_webchat_event_visitor_key"),
        sa.UniqueConstraint("visitor_id", "seq", name="uq_webchat_event_visitor_seq"),
    )
    with op.batch_alter_table("webchat_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_webchat_event_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_webchat_event_message_id"), ["message_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_webchat_event_reply_id"), ["reply_id"], unique=False)

    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("origin_conversation_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["actor_id"], ["person.id"], name=op.f("fk_event_actor_id_person")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_event_conversation_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_event_customer_id_customer")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_event_message_id_message")
        ),
        sa.ForeignKeyConstraint(["reply_id"], ["reply.id"], name=op.f("fk_event_reply_id_reply")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_activity",
            ["conversation_id", "at", "id"],
            unique=False,
            postgresql_where=sa.text("kind LIKE 'conversation.%'"),
            postgresql_include=["kind"],
            sqlite_where=sa.text("kind LIKE 'conversation.%'"),
        )
        batch_op.create_index("ix_event_conversation", ["conversation_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_kind"), ["kind"], unique=False)
        batch_op.create_index(
            "ix_event_reply",
            ["reply_id", "id"],
            unique=False,
            postgresql_where=sa.text("reply_id IS NOT NULL"),
            sqlite_where=sa.text("reply_id IS NOT NULL"),
        )

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=True),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("read_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["person.id"],
            name=op.f("fk_notification_actor_id_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
            name=op.f("fk_notification_conversation_id_conversation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_notification_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"],
            ["reply.id"],
            name=op.f("fk_notification_reply_id_reply"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
        sa.UniqueConstraint("key", name=op.f("uq_notification_key")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_person", ["person_id", "id"], unique=False)
        batch_op.create_index(
            "ix_notification_unread",
            ["person_id"],
            unique=False,
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        )

    op.create_table(
        "quarantined_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("folder", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("headers_only", sa.Boolean(), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("reimported_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["message.id"], name=op.f("fk_quarantined_mail_message_id_message")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantined_mail")),
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid", name="uq_quarantined_mail_mailbox"),
    )
    with op.batch_alter_table("quarantined_mail", schema=None) as batch_op:
        batch_op.create_index("ix_quarantined_mail_open", ["reimported_at", "id"], unique=False)

    op.create_table(
        "reply_attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reply_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["added_by_id"],
            ["person.id"],
            name=op.f("fk_reply_attachment_added_by_id_person"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"],
            ["reply.id"],
            name=op.f("fk_reply_attachment_reply_id_reply"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_attachment")),
        sa.UniqueConstraint("reply_id", "storage_key", name="uq_reply_attachment_reply_key"),
    )
    with op.batch_alter_table("reply_attachment", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reply_attachment_reply_id"), ["reply_id"], unique=False
        )

    op.create_table(
        "webchat_offline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reply_id", sa.Integer(), nullable=False),
        sa.Column("source_reply_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("created_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["reply_id"],
            ["reply.id"],
            name=op.f("fk_webchat_offline_reply_id_reply"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webchat_offline")),
        sa.UniqueConstraint("reply_id", name=op.f("uq_webchat_offline_reply_id")),
        sa.UniqueConstraint("source_reply_id", name=op.f("uq_webchat_offline_source_reply_id")),
    )
    with op.batch_alter_table("webchat_offline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webchat_offline_address"), ["address"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_webchat_offline_conversation_id"), ["conversation_id"], unique=False
        )

    op.create_table(
        "conversation_merge",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("merged_at", kartabl.models.base.UTCDateTime(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("source_state", sa.JSON(), nullable=False),
        sa.Column("target_state", sa.JSON(), nullable=False),
        sa.Column("target_event_id", sa.Integer(), nullable=True),
        sa.Column("source_event_id", sa.Integer(), nullable=True),
        sa.Column("last_message_id", sa.Integer(), nullable=True),
        sa.Column("last_reply_id", sa.Integer(), nullable=True),
        sa.Column("undone_at", kartabl.models.base.UTCDateTime(), nullable=True),
        sa.Column("undone_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["person.id"], name=op.f("fk_conversation_merge_actor_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["source_event_id"],
            ["event.id"],
            name=op.f("fk_conversation_merge_source_event_id_event"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_merge_source_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["target_event_id"],
            ["event.id"],
            name=op.f("fk_conversation_merge_target_event_id_event"),
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["conversation.id"],
            name=op.f("fk_conversation_merge_target_id_conversation"),
        ),
        sa.ForeignKeyConstraint(
            ["undone_by_id"], ["person.id"], name=op.f("fk_conversation_merge_undone_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_merge")),
    )
    with op.batch_alter_table("conversation_merge", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_merge_source", ["source_id", "id"], unique=False)
        batch_op.create_index("ix_conversation_merge_target", ["target_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation_merge", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_merge_target")
        batch_op.drop_index("ix_conversation_merge_source")

    op.drop_table("conversation_merge")
    with op.batch_alter_table("webchat_offline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webchat_offline_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_webchat_offline_address"))

    op.drop_table("webchat_offline")
    with op.batch_alter_table("reply_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reply_attachment_reply_id"))

    op.drop_table("reply_attachment")
    with op.batch_alter_table("quarantined_mail", schema=None) as batch_op:
        batch_op.drop_index("ix_quarantined_mail_open")

    op.drop_table("quarantined_mail")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_notification_unread",
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        )
        batch_op.drop_index("ix_notification_person")

    op.drop_table("notification")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_event_reply",
            postgresql_where=sa.text("reply_id IS NOT NULL"),
            sqlite_where=sa.text("reply_id IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_event_kind"))
        batch_op.drop_index("ix_event_conversation")
        batch_op.drop_index(
            "ix_event_activity",
            postgresql_where=sa.text("kind LIKE 'conversation.%'"),
            postgresql_include=["kind"],
            sqlite_where=sa.text("kind LIKE 'conversation.%'"),
        )

    op.drop_table("event")
    with op.batch_alter_table("webchat_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webchat_event_reply_id"))
        batch_op.drop_index(batch_op.f("ix_webchat_event_message_id"))
        batch_op.drop_index(batch_op.f("ix_webchat_event_conversation_id"))

    op.drop_table("webchat_event")
    with op.batch_alter_table("search_doc", schema=None) as batch_op:
        batch_op.drop_index("ix_search_doc_conversation")
        batch_op.drop_index("ix_search_doc_at")

    op.drop_table("search_doc")
    with op.batch_alter_table("reply", schema=None) as batch_op:
        batch_op.drop_index("ix_reply_state", postgresql_include=["conversation_id"])
        batch_op.drop_index(
            "ix_reply_panel",
            postgresql_where=sa.text(
                "state = 'pending_approval' OR state = 'draft' OR state = 'rejected'"
            ),
            sqlite_where=sa.text(
                "state = 'pending_approval' OR state = 'draft' OR state = 'rejected'"
            ),
        )
        batch_op.drop_index(
            "ix_reply_conversation_unsent",
            postgresql_where=sa.text("sent_at IS NULL"),
            sqlite_where=sa.text("sent_at IS NULL"),
        )
        batch_op.drop_index("ix_reply_conversation_sent")

    op.drop_table("reply")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_unrouted")
        batch_op.drop_index(batch_op.f("ix_message_customer_id"))
        batch_op.drop_index("ix_message_conversation_time")

    op.drop_table("message")
    op.drop_table("conversation_seen")
    with op.batch_alter_table("conversation_pause", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_pause_conversation")

    op.drop_table("conversation_pause")
    with op.batch_alter_table("webchat_visitor", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webchat_visitor_widget_id"))

    op.drop_table("webchat_visitor")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_conversation_triage",
            postgresql_where=sa.text("status = 'open' AND assignee_id IS NULL"),
            sqlite_where=sa.text("status = 'open' AND assignee_id IS NULL"),
        )
        batch_op.drop_index("ix_conversation_team_status")
        batch_op.drop_index("ix_conversation_status_opened")
        batch_op.drop_index("ix_conversation_status_last")
        batch_op.drop_index("ix_conversation_scope", postgresql_include=["assignee_id", "team_id"])
        batch_op.drop_index(batch_op.f("ix_conversation_resolution_due_at"))
        batch_op.drop_index(batch_op.f("ix_conversation_first_response_due_at"))
        batch_op.drop_index("ix_conversation_customer_channel_status")
        batch_op.drop_index(
            "ix_conversation_counts",
            postgresql_include=[
                "assignee_id",
                "opened_at",
                "first_response_at",
                "channel",
                "first_response_due_at",
                "resolution_due_at",
            ],
        )
        batch_op.drop_index("ix_conversation_assignee_status")

    op.drop_table("conversation")
    op.drop_table("webchat_widget")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_index("ix_web_session_person")

    op.drop_table("web_session")
    op.drop_table("team_member")
    op.drop_table("password_reset")
    with op.batch_alter_table("identity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_customer_id"))

    op.drop_table("identity")
    with op.batch_alter_table("canned_response", schema=None) as batch_op:
        batch_op.drop_index("ix_canned_response_team")

    op.drop_table("canned_response")
    with op.batch_alter_table("api_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_token_person_id"))

    op.drop_table("api_token")
    op.drop_table("team")
    op.drop_table("sandbox_delivery")
    op.drop_table("poller_state")
    op.drop_table("person")
    op.drop_table("mailbox_state")
    with op.batch_alter_table("login_attempt", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempt_username")
        batch_op.drop_index("ix_login_attempt_ip")

    op.drop_table("login_attempt")
    op.drop_table("customer")
    op.drop_table("channel_cursor")
