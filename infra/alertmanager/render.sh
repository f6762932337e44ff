#!/bin/sh
# Render Alertmanager's config from its template, then run Alertmanager (the container's
# entrypoint):  render.sh TEMPLATE OUTPUT [COMMAND ARG...]
#
# The e-mail receiver is built from the health service's settings (secrets/.env.health):
# ALERT_EMAIL_TO, SMTP_HOST, SMTP_PORT (587), SMTP_USER, SMTP_PASSWORD, SMTP_FROM. Without
# ALERT_EMAIL_TO or SMTP_HOST, alerts go to the receiver `no-mail`. Values are written as YAML
# double-quoted strings; OUTPUT is readable by its owner only (it holds SMTP_PASSWORD).
set -eu

if [ "$#" -lt 2 ]; then
	echo "usage: render.sh TEMPLATE OUTPUT [COMMAND ARG...]" >&2
	exit 2
fi
template=$1
output=$2
shift 2

trim() { printf '%s' "$1" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//'; }

to=$(trim "${ALERT_EMAIL_TO:-}")
host=$(trim "${SMTP_HOST:-}")
user=$(trim "${SMTP_USER:-}")
from=$(trim "${SMTP_FROM:-}")
port=$(trim "${SMTP_PORT:-}")
port=${port:-587}

if [ -n "$to" ] && [ -n "$host" ]; then
	mail=1
	receiver=email
	# The From address as the health service picks it: SMTP_FROM, else SMTP_USER when it is
	# an address, else a local one.
	if [ -z "$from" ]; then
		case "$user" in
		*@*) from=$user ;;
		*) from=zakaz-alerts@localhost ;;
		esac
	fi
	if [ -n "$user" ]; then require_tls=true; else require_tls=false; fi
	echo "alertmanager: alerts are e-mailed to $to through $host:$port" >&2
else
	mail=0
	receiver=no-mail
	require_tls=false
	echo "alertmanager: ALERT_EMAIL_TO or SMTP_HOST is not set; alerts are not e-mailed" >&2
fi

umask 077
ZAKAZ_AM_SMARTHOST="$host:$port" ZAKAZ_AM_FROM=$from ZAKAZ_AM_USER=$user \
	ZAKAZ_AM_PASSWORD=${SMTP_PASSWORD:-} ZAKAZ_AM_REQUIRE_TLS=$require_tls \
	ZAKAZ_AM_RECEIVER=$receiver ZAKAZ_AM_TO=$to \
	awk -v mail="$mail" '
	function quoted(value,    out, i, c) {
		# Inside a YAML double-quoted string only the backslash and the quote are special;
		# escaped one character at a time, since awks differ on backslashes in gsub.
		out = ""
		for (i = 1; i <= length(value); i++) {
			c = substr(value, i, 1)
			if (c == "\\" || c == "\"") out = out "\\"
			out = out c
		}
		return out
	}
	/# -- mail: begin/ { inside = 1; next }
	/# -- mail: end/ { inside = 0; next }
	inside && !mail { next }
	/^[[:space:]]*#/ { print; next }
	{
		line = $0
		out = ""
		while ((start = index(line, "@@")) > 0) {
			rest = substr(line, start + 2)
			stop = index(rest, "@@")
			if (stop == 0) break
			name = substr(rest, 1, stop - 1)
			out = out substr(line, 1, start - 1) quoted(ENVIRON["ZAKAZ_AM_" name])
			line = substr(rest, stop + 2)
		}
		print out line
	}' "$template" >"$output.tmp"
mv "$output.tmp" "$output"

if [ "$#" -gt 0 ]; then
	exec "$@"
fi
