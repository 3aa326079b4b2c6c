#!/usr/bin/env bash
# `make run`: migrate, make sure a demo organization exists, issue it a fresh key, print a
# curl that works with that key, then serve. Settings come from INVOICEHUB_* as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
ih=.venv/bin/invoicehub
host=${INVOICEHUB_HOST:-127.0.0.1}
port=${INVOICEHUB_PORT:-8000}

$ih migrate
org_file=.demo-org
keys=""
if [[ -s $org_file ]]; then
  keys=$($ih key create --org "$(cat "$org_file")" --name "make run" --json 2>/dev/null || true)
fi
if [[ -z $keys ]]; then
  keys=$($ih org create --name "Demo shop" --verified --json)
fi
read -r org_id secret < <(.venv/bin/python -c 'import json,sys; k=json.loads(sys.argv[1]); print(k["org_id"], k["secret_key"])' "$keys")
echo "$org_id" > "$org_file"

# A dashboard login for the demo organization, made once and kept (like .demo-org) beside it.
login_file=.demo-login
if [[ ! -s $login_file ]] || ! grep -q "$org_id" "$login_file"; then
  password=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
  email="owner+${org_id#org_}@example.com"
  $ih user create --email "$email" --password "$password" --org "$org_id" --role owner >/dev/null
  printf '%s %s %s\n' "$org_id" "$email" "$password" > "$login_file"
fi
read -r _ login_email login_password < "$login_file"

cat <<TXT

invoicehub is starting on http://$host:$port  (API docs: http://$host:$port/docs)
Organization $org_id, secret key (shown once): $secret
Dashboard: http://$host:$port/dashboard   email $login_email   password $login_password

Try it:
  curl -s -X POST http://$host:$port/v1/invoices \\
    -H "Authorization: Bearer $secret" -H "Content-Type: application/json" \\
    -d '{"currency": "USD", "status": "open", "customer": {"name": "John Smith", "email": "client@example.com"},
         "line_items": [{"description": "Website Development", "quantity": 1, "unit_price": "5000", "tax_rate": 10},
                        {"description": "Hosting Setup", "quantity": 1, "unit_price": "500", "type": "fee"}]}'
  curl -s http://$host:$port/v1/invoices -H "Authorization: Bearer $secret"

TXT
exec $ih serve --host "$host" --port "$port" --no-migrate
