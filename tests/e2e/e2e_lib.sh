# shellcheck shell=bash
# Shared set-up of the namespace end-to-end tests: a simulated host with
# vifd in dom0's namespace and domUs 1 and 2 attached to xenbr0.
#   source e2e_lib.sh TAG BUILD_DIR
set -euo pipefail
e2e_tag=$1
e2e_build=$2
e2e_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/simnet.sh
source "$e2e_repo/scripts/lib/simnet.sh"

e2e_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

e2e_pass() { echo "PASS: $*"; }

# e2e_host_with_domus [VIFD_ARGS...]
e2e_host_with_domus() {
  simnet_init "$e2e_tag" "$e2e_build"
  simnet_require_binaries vif-sim vifctl vifd vif-front vif-ttcp
  simnet_start_host
  simnet_start_dom0 "$@"
  simnet_add_domu 1
  simnet_add_domu 2
}

e2e_vifd_alive() { kill -0 "${SIMNET_PIDS[0]}" 2>/dev/null; }

# e2e_ping FROM_DOMID TO_IP: three echoes, each bounded.
e2e_ping() {
  simnet_exec "$1" timeout 30 ping -n -c 3 -i 0.2 -W 5 "$2" >/dev/null ||
    e2e_fail "ping from domain $1 to $2"
}
