"""The SQL that generates ``bench.console``'s cartable, inside PostgreSQL: one statement per
table, ``INSERT ... SELECT`` over ``generate_series`` with ``random()`` (seeded by the
caller's ``setseed``). :mod:`bench.console_seed` runs them in order and says what they make.

Parameters (psycopg, named): ``n`` conversations, ``c`` customers, ``now`` (naive UTC, as
the schema stores it), ``long_step`` (every ``long_step``-th conversation is a long one).
Explicit ids from ``row_number()`` in time order, so ids follow time as in production.
"""

from __future__ import annotations

AGENTS_PER_TEAM = 5
FIRST_AGENT_ID = 7  # 1 admin, 2..6 coordinators, then the agents team by team

# The texts are sample paragraphs, picked per row; Persian and English as in the inbox.
_TEXTS = [
    "سلام، سفارش شماره ۴۵۸۲۱ من هنوز نرسیده است. لطفاً وضعیت ارسال را بررسی کنید.",
    "Hello, I was charged twice for my last invoice. Could you please refund one of them?",
    "با سلام و احترام، رمز عبور حساب کاربری‌ام کار نمی‌کند و پیامک تأیید هم دریافت نمی‌کنم.",
    "Hi, the product arrived damaged. I attached photos of the box. What should I do next?",
    "درود، می‌خواستم بدانم آیا امکان تغییر آدرس تحویل پس از ثبت سفارش وجود دارد یا نه؟",
    "Good morning. Can I upgrade my plan in the middle of the month and pay the difference?",
    "سلام وقت بخیر. فاکتور رسمی برای خرید هفته گذشته لازم دارم، به نام شرکت صادر شود.",
    "Thanks for the quick answer! One more question: does the warranty cover the battery?",
    "این سومین بار است که تماس می‌گیرم و هنوز کسی مشکل من را پیگیری نکرده است. لطفاً رسیدگی کنید.",
    "Please cancel my subscription effective today and confirm by email. Order ref KB-20931.",
    "سلام، کد تخفیف روی سبد خرید اعمال نمی‌شود و پیغام خطا می‌دهد. لطفاً راهنمایی کنید.",
    "Hi team, our company would like a bulk quote for 120 units delivered to Tabriz.",
]
_REPLIES = [
    "سلام، از صبر شما سپاسگزاریم. سفارش شما امروز ارسال شد و کد رهگیری پیامک می‌شود.",
    "Hello, thank you for letting us know. The duplicate charge has been refunded.",
    "با سلام، لینک بازیابی رمز عبور برای شما ارسال شد. در صورت مشکل دوباره پیام دهید.",
    "Hi, we are sorry about that. A replacement is on its way; no need to return the item.",
    "درود، بله امکان تغییر آدرس تا پیش از ارسال وجود دارد. آدرس جدید را بفرمایید.",
    "Good morning. Yes, the upgrade is pro-rated; you will only pay for the days left.",
]
_SUBJECTS = ["پیگیری سفارش", "Invoice question", "مشکل ورود به حساب", "Damaged delivery",
             "تغییر آدرس", "Plan upgrade", "درخواست فاکتور رسمی", "Warranty"]
_FIRST = ["علی", "مریم", "رضا", "زهرا", "حسین", "فاطمه", "Sara", "John", "مهدی", "نرگس",
          "Amir", "Laura", "سعید", "الهام", "Peyman", "Neda"]
_LAST = ["احمدی", "محمدی", "Karimi", "حسینی", "رضایی", "Smith", "موسوی", "Tehrani",
         "کریمی", "جعفری", "Rahimi", "صادقی"]


def _arr(values: list[str]) -> str:
    """A SQL text array literal (the samples are ours: no quotes inside but escaped anyway)."""
    return "ARRAY[" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _pick(values: list[str], expr: str) -> str:
    return f"({_arr(values)})[1 + mod(({expr})::bigint, {len(values)})]"


# Per customer c: a primary channel (35 % email, 25 % SMS, 30 % Telegram, 10 % Bale), a
# second one for every third customer, a third for one in ten. 0..3 = email, sms, tg, bale.
_PRIMARY = ("(CASE WHEN mod({c}, 20) < 7 THEN 0 WHEN mod({c}, 20) < 12 THEN 1 "
            "WHEN mod({c}, 20) < 18 THEN 2 ELSE 3 END)")
_KIND = "(ARRAY['email','phone','telegram','bale'])[1 + ({i})]"
_CHANNEL = "(ARRAY['email','sms','telegram','bale'])[1 + ({i})]"
# A customer's address on channel index i: unique per (kind, customer), normalised forms.
_ADDRESS = ("(CASE {i} WHEN 0 THEN 'customer' || {c} || '@mail.example.com' "
            "WHEN 1 THEN '+98912' || lpad(({c})::text, 7, '0') "
            "WHEN 2 THEN (100000000 + {c})::text ELSE (500000000 + {c})::text END)")
_OURS = ("(CASE {ch} WHEN 'email' THEN 'support@kartabl.example.com' WHEN 'sms' THEN "
         "'10004346' ELSE 'kartabl_support_bot' END)")
_SENT_OK = "(CASE WHEN p.channel = 'sms' THEN 'delivered' ELSE 'sent' END)"


def plan_sql() -> str:
    """One row per conversation, with what the later phases derive from it."""
    open_rule = ("CASE WHEN age < 7 THEN r_open < 0.85 WHEN age < 60 THEN r_open < 0.5 "
                 "ELSE r_open < 0.015 END")
    n_in = ("CASE WHEN is_long THEN 40 + floor(r_len * 160)::int WHEN r_len < 0.62 THEN 1 "
            "WHEN r_len < 0.84 THEN 2 WHEN r_len < 0.93 THEN 3 "
            "WHEN r_len < 0.99 THEN 4 + floor(r_gap * 5)::int ELSE 9 + floor(r_gap * 12)::int END")
    gap = ("CASE WHEN is_long THEN interval '4 hours' + r_gap * interval '8 hours' "
           "ELSE interval '20 minutes' + r_gap * interval '6 hours' END")
    primary = _PRIMARY.format(c="customer_id")
    channel_ix = (f"CASE WHEN mod(customer_id, 3) = 0 AND r_ch < 0.3 THEN mod({primary} + 1, 4) "
                  f"WHEN mod(customer_id, 10) = 1 AND r_ch > 0.9 THEN mod({primary} + 2, 4) "
                  f"ELSE {primary} END")
    return f"""
    CREATE TEMP TABLE conv_plan AS
    WITH r AS (
      SELECT i AS id, (%(n)s - i)::float8 / %(n)s * 730 AS age,
             mod(i, %(long_step)s) = 1 AS is_long,
             random() AS r_cust, random() AS r_open, random() AS r_len, random() AS r_gap,
             random() AS r_rep, random() AS r_state, random() AS r_place, random() AS r_team,
             random() AS r_who, random() AS r_ch
      FROM generate_series(1, %(n)s) AS i
    ), a AS (
      SELECT r.*, 1 + least(%(c)s - 1, floor(%(c)s * power(r_cust, 1.5))::int) AS customer_id,
             {open_rule} AS is_open, {n_in} AS n_in, {gap} AS gap,
             -- long ones go round the teams, so that every agent's scope has some
             CASE WHEN is_long THEN 1 + mod(id / %(long_step)s, 10)
                  ELSE 1 + least(9, floor(10 * power(r_team, 1.3))::int) END AS team
      FROM r
    ), b AS (
      SELECT a.*, {_CHANNEL.format(i=channel_ix)} AS channel,
             CASE WHEN is_long THEN 'person' WHEN is_open THEN (CASE WHEN r_place < 0.05 THEN 'none'
                                          WHEN r_place < 0.20 THEN 'team' ELSE 'person' END)
                  ELSE (CASE WHEN r_place < 0.01 THEN 'none' WHEN r_place < 0.03 THEN 'team'
                             ELSE 'person' END) END AS placed
      FROM a
    ), c AS (
      SELECT b.*,
             CASE WHEN placed = 'none' THEN 0 WHEN r_rep < 0.6 THEN n_in ELSE n_in - 1 END AS n_rep,
             CASE WHEN NOT is_open THEN (CASE WHEN r_state < 0.03 THEN 'failed'
                                              WHEN r_state < 0.05 THEN 'rejected' ELSE 'ok' END)
                  WHEN r_state < 0.15 THEN 'draft' WHEN r_state < 0.25 THEN 'pending_approval'
                  WHEN r_state < 0.29 THEN 'approved' WHEN r_state < 0.31 THEN 'sending'
                  WHEN r_state < 0.35 THEN 'failed' WHEN r_state < 0.42 THEN 'rejected'
                  ELSE 'ok' END AS last_state,
             (n_in - 1) * gap + interval '40 minutes' AS span
      FROM b
    )
    SELECT id, customer_id, channel, is_open, is_long, n_in, n_rep, gap, placed, last_state,
           CASE WHEN placed = 'none' THEN NULL ELSE team END AS team_id,
           CASE WHEN placed = 'person'
                THEN {FIRST_AGENT_ID} + (team - 1) * {AGENTS_PER_TEAM}
                     + floor(r_who * {AGENTS_PER_TEAM})::int END AS assignee_id,
           -- recent conversations are moved back so that every message is in the past
           least(%(now)s - age * interval '1 day', %(now)s - span) AS opened_at
    FROM c
    """


def conversations_sql() -> str:
    last_sent = "(p.n_rep = p.n_in AND p.last_state = 'ok')"
    first_sent = "(p.n_rep > 1 OR (p.n_rep = 1 AND p.last_state = 'ok'))"
    last_at = (f"p.opened_at + (p.n_in - 1) * p.gap "
               f"+ CASE WHEN {last_sent} THEN interval '30 minutes' ELSE interval '0' END")
    return f"""
    INSERT INTO conversation (id, customer_id, channel, status, subject, team_id, assignee_id,
                              previous_id, opened_at, first_response_at, resolved_at,
                              last_message_at, first_response_due_at, resolution_due_at,
                              first_response_warn_at, resolution_warn_at)
    SELECT p.id, p.customer_id, p.channel, CASE WHEN p.is_open THEN 'open' ELSE 'closed' END,
           CASE WHEN p.channel = 'email' THEN {_pick(_SUBJECTS, 'p.id')} ELSE '' END,
           p.team_id, p.assignee_id, NULL, p.opened_at,
           CASE WHEN {first_sent} THEN p.opened_at + interval '30 minutes' END,
           CASE WHEN NOT p.is_open THEN least(%(now)s, {last_at} + interval '1 hour') END,
           {last_at},
           -- the service clock of the benchmark's teams (no hours in its routing: round
           -- the clock) under the default targets: 240 minutes and 72 hours, warned at 80%
           p.opened_at + interval '240 minutes', p.opened_at + interval '72 hours',
           p.opened_at + interval '192 minutes', p.opened_at + interval '57.6 hours'
    FROM conv_plan p ORDER BY p.id
    """


def replies_sql() -> str:
    state = f"(CASE WHEN k < p.n_rep OR p.last_state = 'ok' THEN {_SENT_OK} ELSE p.last_state END)"
    approved = "s.state NOT IN ('draft', 'pending_approval', 'rejected')"
    return f"""
    INSERT INTO reply (id, conversation_id, author_id, state, channel, body, original_body,
                       template, approved_by_id, review_comment, idempotency_key, provider_id,
                       error, attempts, created_at, updated_at, approved_at, sending_at,
                       sent_at, delivered_at)
    SELECT row_number() OVER (ORDER BY s.at, s.conversation_id, s.k), s.conversation_id,
           s.author_id, s.state, s.channel, s.body,
           CASE WHEN {approved} AND s.r < 0.05 THEN s.body || ' (draft)' END,
           NULL, CASE WHEN {approved} THEN 2 + mod(s.conversation_id, 5) END,
           CASE WHEN s.state = 'rejected' THEN 'لطفاً شماره پیگیری را هم بنویسید.' END,
           CASE WHEN {approved} THEN s.key END,
           CASE WHEN s.state IN ('sent', 'delivered') THEN 'prov-' || s.key END,
           CASE WHEN s.state = 'failed' THEN 'provider said: recipient unreachable' END,
           CASE WHEN {approved} THEN 1 ELSE 0 END, s.at, s.at + interval '10 minutes',
           CASE WHEN {approved} THEN s.at + interval '15 minutes' END,
           CASE WHEN s.state NOT IN ('draft', 'pending_approval', 'rejected', 'approved')
                THEN s.at + interval '16 minutes' END,
           CASE WHEN s.state IN ('sent', 'delivered') THEN s.at + interval '20 minutes' END,
           CASE WHEN s.state = 'delivered' THEN s.at + interval '21 minutes' END
    FROM (
      SELECT p.id AS conversation_id, k, p.channel, {state} AS state, random() AS r,
             coalesce(p.assignee_id,
                      {FIRST_AGENT_ID} + (p.team_id - 1) * {AGENTS_PER_TEAM}) AS author_id,
             p.opened_at + (k - 1) * p.gap + interval '10 minutes' AS at,
             {_pick(_REPLIES, 'p.id + k')} AS body,
             CASE WHEN p.channel = 'email'
                  THEN '<kartabl.' || p.id || '.' || k || '.bench@kartabl.example.com>'
                  ELSE p.id || '.' || k END AS key
      FROM conv_plan p CROSS JOIN LATERAL generate_series(1, p.n_rep) AS k
    ) s
    """


def messages_sql() -> str:
    # The customer's address on the conversation's channel (an identity they have).
    ch_ix = "(array_position(ARRAY['email','sms','telegram','bale'], p.channel::text) - 1)"
    address = _ADDRESS.format(i=ch_ix, c="p.customer_id")
    text = (f"{_pick(_TEXTS, 'p.id * 7 + k')} || CASE WHEN mod(p.id + k, 3) = 0 THEN "
            f"E'\\n\\n' || {_pick(_TEXTS, 'p.id + k * 5')} ELSE '' END")
    attachment = ("""'[{"filename": "invoice-' || p.id || '.pdf", "content_type": """
                  """"application/pdf", "size": 48213, "storage_key": "' || md5(p.id::text """
                  """|| k) || '", "content_id": null}]'""")
    inbound = f"""
      SELECT p.opened_at + (k - 1) * p.gap AS at, p.id AS cid, k AS k, 'in' AS direction,
             p.channel,
             CASE WHEN p.channel = 'email' THEN '<' || p.id || '.' || k || '@mail.example.com>'
                  ELSE p.id || ':' || k END AS external_id,
             p.customer_id, {address} AS sender, {_OURS.format(ch='p.channel')} AS recipient,
             CASE WHEN p.channel = 'email'
                  THEN CASE WHEN k > 1 THEN 'Re: ' ELSE '' END || {_pick(_SUBJECTS, 'p.id')}
                  ELSE '' END AS subject,
             {text} AS text, p.channel = 'email' AS html,
             CASE WHEN p.channel = 'email' AND mod(p.id + k, 29) = 0 THEN {attachment}
                  ELSE '[]' END AS attachments, '{{}}' AS meta
      FROM conv_plan p CROSS JOIN LATERAL generate_series(1, p.n_in) AS k"""
    outbound = f"""
      SELECT r.sent_at, p.id, 0, 'out', p.channel, r.idempotency_key, p.customer_id,
             {_OURS.format(ch='p.channel')}, {address},
             CASE WHEN p.channel = 'email' THEN 'Re: ' || {_pick(_SUBJECTS, 'p.id')} ELSE '' END,
             r.body, p.channel = 'email', '[]',
             '{{"reply_id": ' || r.id || ', "provider_id": "' || r.provider_id || '"}}'
      FROM reply r JOIN conv_plan p ON p.id = r.conversation_id
      WHERE r.state IN ('sent', 'delivered')"""
    return f"""
    INSERT INTO message (id, channel, external_id, direction, kind, conversation_id,
                         customer_id, sender, sender_name, recipient, subject, text,
                         safe_html, in_reply_to, "references", attachments, meta,
                         received_at, created_at, routed_at)
    SELECT row_number() OVER (ORDER BY m.at, m.cid, m.k), m.channel, m.external_id,
           m.direction, 'message', m.cid, m.customer_id, m.sender,
           CASE WHEN m.direction = 'in' THEN cu.display_name ELSE '' END, m.recipient,
           m.subject, m.text,
           CASE WHEN m.html THEN '<div dir="auto"><p>' || replace(m.text, E'\\n\\n', '</p><p>')
                                 || '</p></div>' END,
           NULL, '[]', m.attachments::json, m.meta::json, m.at, m.at + interval '1 second',
           m.at + interval '2 seconds'
    FROM ({inbound} UNION ALL {outbound}) m JOIN customer cu ON cu.id = m.customer_id
    """


def events_sql() -> list[str]:
    """The audit rows, in one time-ordered insert (ids follow time)."""
    parts = [
        # the router: every inbound message, and the placement of a new conversation
        """SELECT m.routed_at AS at, 'message.routed' AS kind, NULL::int AS actor,
                  m.conversation_id AS cid, m.customer_id AS cust, NULL::int AS reply,
                  m.id AS msg, '{"how": "thread", "customer_created": false}' AS data
           FROM message m WHERE m.direction = 'in'""",
        """SELECT p.opened_at + interval '3 seconds', 'conversation.assigned', NULL, p.id,
                  p.customer_id, NULL, NULL,
                  json_build_object('to_person', p.assignee_id, 'to_team', p.team_id,
                                    'from_person', NULL, 'from_team', NULL)::text
           FROM conv_plan p WHERE p.placed <> 'none'""",
        # people: a referral with its note for one in ten, private notes for one in twenty
        """SELECT p.opened_at + interval '5 minutes', 'conversation.referred', p.assignee_id,
                  p.id, p.customer_id, NULL, NULL,
                  json_build_object('to_person', p.assignee_id, 'to_team', p.team_id,
                                    'note', 'مشتری قبلاً هم تماس گرفته؛ لطفاً پیگیری کنید.',
                                    'from_person', NULL, 'from_team', 1)::text
           FROM conv_plan p WHERE p.placed = 'person' AND mod(p.id, 10) = 3""",
        """SELECT p.opened_at + interval '8 minutes', 'conversation.note',
                  coalesce(p.assignee_id, 2), p.id, p.customer_id, NULL, NULL,
                  '{"text": "Called the customer back; waiting for the invoice number."}'
           FROM conv_plan p WHERE mod(p.id, 20) = 7""",
        """SELECT c.resolved_at, 'conversation.closed', c.assignee_id, c.id, c.customer_id,
                  NULL, NULL, '{}'
           FROM conversation c WHERE c.status = 'closed'""",
        # the reply workflow: submitted, then approved or rejected, then sent or failed
        """SELECT r.created_at + interval '1 minute', 'reply.submitted', r.author_id,
                  r.conversation_id, NULL, r.id, NULL, '{"policy": "reviewed"}'
           FROM reply r WHERE r.state <> 'draft'""",
        """SELECT coalesce(r.approved_at, r.updated_at),
                  CASE WHEN r.state = 'rejected' THEN 'reply.rejected' ELSE 'reply.approved' END,
                  coalesce(r.approved_by_id, 2), r.conversation_id, NULL, r.id, NULL,
                  CASE WHEN r.state = 'rejected'
                       THEN json_build_object('comment', r.review_comment)::text
                       WHEN r.original_body IS NOT NULL
                       THEN json_build_object('edited', true, 'original_body', r.original_body,
                                              'edited_body', r.body)::text
                       ELSE '{"edited": false}' END
           FROM reply r WHERE r.state NOT IN ('draft', 'pending_approval')""",
        """SELECT coalesce(r.sent_at, r.updated_at),
                  CASE WHEN r.state = 'failed' THEN 'reply.failed' ELSE 'reply.sent' END, NULL,
                  r.conversation_id, NULL, r.id, NULL,
                  CASE WHEN r.state = 'failed' THEN json_build_object('error', r.error)::text
                       ELSE json_build_object('provider_id', r.provider_id)::text END
           FROM reply r WHERE r.state IN ('sent', 'delivered', 'failed')""",
    ]
    union = " UNION ALL ".join(f"({p})" for p in parts)
    return [f"""
    INSERT INTO event (id, at, kind, actor_id, conversation_id, customer_id, reply_id,
                       message_id, data)
    SELECT row_number() OVER (ORDER BY e.at, e.kind, e.cid), e.at, e.kind, e.actor, e.cid,
           e.cust, e.reply, e.msg, e.data::json
    FROM ({union}) e
    """]


def customers_sql() -> list[str]:
    name = f"{_pick(_FIRST, 'i')} || ' ' || {_pick(_LAST, 'i / 16')}"
    primary = _PRIMARY.format(c="cu.id")
    ix = f"mod({primary} + o.off, 4)"
    return [
        f"""INSERT INTO customer (id, display_name, tags, merged_into_id, created_at)
        SELECT i, CASE WHEN mod(i, 9) = 0 THEN '' ELSE {name} END,
               (CASE WHEN mod(i, 50) = 0 THEN '["vip"]' WHEN mod(i, 70) = 0
                     THEN '["wholesale"]' ELSE '[]' END)::json,
               NULL, %(now)s - interval '800 days' + i * interval '1 second'
        FROM generate_series(1, %(c)s) AS i""",
        f"""INSERT INTO identity (id, customer_id, kind, address, display, created_at)
        SELECT row_number() OVER (ORDER BY cu.id, o.off), cu.id, {_KIND.format(i=ix)},
               {_ADDRESS.format(i=ix, c='cu.id')}, '', cu.created_at
        FROM customer cu CROSS JOIN (VALUES (0), (1), (2)) AS o(off)
        WHERE o.off = 0 OR (o.off = 1 AND mod(cu.id, 3) = 0)
              OR (o.off = 2 AND mod(cu.id, 10) = 1)""",
    ]
