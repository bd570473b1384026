"""The domain model: customers and identities, conversations, messages, replies, people and
teams, the audit trail, the channels' state, and the console's sign-in tables.

One package, one ``Base.metadata``: importing ``kartabl.models`` (as Alembic's environment
and the tests' truncation do) registers every table,. Everything is
imported from here (``from kartabl.models import Reply``); the modules only split the file:

- :mod:`~kartabl.models.base`: the declarative base, its conventions, the enums;
- :mod:`~kartabl.models.people`: people and teams;
- :mod:`~kartabl.models.conversations`: customers, conversations, messages, replies, events;
- :mod:`~kartabl.models.channel_state`: pollers' positions, mailboxes, quarantined mail,
  the sandbox sender's deliveries;
- :mod:`~kartabl.models.auth`: sessions, API tokens, login attempts, password resets;
- :mod:`~kartabl.models.canned`: canned responses (saved replies inserted by ``/shortcut``);
- :mod:`~kartabl.models.notifications`: the per-person notification feed and what each
  person has seen of each conversation.
- :mod:`~kartabl.models.reply_files`: the files attached to replies.
- :mod:`~kartabl.models.merges`: merged conversations, with what moved (for the undo).
- :mod:`~kartabl.models.search`: the search index (:mod:`kartabl.search`).
"""

from kartabl.models.auth import (
    ApiToken,
    LoginAttempt,
    PasswordReset,
    WebSession,
)
from kartabl.models.base import (
    Base,
    Channel,
    ConversationStatus,
    Direction,
    MessageKind,
    ReplyState,
    Role,
    UTCDateTime,
    enum_column,
    utcnow,
)
from kartabl.models.canned import CannedResponse
from kartabl.models.channel_state import (
    ChannelCursor,
    MailboxState,
    PollerState,
    QuarantinedMail,
    SandboxDelivery,
)
from kartabl.models.conversations import (
    Conversation,
    ConversationPause,
    Customer,
    Event,
    Identity,
    Message,
    Reply,
)
from kartabl.models.merges import ConversationMerge
from kartabl.models.notifications import ConversationSeen, Notification
from kartabl.models.people import Person, Team, TeamMember
from kartabl.models.reply_files import ReplyAttachment
from kartabl.models.search import SearchDoc

__all__ = [
    "ApiToken",
    "Base",
    "CannedResponse",
    "Channel",
    "ChannelCursor",
    "Conversation",
    "ConversationMerge",
    "ConversationPause",
    "ConversationSeen",
    "ConversationStatus",
    "Customer",
    "Direction",
    "Event",
    "Identity",
    "LoginAttempt",
    "MailboxState",
    "Message",
    "MessageKind",
    "Notification",
    "PasswordReset",
    "Person",
    "PollerState",
    "QuarantinedMail",
    "Reply",
    "ReplyAttachment",
    "ReplyState",
    "Role",
    "SandboxDelivery",
    "SearchDoc",
    "Team",
    "TeamMember",
    "UTCDateTime",
    "WebSession",
    "enum_column",
    "utcnow",
]

# -- webchat (issue 16: the website chat widget) --
from kartabl.models.webchat import WebchatEvent, WebchatOffline, WebchatVisitor, Widget

__all__ += ["WebchatEvent", "WebchatOffline", "WebchatVisitor", "Widget"]
