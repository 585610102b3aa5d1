# shellcheck shell=bash
# testbed/lib.sh — helpers shared by up, down, check and token. Sourced, never run.

TB_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# All runtime state lives here (git-ignored as /testbed/.run). TESTBED_RUN may move it, e.g. for a second
# testbed beside the first.
TB_RUN="${TESTBED_RUN:-$TB_HERE/.run}"
TB_ENV="$TB_RUN/env"

tb_log() { printf '[%s] %s\n' "${TB_TOOL:-testbed}" "$*" >&2; }
tb_die() { tb_log "ERROR: $*"; exit 1; }

# tb_pid_alive FILE — true when FILE names a live process that is still the one we started (the pid file
# holds "PID BINARY"; a recycled pid running something else does not count).
tb_pid_alive() {
  local file="$1" pid exe
  [[ -f "$file" ]] || return 1
  read -r pid exe <"$file" || return 1
  [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
  # Zombies (exited, not yet reaped) are not alive.
  [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != "Z" ]] || return 1
  [[ -z "$exe" ]] || tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$exe"
}

# tb_load_env — source .run/env or fail with a hint.
tb_load_env() {
  [[ -f "$TB_ENV" ]] || tb_die "no testbed is up ($TB_ENV missing); run testbed/up"
  # shellcheck disable=SC1090
  . "$TB_ENV"
}

# tb_kubectl_version V — path of the kubectl binary for minor version V (e.g. 1.27). The Debian/Google
# Cloud SDK kubectl package installs kubectl.1.27 … kubectl.1.33 beside a dispatcher `kubectl`.
tb_kubectl_version() {
  local v="$1" cand dir
  if cand="$(command -v "kubectl.$v" 2>/dev/null)"; then echo "$cand"; return; fi
  for dir in "$(dirname "$(readlink -f "$(command -v kubectl 2>/dev/null || echo /nonexistent)")")" \
             /usr/lib/google-cloud-sdk/bin; do
    if [[ -x "$dir/kubectl.$v" ]]; then echo "$dir/kubectl.$v"; return; fi
  done
  return 1
}
