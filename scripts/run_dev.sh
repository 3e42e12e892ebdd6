#!/usr/bin/env bash
# Start the scheduler process and the web server together for `make run`; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
FLASK=".venv/bin/flask --app wsgi"
$FLASK jobs run &
JOBS_PID=$!
trap 'kill $JOBS_PID 2>/dev/null || true; wait $JOBS_PID 2>/dev/null || true' EXIT INT TERM
cat <<MSG

  Steadfast is starting on http://127.0.0.1:5000  (SQLite under instance/, SMS printed to this log)

  Create your first therapist (the API token is printed on the last line):
    .venv/bin/flask --app wsgi therapist create --email you@example.org --name "Your Name" --password 'choose-a-password'
  Or load a demo practice:
    .venv/bin/flask --app wsgi demo seed
  Then sign in at http://127.0.0.1:5000/login or call the API:
    curl -H "Authorization: Bearer <token>" http://127.0.0.1:5000/api/v1/clients

MSG
$FLASK run --host 127.0.0.1 --port 5000
