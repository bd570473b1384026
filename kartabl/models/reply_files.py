"""Files attached to a reply: what the agent uploads with a draft and the customer receives
with the sent reply (email MIME parts, Telegram and Bale documents or photos).

The bytes are stored as inbound attachments are (``KARTABL_ATTACHMENTS_DIR/<key[:2]>/<key>``,
the key the content's SHA-256); a row holds the display name (sanitised, never a path), the
content type as sniffed from the bytes, the size and the key. A row belongs to its reply
and is shown in the order it was added (``id``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kartabl.models.base import Base, utcnow


class ReplyAttachment(Base):
    __tablename__ = "reply_attachment"
    # The same bytes twice on one reply are one attachment.
    __table_args__ = (UniqueConstraint("reply_id", "storage_key",
                                       name="uq_reply_attachment_reply_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    reply_id: Mapped[int] = mapped_column(ForeignKey("reply.id", ondelete="CASCADE"),
                                          index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(64))
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
