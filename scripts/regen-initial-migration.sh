#!/usr/bin/env bash
# Until the first release, the schema is one migration generated from kartabl/models.py.
# After a model change: scripts/regen-initial-migration.sh (then run the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f kartabl/migrations/versions/0001_initial_schema.py
# The hand-written migrations after 0001 (0002_search: DDL autogenerate cannot write) step
# aside while 0001 is generated: they revise it, and alembic refuses a missing down_revision.
mkdir "$tmp/later"
for f in kartabl/migrations/versions/0*.py; do [ -e "$f" ] && mv "$f" "$tmp/later/"; done
trap 'mv "$tmp"/later/*.py kartabl/migrations/versions/ 2>/dev/null || true; rm -rf "$tmp"' EXIT
.venv/bin/python - "$tmp" <<'PY'
import sys
from alembic import command
from kartabl.migrate import alembic_config
cfg = alembic_config(f"sqlite:///{sys.argv[1]}/gen.db")
command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
PY
sed -i '/^# ### commands auto generated/d; /^# ### end Alembic commands/d; /^    # ### /d' kartabl/migrations/versions/0001_initial_schema.py
.venv/bin/ruff format -q kartabl/migrations/versions
