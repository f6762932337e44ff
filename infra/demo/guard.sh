#!/bin/sh
# The demo's guard, the entrypoint of every container that receives a platform secret:
#
#   guard.sh COMMAND ARG...
#
# When no environment variable holds a value of demo.env (beside this script), it runs COMMAND
# at once. When one does, the container was started without that setting in `.env`, on its
# demo default: that is allowed only while the demo's sandbox answers (compose profile `demo`,
# `http://sandbox:8000/healthz`); otherwise it refuses to start, naming the variables (never
# their values), so the demo's public passwords never guard a production server.
#
# ZAKAZ_DEMO_SANDBOX_URL and ZAKAZ_DEMO_WAIT (seconds to wait for the sandbox, default 120)
# exist for the tests; compose.yaml sets neither.
set -eu

here=$(dirname "$0")
defaults=$here/demo.env
sandbox=${ZAKAZ_DEMO_SANDBOX_URL:-http://sandbox:8000/healthz}
wait_seconds=${ZAKAZ_DEMO_WAIT:-120}

if [ "$#" -eq 0 ]; then
	echo "usage: guard.sh COMMAND ARG..." >&2
	exit 2
fi
if [ ! -r "$defaults" ]; then
	echo "demo guard: $defaults is missing; refusing to start" >&2
	exit 1
fi

names=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort -u)
held=""
while IFS= read -r line || [ -n "$line" ]; do
	case "$line" in '' | '#'*) continue ;; esac
	setting=${line%%=*}
	demo_value=${line#*=}
	[ -n "$demo_value" ] || continue
	for name in $names; do
		# $name matched the pattern of a variable name above: safe to expand indirectly.
		eval "value=\${$name-}"
		if [ "$value" = "$demo_value" ]; then
			if [ "$name" = "$setting" ]; then
				held="$held $name"
			else
				held="$held $name(=$setting)"
			fi
		fi
	done
done <"$defaults"

if [ -z "$held" ]; then
	exec "$@"
fi

answers() {
	if command -v wget >/dev/null 2>&1; then
		wget -q -T 3 -O /dev/null "$sandbox" 2>/dev/null
	else
		for python in python3 python; do
			if command -v "$python" >/dev/null 2>&1; then
				"$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=3)' \
					"$sandbox" 2>/dev/null
				return
			fi
		done
		return 1
	fi
}

start=$(date +%s)
while :; do
	if answers; then
		echo "demo guard: demo defaults in use (${held# }); the demo's sandbox answers, starting" >&2
		exec "$@"
	fi
	if [ $(($(date +%s) - start)) -ge "$wait_seconds" ]; then
		break
	fi
	sleep 2
done

cat >&2 <<MSG
demo guard: refusing to start. These variables hold their demo defaults (infra/demo/demo.env):
 ${held# }
and the demo's sandbox does not answer at $sandbox, so this is not \`--profile demo\`.
Set each named setting in .env (see secrets/compose.env.sample), then docker compose up -d.
MSG
exit 1
